//! The sending role: a durable outbox with a bounded window and retransmission.

use super::{
    amount_in_range, step, Msg, RecoverError, SenderError, SenderEvent, SenderRecord, Seq,
    RETRY_INTERVAL_MAX, RETRY_INTERVAL_MIN, TRACE_TARGET, WINDOW_MAX,
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
/// 1. `Sender::new(id, receiver)` on first boot, or `Sender::recover(id, receiver,
///    now, records)` after a restart, with every record the log returned (a
///    snapshot first, if any);
/// 2. inputs: [`Sender::submit`], [`Core::handle_message`] (acks),
///    [`Core::handle_timeout`], each with a `now` that never goes backwards;
/// 3. after each input, [`Core::poll_ready`]: append and sync the records, then
///    send the messages and deliver the events; then re-arm the timer from
///    [`Core::poll_timeout`];
/// 4. [`Core::snapshot`] only when every record polled so far is durable.
#[derive(Debug)]
pub struct Sender {
    id: NodeId,
    receiver: NodeId,
    /// The seq the next submission gets; never reused for a message that left.
    next_seq: Seq,
    /// Unacknowledged messages, keyed by seq.
    outbox: BTreeMap<Seq, Outgoing>,
    ready: Ready<SenderRecord, Msg, SenderEvent>,
    /// The latest `now` seen, to catch a driver whose clock runs backwards.
    now: Time,
    stats: SenderStats,
}

#[derive(Clone, Copy, Debug)]
struct Outgoing {
    transfer: Transfer,
    /// The interval to wait before the next retransmission.
    interval: Duration,
    /// When the next retransmission is due.
    deadline: Time,
}

/// Counters of one sender incarnation (they restart from zero after a crash).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderStats {
    pub submitted: u64,
    pub retransmitted: u64,
    pub acked: u64,
}

impl Sender {
    /// A sender that has never run. `receiver` is the only peer it talks to.
    pub fn new(id: NodeId, receiver: NodeId) -> Sender {
        Sender {
            id,
            receiver,
            next_seq: 1,
            outbox: BTreeMap::new(),
            ready: Ready::default(),
            now: Time::ZERO,
            stats: SenderStats::default(),
        }
    }

    /// Rebuilds a sender from its log: an optional snapshot, then the records
    /// appended after it. Every message still in the outbox is queued for sending
    /// in the first `poll_ready`, since the crash may have lost it in flight.
    pub fn recover(
        id: NodeId,
        receiver: NodeId,
        now: Time,
        records: impl IntoIterator<Item = SenderRecord>,
    ) -> Result<Sender, RecoverError> {
        let mut sender = Sender::new(id, receiver);
        sender.now = now;
        let mut count = 0usize;
        for (index, record) in records.into_iter().enumerate() {
            count += 1;
            sender.replay(index, record)?;
        }
        for (&seq, out) in sender.outbox.iter_mut() {
            out.interval = RETRY_INTERVAL_MIN;
            out.deadline = now + RETRY_INTERVAL_MIN;
            sender.ready.push_message(Envelope {
                to: receiver,
                msg: Msg::Data {
                    seq,
                    transfer: out.transfer,
                },
            });
        }
        debug!(
            target: TRACE_TARGET,
            node = id, role = "sender", step = step::RECOVER, peer = receiver,
            records = count, next_seq = sender.next_seq, outbox = sender.outbox.len(),
            persisted = "none", sent = if sender.outbox.is_empty() { "none" } else { "data" },
        );
        sender.check_invariants();
        Ok(sender)
    }

    fn replay(&mut self, index: usize, record: SenderRecord) -> Result<(), RecoverError> {
        // Timers are set once the whole log is replayed, in `recover`.
        let pending = |transfer| Outgoing {
            transfer,
            interval: RETRY_INTERVAL_MIN,
            deadline: Time::ZERO,
        };
        match record {
            SenderRecord::Snapshot { next_seq, outbox } => {
                if index != 0 {
                    return Err(RecoverError::SnapshotNotFirst { index });
                }
                if next_seq == 0 {
                    return Err(RecoverError::OutOfBounds {
                        index,
                        what: "snapshot next_seq is 0",
                    });
                }
                if outbox.len() > WINDOW_MAX as usize {
                    return Err(RecoverError::OutOfBounds {
                        index,
                        what: "snapshot outbox exceeds the window",
                    });
                }
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
            SenderRecord::Submitted { seq, transfer } => {
                if seq != self.next_seq {
                    return Err(RecoverError::SeqNotConsecutive {
                        index,
                        seq,
                        expected: self.next_seq,
                    });
                }
                if !amount_in_range(transfer.amount) || self.window_full() {
                    return Err(RecoverError::OutOfBounds {
                        index,
                        what: "submitted record beyond the window or amount bound",
                    });
                }
                self.outbox.insert(seq, pending(transfer));
                self.next_seq += 1;
            }
            SenderRecord::Acked { hwm, seq } => {
                if hwm >= self.next_seq || seq >= self.next_seq || seq == 0 {
                    return Err(RecoverError::AckBeyondSubmitted { index, hwm, seq });
                }
                self.remove_acked(hwm, seq);
            }
        }
        Ok(())
    }

    /// Accepts `transfer` as the next message. It is sent (in the next
    /// `poll_ready`, after its `Submitted` record) and retransmitted until
    /// acknowledged. Returns its seq, or `WindowFull` as backpressure.
    pub fn submit(&mut self, now: Time, transfer: Transfer) -> Result<Seq, SenderError> {
        self.advance_clock(now);
        if !amount_in_range(transfer.amount) {
            return Err(SenderError::AmountOutOfRange(transfer.amount));
        }
        if self.window_full() {
            let oldest = self.base();
            return Err(SenderError::WindowFull {
                in_flight: self.outbox.len(),
                oldest,
            });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outbox.insert(
            seq,
            Outgoing {
                transfer,
                interval: RETRY_INTERVAL_MIN,
                deadline: now + RETRY_INTERVAL_MIN,
            },
        );
        // The record precedes the message in the same Ready: the driver makes it
        // durable first, so a message never leaves without a durable outbox entry.
        self.ready
            .push_record(SenderRecord::Submitted { seq, transfer });
        self.ready.push_message(Envelope {
            to: self.receiver,
            msg: Msg::Data { seq, transfer },
        });
        self.ready
            .push_event(SenderEvent::Accepted { seq, transfer });
        self.stats.submitted += 1;
        debug!(
            target: TRACE_TARGET,
            node = self.id, role = "sender", step = step::SUBMIT, peer = self.receiver,
            seq, amount = transfer.amount, in_flight = self.outbox.len(),
            persisted = "submitted", sent = "data",
        );
        self.check_invariants();
        Ok(seq)
    }

    /// The oldest unacknowledged seq, or the next seq if nothing is in flight.
    fn base(&self) -> Seq {
        self.outbox.keys().next().copied().unwrap_or(self.next_seq)
    }

    fn window_full(&self) -> bool {
        self.next_seq - self.base() >= WINDOW_MAX
    }

    /// Removes acknowledged messages; returns how many left the outbox.
    fn remove_acked(&mut self, hwm: Seq, seq: Seq) -> usize {
        let mut removed = 0;
        while let Some(entry) = self.outbox.first_entry() {
            if *entry.key() > hwm {
                break;
            }
            let acked = *entry.key();
            entry.remove();
            self.ready.push_event(SenderEvent::Delivered { seq: acked });
            removed += 1;
        }
        if self.outbox.remove(&seq).is_some() {
            self.ready.push_event(SenderEvent::Delivered { seq });
            removed += 1;
        }
        removed
    }

    fn advance_clock(&mut self, now: Time) {
        self.now.advance_to(now);
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
        self.outbox.get(&seq).map(|o| o.interval)
    }

    fn check_invariants(&self) {
        assert!(self.next_seq >= 1);
        assert!(self.outbox.len() <= WINDOW_MAX as usize);
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
        let (hwm, seq) = match msg {
            Msg::Ack { hwm, seq } => (hwm, seq),
            Msg::Data { .. } => return Err(SenderError::UnexpectedData),
        };
        let highest = self.next_seq - 1;
        if hwm > highest || seq > highest || seq == 0 {
            return Err(SenderError::AckBeyondSent { hwm, seq, highest });
        }
        let removed = self.remove_acked(hwm, seq);
        if removed > 0 {
            // Not needed for safety (a lost `Acked` only causes a redundant
            // retransmission) but it keeps the recovered outbox small.
            self.ready.push_record(SenderRecord::Acked { hwm, seq });
            self.stats.acked += removed as u64;
        }
        debug!(
            target: TRACE_TARGET,
            node = self.id, role = "sender", step = step::ACKED, peer = from,
            seq, hwm, removed, in_flight = self.outbox.len(),
            persisted = if removed > 0 { "acked" } else { "none" }, sent = "none",
        );
        self.check_invariants();
        Ok(())
    }

    fn handle_timeout(&mut self, now: Time) {
        self.advance_clock(now);
        for (&seq, out) in self.outbox.iter_mut() {
            if out.deadline > now {
                continue;
            }
            out.interval = (out.interval * 2).min(RETRY_INTERVAL_MAX);
            out.deadline = now + out.interval;
            self.ready.push_message(Envelope {
                to: self.receiver,
                msg: Msg::Data {
                    seq,
                    transfer: out.transfer,
                },
            });
            self.stats.retransmitted += 1;
            trace!(
                target: TRACE_TARGET,
                node = self.id, role = "sender", step = step::RETRANSMIT, peer = self.receiver,
                seq, next_interval_ms = out.interval.as_millis() as u64,
                persisted = "none", sent = "data",
            );
        }
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.outbox.values().map(|o| o.deadline).min()
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
            next_seq: self.next_seq,
            outbox,
        }
    }
}
