//! The sending role: a durable outbox with a bounded window and retransmission,
//! under an incarnation granted by the receiver.

use super::{
    amount_in_range, step, Incarnation, Msg, RecoverError, SenderError, SenderEvent, SenderRecord,
    Seq, RETRY_INTERVAL_MAX, RETRY_INTERVAL_MIN, SEQ_MAX, TRACE_TARGET, WINDOW_MAX,
};
use crate::bank::Transfer;
use crate::core::{Core, Envelope, NodeId, Ready, Time};
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::{debug, trace};

/// The sending side of ack-retry.
///
/// Call order (see [`crate::core`]):
///
/// 1. `Sender::new(id, receiver, now, nonce)` on first boot or after losing the
///    disk, or `Sender::recover(id, receiver, now, nonce, records)` after a
///    restart, with every record the log returned (a snapshot first, if any).
///    `nonce` is a fresh random `u64` from the driver at every boot (the core draws
///    no randomness itself): it tells this process's request for an incarnation
///    from an earlier life's. A sender whose log holds no incarnation asks the
///    receiver for one ([`Msg::NewIncarnation`], retried with backoff) and refuses
///    submissions with [`SenderError::NoIncarnation`] until the grant arrives;
/// 2. inputs: [`Sender::submit`], [`Core::handle_message`] (grants, acks,
///    expiries), [`Core::handle_timeout`], each with a `now` that never goes
///    backwards;
/// 3. after each input, [`Core::poll_ready`], carried out as [`crate::release`]
///    requires (persist, sync, open with the proof); then re-arm the timer from
///    [`Core::poll_timeout`];
/// 4. [`Core::snapshot`] only when every record polled so far is durable, and
///    every event of those records was handed to the application (recovery
///    re-emits delivery events only for records after the snapshot).
#[derive(Debug)]
pub struct Sender {
    id: NodeId,
    receiver: NodeId,
    /// The incarnation this sender's seqs belong to; `None` while asking for one.
    incarnation: Option<Incarnation>,
    /// The request for an incarnation, while there is none.
    request: Option<Backoff>,
    /// The nonce of the current (or next) request for an incarnation: fresh from
    /// the driver at every boot, then one more per request of this process.
    nonce: u64,
    /// The seq the next submission gets; never reused within an incarnation.
    next_seq: Seq,
    /// Unacknowledged messages, keyed by seq.
    outbox: BTreeMap<Seq, Outgoing>,
    ready: Ready<SenderRecord, Msg, SenderEvent>,
    /// The latest `now` seen, to catch a driver whose clock runs backwards.
    now: Time,
    stats: SenderStats,
}

/// When a retransmission is due, and the interval after it.
#[derive(Clone, Copy, Debug)]
struct Backoff {
    /// The interval to wait before the next retransmission.
    interval: Duration,
    /// When the next retransmission is due.
    deadline: Time,
}

impl Backoff {
    fn start(now: Time) -> Backoff {
        Backoff {
            interval: RETRY_INTERVAL_MIN,
            deadline: now + RETRY_INTERVAL_MIN,
        }
    }

    /// Whether a retransmission is due at `now`; if so, doubles the interval.
    fn fire(&mut self, now: Time) -> bool {
        if self.deadline > now {
            return false;
        }
        self.interval = (self.interval * 2).min(RETRY_INTERVAL_MAX);
        self.deadline = now + self.interval;
        true
    }
}

#[derive(Clone, Copy, Debug)]
struct Outgoing {
    transfer: Transfer,
    retry: Backoff,
}

/// Counters of one sender process (they restart from zero after a crash).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderStats {
    pub submitted: u64,
    pub retransmitted: u64,
    pub acked: u64,
    /// Messages whose incarnation expired before they were acknowledged.
    pub unknown: u64,
}

impl Sender {
    /// A sender with an empty log: it asks `receiver`, its only peer, for an
    /// incarnation in its first `poll_ready`.
    pub fn new(id: NodeId, receiver: NodeId, now: Time, nonce: u64) -> Sender {
        let mut sender = Sender::empty(id, receiver, now, nonce);
        sender.request_incarnation();
        sender
    }

    /// A sender with no incarnation, no outbox and nothing to do yet: where
    /// [`Sender::new`] and [`Sender::recover`] start.
    fn empty(id: NodeId, receiver: NodeId, now: Time, nonce: u64) -> Sender {
        Sender {
            id,
            receiver,
            incarnation: None,
            request: None,
            nonce,
            next_seq: 1,
            outbox: BTreeMap::new(),
            ready: Ready::default(),
            now,
            stats: SenderStats::default(),
        }
    }

    /// Rebuilds a sender from its log: an optional snapshot, then the records
    /// appended after it. Every message still in the outbox is queued for sending
    /// in the first `poll_ready`, since the crash may have lost it in flight; so
    /// are the delivery events of the records replayed (see [`SenderEvent`]: they
    /// are at least once). An empty log is a new sender ([`Sender::new`]).
    pub fn recover(
        id: NodeId,
        receiver: NodeId,
        now: Time,
        nonce: u64,
        records: impl IntoIterator<Item = SenderRecord>,
    ) -> Result<Sender, RecoverError> {
        let mut sender = Sender::empty(id, receiver, now, nonce);
        let mut count = 0usize;
        for (index, record) in records.into_iter().enumerate() {
            count += 1;
            sender.replay(index, record)?;
        }
        match sender.incarnation {
            None => sender.request_incarnation(),
            Some(incarnation) => {
                for (&seq, out) in sender.outbox.iter_mut() {
                    out.retry = Backoff::start(now);
                    sender.ready.push_message(Envelope {
                        to: receiver,
                        msg: Msg::Data {
                            incarnation,
                            seq,
                            transfer: out.transfer,
                        },
                    });
                }
            }
        }
        debug!(
            target: TRACE_TARGET,
            node = id, role = "sender", step = step::RECOVER, peer = receiver,
            records = count, incarnation = sender.incarnation.unwrap_or(0),
            next_seq = sender.next_seq, outbox = sender.outbox.len(),
            persisted = "none", sent = if sender.outbox.is_empty() { "none" } else { "data" },
        );
        sender.check_invariants();
        Ok(sender)
    }

    fn replay(&mut self, index: usize, record: SenderRecord) -> Result<(), RecoverError> {
        // Timers are set once the whole log is replayed, in `recover`.
        let pending = |transfer| Outgoing {
            transfer,
            retry: Backoff::start(Time::ZERO),
        };
        let live = |sender: &Sender, what| {
            sender
                .incarnation
                .ok_or(RecoverError::Incarnation { index, what })
        };
        match record {
            SenderRecord::Snapshot {
                incarnation,
                next_seq,
                outbox,
            } => {
                if index != 0 {
                    return Err(RecoverError::SnapshotNotFirst { index });
                }
                if next_seq == 0 || incarnation == Some(0) {
                    return Err(RecoverError::OutOfBounds {
                        index,
                        what: "snapshot next_seq or incarnation is 0",
                    });
                }
                if next_seq > SEQ_MAX + 1 {
                    return Err(RecoverError::OutOfBounds {
                        index,
                        what: "snapshot next_seq beyond SEQ_MAX + 1",
                    });
                }
                if incarnation.is_none() && (next_seq != 1 || !outbox.is_empty()) {
                    return Err(RecoverError::Incarnation {
                        index,
                        what: "snapshot has messages but no incarnation",
                    });
                }
                if outbox.len() > WINDOW_MAX as usize {
                    return Err(RecoverError::OutOfBounds {
                        index,
                        what: "snapshot outbox exceeds the window",
                    });
                }
                self.incarnation = incarnation;
                self.next_seq = next_seq;
                for (seq, transfer) in outbox {
                    let in_window = seq != 0 && seq < next_seq && next_seq - seq <= WINDOW_MAX;
                    if !in_window || !amount_in_range(transfer.amount) {
                        return Err(RecoverError::OutOfBounds {
                            index,
                            what: "snapshot outbox entry outside the window",
                        });
                    }
                    if self.outbox.insert(seq, pending(transfer)).is_some() {
                        return Err(RecoverError::OutOfBounds {
                            index,
                            what: "snapshot outbox repeats a seq",
                        });
                    }
                }
            }
            SenderRecord::Incarnation { incarnation } => {
                if self.incarnation.is_some() || incarnation == 0 {
                    return Err(RecoverError::Incarnation {
                        index,
                        what: "incarnation adopted while another is live (or 0)",
                    });
                }
                self.incarnation = Some(incarnation);
                self.next_seq = 1;
            }
            SenderRecord::Submitted { seq, transfer } => {
                live(self, "submitted record without an incarnation")?;
                if seq != self.next_seq {
                    return Err(RecoverError::SeqNotConsecutive {
                        index,
                        seq,
                        expected: self.next_seq,
                    });
                }
                if !amount_in_range(transfer.amount) || self.window_full() || seq > SEQ_MAX {
                    return Err(RecoverError::OutOfBounds {
                        index,
                        what: "submitted record beyond the window or amount bound",
                    });
                }
                self.outbox.insert(seq, pending(transfer));
                self.next_seq += 1;
            }
            SenderRecord::Acked { hwm, seq } => {
                let incarnation = live(self, "acked record without an incarnation")?;
                if hwm >= self.next_seq || seq >= self.next_seq || seq == 0 {
                    return Err(RecoverError::AckBeyondSubmitted { index, hwm, seq });
                }
                self.remove_acked(incarnation, hwm, seq);
            }
            SenderRecord::Expired { incarnation } => {
                if self.incarnation != Some(incarnation) {
                    return Err(RecoverError::Incarnation {
                        index,
                        what: "expired record for an incarnation that is not live",
                    });
                }
                self.give_up(incarnation);
            }
        }
        Ok(())
    }

    /// Accepts `transfer` as the next message. It is sent (in the next
    /// `poll_ready`, after its `Submitted` record) and retransmitted until
    /// acknowledged. Returns its seq, or `WindowFull` / `NoIncarnation` as
    /// backpressure.
    pub fn submit(&mut self, now: Time, transfer: Transfer) -> Result<Seq, SenderError> {
        self.advance_clock(now);
        if !amount_in_range(transfer.amount) {
            return Err(SenderError::AmountOutOfRange(transfer.amount));
        }
        let Some(incarnation) = self.incarnation else {
            return Err(SenderError::NoIncarnation);
        };
        if self.window_full() {
            let oldest = self.base();
            return Err(SenderError::WindowFull {
                in_flight: self.outbox.len(),
                oldest,
            });
        }
        if self.next_seq > SEQ_MAX {
            let next_seq = self.next_seq;
            return Err(SenderError::SeqsExhausted { next_seq });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outbox.insert(
            seq,
            Outgoing {
                transfer,
                retry: Backoff::start(now),
            },
        );
        // The record precedes the message in the same Ready: the driver makes it
        // durable first, so a message never leaves without a durable outbox entry.
        self.ready
            .push_record(SenderRecord::Submitted { seq, transfer });
        self.ready.push_message(Envelope {
            to: self.receiver,
            msg: Msg::Data {
                incarnation,
                seq,
                transfer,
            },
        });
        self.ready.push_event(SenderEvent::Accepted {
            incarnation,
            seq,
            transfer,
        });
        self.stats.submitted += 1;
        debug!(
            target: TRACE_TARGET,
            node = self.id, role = "sender", step = step::SUBMIT, peer = self.receiver,
            incarnation, seq, amount = transfer.amount, in_flight = self.outbox.len(),
            persisted = "submitted", sent = "data",
        );
        self.check_invariants();
        Ok(seq)
    }

    /// Asks the receiver for an incarnation now and then with backoff, under a
    /// nonce no earlier request of this process used.
    fn request_incarnation(&mut self) {
        debug_assert!(self.incarnation.is_none() && self.outbox.is_empty());
        if self.request.is_none() {
            self.nonce = self.nonce.wrapping_add(1);
        }
        self.request = Some(Backoff::start(self.now));
        self.ready.push_message(Envelope {
            to: self.receiver,
            msg: Msg::NewIncarnation { nonce: self.nonce },
        });
        debug!(
            target: TRACE_TARGET,
            node = self.id, role = "sender", step = step::REQUEST, peer = self.receiver,
            persisted = "none", sent = "new-incarnation",
        );
    }

    /// The receiver no longer knows `incarnation`: every unacknowledged message
    /// has an unknown outcome, seqs restart under the next incarnation.
    fn give_up(&mut self, incarnation: Incarnation) {
        for (seq, out) in std::mem::take(&mut self.outbox) {
            self.ready.push_event(SenderEvent::OutcomeUnknown {
                incarnation,
                seq,
                transfer: out.transfer,
            });
            self.stats.unknown += 1;
        }
        self.incarnation = None;
        self.next_seq = 1;
    }

    /// The oldest unacknowledged seq, or the next seq if nothing is in flight.
    fn base(&self) -> Seq {
        self.outbox.keys().next().copied().unwrap_or(self.next_seq)
    }

    fn window_full(&self) -> bool {
        self.next_seq - self.base() >= WINDOW_MAX
    }

    /// Removes acknowledged messages; returns how many left the outbox.
    fn remove_acked(&mut self, incarnation: Incarnation, hwm: Seq, seq: Seq) -> usize {
        let mut removed = 0;
        while let Some(entry) = self.outbox.first_entry() {
            if *entry.key() > hwm {
                break;
            }
            let acked = *entry.key();
            entry.remove();
            self.ready.push_event(SenderEvent::Delivered {
                incarnation,
                seq: acked,
            });
            removed += 1;
        }
        if self.outbox.remove(&seq).is_some() {
            self.ready
                .push_event(SenderEvent::Delivered { incarnation, seq });
            removed += 1;
        }
        removed
    }

    fn advance_clock(&mut self, now: Time) {
        self.now.advance_to(now);
    }

    fn on_granted(&mut self, nonce: u64, incarnation: Incarnation) {
        if self.incarnation.is_some() || self.request.is_none() || nonce != self.nonce {
            return; // a second grant, or one for an earlier life: never used, harmless
        }
        if incarnation == 0 {
            return;
        }
        self.incarnation = Some(incarnation);
        self.request = None;
        self.next_seq = 1;
        self.ready
            .push_record(SenderRecord::Incarnation { incarnation });
        self.ready.push_event(SenderEvent::Started { incarnation });
        debug!(
            target: TRACE_TARGET,
            node = self.id, role = "sender", step = step::START, peer = self.receiver,
            incarnation, persisted = "incarnation", sent = "none",
        );
    }

    fn on_ack(&mut self, incarnation: Incarnation, hwm: Seq, seq: Seq) -> Result<(), SenderError> {
        if self.incarnation != Some(incarnation) {
            return Ok(()); // for an earlier life of this sender: not about our seqs
        }
        let highest = self.next_seq - 1;
        if hwm > highest || seq > highest || seq == 0 {
            return Err(SenderError::AckBeyondSent { hwm, seq, highest });
        }
        let removed = self.remove_acked(incarnation, hwm, seq);
        if removed > 0 {
            // Not needed for safety (a lost `Acked` only causes a redundant
            // retransmission) but it keeps the recovered outbox small.
            self.ready.push_record(SenderRecord::Acked { hwm, seq });
            self.stats.acked += removed as u64;
        }
        debug!(
            target: TRACE_TARGET,
            node = self.id, role = "sender", step = step::ACKED, peer = self.receiver,
            incarnation, seq, hwm, removed, in_flight = self.outbox.len(),
            persisted = if removed > 0 { "acked" } else { "none" }, sent = "none",
        );
        Ok(())
    }

    fn on_expired(&mut self, incarnation: Incarnation) {
        if self.incarnation != Some(incarnation) {
            return; // an earlier life's incarnation, already given up
        }
        let unknown = self.outbox.len();
        self.ready
            .push_record(SenderRecord::Expired { incarnation });
        self.give_up(incarnation);
        debug!(
            target: TRACE_TARGET,
            node = self.id, role = "sender", step = step::EXPIRE, peer = self.receiver,
            incarnation, unknown, persisted = "expired", sent = "new-incarnation",
        );
        self.request_incarnation();
    }

    /// The incarnation this sender's seqs belong to; `None` while it asks for one.
    pub fn incarnation(&self) -> Option<Incarnation> {
        self.incarnation
    }

    /// The seq the next submission will get.
    pub fn next_seq(&self) -> Seq {
        self.next_seq
    }

    /// Whether message `seq` is still waiting for its acknowledgement.
    pub fn is_outstanding(&self, seq: Seq) -> bool {
        self.outbox.contains_key(&seq)
    }

    /// How many messages wait for an acknowledgement.
    pub fn in_flight(&self) -> usize {
        self.outbox.len()
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn stats(&self) -> SenderStats {
        self.stats
    }

    /// The retransmission interval message `seq` waits next, if outstanding.
    pub fn retry_interval(&self, seq: Seq) -> Option<Duration> {
        self.outbox.get(&seq).map(|o| o.retry.interval)
    }

    fn check_invariants(&self) {
        assert!(self.next_seq >= 1);
        assert!(self.outbox.len() <= WINDOW_MAX as usize);
        assert!(self.incarnation.is_some() || self.outbox.is_empty());
        assert!(self.incarnation.is_none() || self.request.is_none());
        if let Some((&first, _)) = self.outbox.first_key_value() {
            assert!(
                first >= 1 && self.next_seq - first <= WINDOW_MAX,
                "outbox spans more than the window"
            );
        }
        if let Some((&last, _)) = self.outbox.last_key_value() {
            assert!(last < self.next_seq);
        }
    }
}

impl Core for Sender {
    type Msg = Msg;
    type Record = SenderRecord;
    type Event = SenderEvent;
    type Error = SenderError;

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Msg) -> Result<(), SenderError> {
        self.advance_clock(now);
        if from != self.receiver {
            return Err(SenderError::UnexpectedPeer {
                from,
                expected: self.receiver,
            });
        }
        let result = match msg {
            Msg::Granted { nonce, incarnation } => {
                self.on_granted(nonce, incarnation);
                Ok(())
            }
            Msg::Ack {
                incarnation,
                hwm,
                seq,
            } => self.on_ack(incarnation, hwm, seq),
            Msg::Expired { incarnation } => {
                self.on_expired(incarnation);
                Ok(())
            }
            Msg::Data { .. } => Err(SenderError::UnexpectedData),
            Msg::NewIncarnation { .. } => Err(SenderError::UnexpectedRequest),
        };
        self.check_invariants();
        result
    }

    fn handle_timeout(&mut self, now: Time) {
        self.advance_clock(now);
        if let Some(request) = self.request.as_mut() {
            if request.fire(now) {
                self.ready.push_message(Envelope {
                    to: self.receiver,
                    msg: Msg::NewIncarnation { nonce: self.nonce },
                });
                self.stats.retransmitted += 1;
            }
        }
        let Some(incarnation) = self.incarnation else {
            return;
        };
        for (&seq, out) in self.outbox.iter_mut() {
            if !out.retry.fire(now) {
                continue;
            }
            self.ready.push_message(Envelope {
                to: self.receiver,
                msg: Msg::Data {
                    incarnation,
                    seq,
                    transfer: out.transfer,
                },
            });
            self.stats.retransmitted += 1;
            trace!(
                target: TRACE_TARGET,
                node = self.id, role = "sender", step = step::RETRANSMIT, peer = self.receiver,
                incarnation, seq, next_interval_ms = out.retry.interval.as_millis() as u64,
                persisted = "none", sent = "data",
            );
        }
    }

    fn poll_timeout(&self) -> Option<Time> {
        let outbox = self.outbox.values().map(|o| o.retry.deadline);
        outbox.chain(self.request.map(|r| r.deadline)).min()
    }

    fn poll_ready(&mut self) -> Ready<SenderRecord, Msg, SenderEvent> {
        std::mem::take(&mut self.ready)
    }

    fn snapshot(&self) -> SenderRecord {
        assert!(
            self.ready.records().is_empty(),
            "snapshot with records not yet polled and persisted"
        );
        let outbox: Vec<(Seq, Transfer)> =
            self.outbox.iter().map(|(&s, o)| (s, o.transfer)).collect();
        debug!(
            target: TRACE_TARGET,
            node = self.id, role = "sender", step = step::SNAPSHOT, peer = self.receiver,
            next_seq = self.next_seq, outbox = outbox.len(), persisted = "snapshot", sent = "none",
        );
        SenderRecord::Snapshot {
            incarnation: self.incarnation,
            next_seq: self.next_seq,
            outbox,
        }
    }
}

// ---- Read-only view for eo-conformance's abstraction functions (no behaviour change). ----
impl Sender {
    /// The unacknowledged messages, by seq: what a snapshot's outbox would hold,
    /// readable whether or not the last outputs were polled.
    pub fn outbox(&self) -> impl Iterator<Item = (Seq, Transfer)> + '_ {
        self.outbox.iter().map(|(&seq, out)| (seq, out.transfer))
    }

    /// The nonce of the request for an incarnation under way, if one is.
    pub fn requesting(&self) -> Option<u64> {
        self.request.map(|_| self.nonce)
    }
}

// ---- Added for eo-conformance (issue 12 §1): a clone, and the protocol state as a value ----
// Additive only: nothing above reads these. The conformance adapter runs the core as a
// Stateright actor, whose state must be cloned and compared.

/// A field-by-field copy: the core holds no resource, so a clone is a second core in
/// the same state (its pending `Ready` included).
impl Clone for Sender {
    fn clone(&self) -> Sender {
        Sender {
            id: self.id,
            receiver: self.receiver,
            incarnation: self.incarnation,
            request: self.request,
            nonce: self.nonce,
            next_seq: self.next_seq,
            outbox: self.outbox.clone(),
            ready: self.ready.clone(),
            now: self.now,
            stats: self.stats,
        }
    }
}

/// A sender's protocol state: everything but its clock, its retransmission
/// deadlines and intervals, and its counters. Two senders with equal protocol
/// states and every deadline already due (a driver whose `now` is past them all)
/// answer every input alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SenderProtocol {
    pub incarnation: Option<Incarnation>,
    /// Whether it is asking for an incarnation.
    pub requesting: bool,
    pub nonce: u64,
    pub next_seq: Seq,
    /// Unacknowledged messages: (seq, from, to, amount).
    pub outbox: Vec<(
        Seq,
        crate::bank::AccountId,
        crate::bank::AccountId,
        crate::bank::Amount,
    )>,
    /// Whether outputs wait to be polled.
    pub unpolled: bool,
}

impl Sender {
    /// The protocol state (see [`SenderProtocol`]).
    pub fn protocol(&self) -> SenderProtocol {
        SenderProtocol {
            incarnation: self.incarnation,
            requesting: self.request.is_some(),
            nonce: self.nonce,
            next_seq: self.next_seq,
            outbox: self
                .outbox
                .iter()
                .map(|(&seq, o)| (seq, o.transfer.from, o.transfer.to, o.transfer.amount))
                .collect(),
            unpolled: !self.ready.is_empty(),
        }
    }
}
