//! The receiving role: grants incarnations and applies each message to the bank
//! exactly once, with dedup state per (sender, incarnation) that is retired after
//! a retention.

use super::{
    amount_in_range, step, DedupSnapshot, Incarnation, Msg, ReceiverError, ReceiverEvent,
    ReceiverRecord, RecoverError, Seq, DEDUP_ABOVE_MAX, RETENTION_DEFAULT, SENDERS_MAX, SEQ_MAX,
    TRACE_TARGET, WINDOW_MAX,
};
use crate::bank::{Bank, Transfer};
use crate::core::{Core, Envelope, NodeId, Ready, Time};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tracing::debug;

/// The receiving side of ack-retry.
///
/// Call order (see [`crate::core`]):
///
/// 1. `Receiver::new(id)` (or [`Receiver::with_retention`]) on first boot, or
///    `Receiver::recover(id, now, records)` after a restart, with every record
///    the log returned (a snapshot first, if any);
/// 2. inputs: [`Core::handle_message`] with a `now` that never goes backwards
///    (the receiver has no timers: idle senders are retired when the next
///    message arrives);
/// 3. after each input, [`Core::poll_ready`], carried out as [`crate::release`]
///    requires. Redeliveries produce an ack without a record; it rests on an
///    earlier `Ready`'s record, which the release's position covers;
/// 4. [`Core::snapshot`] only when every record polled so far is durable.
///
/// ## Incarnations, fencing and retention
///
/// A sender with an empty log asks for an incarnation; the receiver grants the
/// next one (unique across senders, only growing), records it and answers. Per
/// sender it keeps one entry: the incarnations granted since the entry was
/// created (`floor..=granted`), the nonce of the request the last grant answered,
/// and the dedup state of the newest one that sent data. Data of a newer granted incarnation takes the dedup state over (seqs
/// restart at 1) and fences every older one; data of a fenced incarnation, or
/// of a sender without an entry, is answered [`Msg::Expired`] and not applied.
///
/// **Grants are idempotent per nonce.** A sender retransmits its request until
/// a grant arrives; a request whose nonce is the one the sender's last grant
/// answered gets that grant again, with no record (it rests on the durable
/// `Granted` record, which carries the nonce, as a duplicate's ack rests on its
/// `Applied`). Only the last grant's nonce is remembered: one per tracked
/// sender, so at most [`SENDERS_MAX`] nonces. Forgetting an older nonce (a newer
/// request of the same sender was granted, or the sender was retired) cannot
/// break exactly-once: a late retransmission of the forgotten request then gets
/// a fresh incarnation, as every request did before, and a fresh incarnation
/// is unique and adopted only by a sender whose current request carries that
/// nonce; a sender that asked again has a new nonce and ignores it, and data
/// is admitted by incarnation, never by nonce. It is the model's rule
/// (`eo_models::ack_retry::receiver`), which also remembers one nonce per sender.
///
/// An entry whose sender has been idle (no grant, no data) longer than the
/// retention is retired with a [`ReceiverRecord::Retired`]. **The hazard of
/// retiring too early**: a sender idle beyond the retention that then
/// retransmits gets `Expired`, not an application and not an ack; the messages
/// it had not had acknowledged are applied at most once (perhaps before the
/// retirement, perhaps never), and its application is told their outcome is
/// unknown. Nothing is applied twice, because a retired incarnation is never
/// granted again. Idleness is measured from the receiver's own clock; after a
/// restart every entry counts as active at the recovery time, so a restart only
/// delays retirement.
#[derive(Debug)]
pub struct Receiver {
    id: NodeId,
    bank: Bank,
    /// Per sender, at most [`SENDERS_MAX`] entries.
    senders: BTreeMap<NodeId, Entry>,
    /// The last incarnation granted to any sender (0: none yet).
    last_granted: Incarnation,
    retention: Duration,
    ready: Ready<ReceiverRecord, Msg, ReceiverEvent>,
    now: Time,
    stats: ReceiverStats,
    /// Benchmark-only (feature `bench-baseline`): duplicates are applied again,
    /// as an at-least-once receiver would. Off unless set; never for real use
    /// (a log with a duplicate `Applied` does not recover: `AppliedTwice`).
    #[cfg(feature = "bench-baseline")]
    at_least_once: bool,
}

/// What the receiver knows of one sender.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// The first incarnation granted since the entry was created: lower ones are
    /// fenced (granted before a retirement, or to nobody here).
    floor: Incarnation,
    /// The last incarnation granted to this sender.
    granted: Incarnation,
    /// The nonce of the request `granted` answered: a retransmission of that
    /// request is answered with `granted` again.
    nonce: u64,
    /// Dedup state of the newest incarnation that sent data (0: none yet).
    dedup: Dedup,
    /// The last grant or data seen from the sender.
    last_active: Time,
}

impl Entry {
    /// Whether data of `incarnation` may be applied: granted in this entry's life
    /// and not older than the incarnation the dedup state belongs to.
    fn admits(&self, incarnation: Incarnation) -> bool {
        incarnation >= self.floor && incarnation >= self.dedup.incarnation
    }
}

/// Which seqs of one incarnation are applied: all `<= hwm`, and those in `above`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Dedup {
    incarnation: Incarnation,
    hwm: Seq,
    /// Applied seqs in `(hwm + 1, hwm + WINDOW_MAX]`; never contains `hwm + 1`.
    above: BTreeSet<Seq>,
}

impl Dedup {
    fn fresh(incarnation: Incarnation) -> Dedup {
        Dedup {
            incarnation,
            ..Dedup::default()
        }
    }

    fn contains(&self, seq: Seq) -> bool {
        seq <= self.hwm || self.above.contains(&seq)
    }

    /// `hwm <= SEQ_MAX` always (it only reaches seqs that were in the window, and a
    /// snapshot's is checked), so `hwm + WINDOW_MAX` does not overflow.
    fn in_window(&self, seq: Seq) -> bool {
        seq != 0 && seq <= SEQ_MAX && seq <= self.hwm + WINDOW_MAX
    }

    /// Marks `seq` applied; the caller checked `in_window` and `!contains`.
    fn insert(&mut self, seq: Seq) {
        debug_assert!(self.in_window(seq) && !self.contains(seq));
        self.above.insert(seq);
        while self.above.remove(&(self.hwm + 1)) {
            self.hwm += 1;
        }
        assert!(
            self.above.len() <= DEDUP_ABOVE_MAX,
            "dedup set above hwm exceeds its bound"
        );
        debug_assert!(self
            .above
            .iter()
            .all(|&s| s > self.hwm + 1 && s <= self.hwm + WINDOW_MAX));
    }
}

/// Counters of one receiver process (they restart from zero after a crash).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    pub applied: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub granted: u64,
    /// Retransmitted requests answered with their earlier grant (no record).
    pub regranted: u64,
    /// Data of a fenced or retired incarnation, answered `Expired`.
    pub expired: u64,
    pub retired: u64,
}

/// What an incoming data message is, before anything changes.
enum Verdict {
    Expired,
    Duplicate,
    Apply,
}

impl Receiver {
    /// A receiver that has never run, with [`RETENTION_DEFAULT`].
    pub fn new(id: NodeId) -> Receiver {
        Receiver::with_retention(id, RETENTION_DEFAULT)
    }

    /// A receiver that has never run and retires senders idle for `retention`.
    pub fn with_retention(id: NodeId, retention: Duration) -> Receiver {
        Receiver {
            id,
            bank: Bank::new(),
            senders: BTreeMap::new(),
            last_granted: 0,
            retention,
            ready: Ready::default(),
            now: Time::ZERO,
            stats: ReceiverStats::default(),
            #[cfg(feature = "bench-baseline")]
            at_least_once: false,
        }
    }

    /// Benchmark-only (feature `bench-baseline`): with `on`, the receiver skips
    /// its duplicate check and applies every data message in the window, the
    /// at-least-once baseline that measures what deduplication costs.
    #[cfg(feature = "bench-baseline")]
    pub fn set_at_least_once(&mut self, on: bool) {
        self.at_least_once = on;
    }

    /// False only for the benchmark's at-least-once baseline.
    fn deduplicates(&self) -> bool {
        #[cfg(feature = "bench-baseline")]
        return !self.at_least_once;
        #[cfg(not(feature = "bench-baseline"))]
        true
    }

    /// Rebuilds a receiver from its log: an optional snapshot, then the records
    /// appended after it. Every sender counts as active at `now`.
    pub fn recover(
        id: NodeId,
        now: Time,
        records: impl IntoIterator<Item = ReceiverRecord>,
    ) -> Result<Receiver, RecoverError> {
        Receiver::recover_with_retention(id, now, RETENTION_DEFAULT, records)
    }

    /// [`Receiver::recover`] with a configured retention.
    pub fn recover_with_retention(
        id: NodeId,
        now: Time,
        retention: Duration,
        records: impl IntoIterator<Item = ReceiverRecord>,
    ) -> Result<Receiver, RecoverError> {
        let mut receiver = Receiver::with_retention(id, retention);
        receiver.now = now;
        let mut count = 0usize;
        for (index, record) in records.into_iter().enumerate() {
            count += 1;
            receiver.replay(index, record)?;
        }
        debug!(
            target: TRACE_TARGET,
            node = id, role = "receiver", step = step::RECOVER,
            records = count, senders = receiver.senders.len(), persisted = "none", sent = "none",
        );
        Ok(receiver)
    }

    fn replay(&mut self, index: usize, record: ReceiverRecord) -> Result<(), RecoverError> {
        let bound = |what| RecoverError::OutOfBounds { index, what };
        match record {
            ReceiverRecord::Snapshot {
                bank,
                last_granted,
                senders,
            } => {
                if index != 0 {
                    return Err(RecoverError::SnapshotNotFirst { index });
                }
                if senders.len() > SENDERS_MAX {
                    return Err(bound("snapshot has too many senders"));
                }
                if !bank.is_well_formed() {
                    return Err(bound("snapshot balance beyond BALANCE_MAX"));
                }
                self.bank = bank;
                self.last_granted = last_granted;
                for s in senders {
                    if s.hwm > SEQ_MAX {
                        return Err(bound("snapshot hwm beyond SEQ_MAX"));
                    }
                    let dedup = Dedup {
                        incarnation: s.incarnation,
                        hwm: s.hwm,
                        above: s.above.iter().copied().collect(),
                    };
                    let well_formed = dedup.above.len() == s.above.len()
                        && dedup.above.len() <= DEDUP_ABOVE_MAX
                        && dedup
                            .above
                            .iter()
                            .all(|&q| q > s.hwm + 1 && q <= s.hwm + WINDOW_MAX);
                    if !well_formed {
                        return Err(bound("snapshot dedup set outside the window"));
                    }
                    let granted_well = 0 < s.floor
                        && s.floor <= s.granted
                        && s.granted <= last_granted
                        && (s.incarnation == 0
                            || (s.floor <= s.incarnation && s.incarnation <= s.granted))
                        && (s.incarnation != 0 || (s.hwm == 0 && s.above.is_empty()));
                    if !granted_well {
                        return Err(RecoverError::Incarnation {
                            index,
                            what: "snapshot incarnations out of order",
                        });
                    }
                    let entry = Entry {
                        floor: s.floor,
                        granted: s.granted,
                        nonce: s.nonce,
                        dedup,
                        last_active: self.now,
                    };
                    if self.senders.insert(s.sender, entry).is_some() {
                        return Err(bound("snapshot repeats a sender"));
                    }
                }
            }
            ReceiverRecord::Granted {
                sender,
                incarnation,
                nonce,
            } => {
                if incarnation <= self.last_granted {
                    return Err(RecoverError::Incarnation {
                        index,
                        what: "granted incarnation not above the last one",
                    });
                }
                if !self.senders.contains_key(&sender) && self.senders.len() >= SENDERS_MAX {
                    return Err(bound("grant to a sender beyond the bound"));
                }
                self.grant(sender, incarnation, nonce);
            }
            ReceiverRecord::Retired { sender } => {
                if self.senders.remove(&sender).is_none() {
                    return Err(bound("retired a sender that is not tracked"));
                }
            }
            ReceiverRecord::Applied {
                from,
                incarnation,
                seq,
                transfer,
            } => {
                if !amount_in_range(transfer.amount) {
                    return Err(bound("applied amount out of range"));
                }
                let Some(entry) = self.senders.get_mut(&from) else {
                    return Err(RecoverError::Incarnation {
                        index,
                        what: "applied record from a sender without an entry",
                    });
                };
                if !entry.admits(incarnation) || incarnation > entry.granted {
                    return Err(RecoverError::Incarnation {
                        index,
                        what: "applied record of a fenced or ungranted incarnation",
                    });
                }
                if incarnation > entry.dedup.incarnation {
                    entry.dedup = Dedup::fresh(incarnation);
                }
                if entry.dedup.contains(seq) {
                    return Err(RecoverError::AppliedTwice { index, from, seq });
                }
                if !entry.dedup.in_window(seq) {
                    return Err(bound("applied seq beyond the window (or 0)"));
                }
                self.bank
                    .apply_transfer(&transfer)
                    .map_err(|_| bound("applied transfer beyond BALANCE_MAX"))?;
                entry.dedup.insert(seq);
            }
        }
        Ok(())
    }

    /// Records `incarnation` as granted to `sender`'s request `nonce` (creating
    /// its entry).
    fn grant(&mut self, sender: NodeId, incarnation: Incarnation, nonce: u64) {
        self.last_granted = incarnation;
        let now = self.now;
        let entry = self.senders.entry(sender).or_insert(Entry {
            floor: incarnation,
            granted: incarnation,
            nonce,
            dedup: Dedup::default(),
            last_active: now,
        });
        entry.granted = incarnation;
        entry.nonce = nonce;
        entry.last_active = now;
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The ledger, as of the records produced so far.
    pub fn bank(&self) -> &Bank {
        &self.bank
    }

    /// Whether message `seq` of `from`'s `incarnation` is applied, if the receiver
    /// still knows (`None` once that incarnation is fenced or retired).
    pub fn applied(&self, from: NodeId, incarnation: Incarnation, seq: Seq) -> Option<bool> {
        let entry = self.senders.get(&from)?;
        if !entry.admits(incarnation) || incarnation > entry.granted {
            return None;
        }
        Some(entry.dedup.incarnation == incarnation && entry.dedup.contains(seq))
    }

    /// `from`'s high-water mark in its current incarnation.
    pub fn hwm(&self, from: NodeId) -> Seq {
        self.senders.get(&from).map_or(0, |e| e.dedup.hwm)
    }

    /// The last incarnation granted to `from`, if it is tracked.
    pub fn granted(&self, from: NodeId) -> Option<Incarnation> {
        self.senders.get(&from).map(|e| e.granted)
    }

    /// The size of the dedup state: (senders, seqs remembered above the hwms).
    pub fn dedup_size(&self) -> (usize, usize) {
        (
            self.senders.len(),
            self.senders.values().map(|e| e.dedup.above.len()).sum(),
        )
    }

    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    fn reject(
        &mut self,
        error: ReceiverError,
        from: NodeId,
        seq: Seq,
    ) -> Result<(), ReceiverError> {
        self.stats.rejected += 1;
        debug!(
            target: TRACE_TARGET,
            node = self.id, role = "receiver", step = step::REJECT, peer = from, seq,
            hwm = self.hwm(from), error = %error, persisted = "none", sent = "none",
        );
        Err(error)
    }

    /// Retires every sender idle for longer than the retention. At most
    /// [`SENDERS_MAX`] entries to look at.
    fn retire_idle(&mut self) {
        let now = self.now;
        let retention = self.retention;
        let is_idle = |e: &Entry| now.saturating_since(e.last_active) > retention;
        if !self.senders.values().any(is_idle) {
            return; // the common case: no allocation
        }
        let idle: Vec<NodeId> = self
            .senders
            .iter()
            .filter(|(_, e)| is_idle(e))
            .map(|(&s, _)| s)
            .collect();
        for sender in idle {
            self.senders.remove(&sender);
            self.ready.push_record(ReceiverRecord::Retired { sender });
            self.stats.retired += 1;
            debug!(
                target: TRACE_TARGET,
                node = self.id, role = "receiver", step = step::RETIRE, peer = sender,
                persisted = "retired", sent = "none",
            );
        }
    }

    fn on_request(&mut self, from: NodeId, nonce: u64) -> Result<(), ReceiverError> {
        if let Some(entry) = self.senders.get_mut(&from).filter(|e| e.nonce == nonce) {
            // A retransmitted request: the same grant again. Its `Granted` record
            // came in an earlier Ready, which this one's release position covers.
            entry.last_active = self.now;
            let incarnation = entry.granted;
            self.ready.push_message(Envelope {
                to: from,
                msg: Msg::Granted { nonce, incarnation },
            });
            self.stats.regranted += 1;
            debug!(
                target: TRACE_TARGET,
                node = self.id, role = "receiver", step = step::GRANT, peer = from, incarnation,
                persisted = "none", sent = "granted",
            );
            return Ok(());
        }
        if !self.senders.contains_key(&from) && self.senders.len() >= SENDERS_MAX {
            return self.reject(ReceiverError::TooManySenders { from }, from, 0);
        }
        let Some(incarnation) = self.last_granted.checked_add(1) else {
            let last_granted = self.last_granted;
            let error = ReceiverError::IncarnationsExhausted { from, last_granted };
            return self.reject(error, from, 0);
        };
        self.grant(from, incarnation, nonce);
        self.ready.push_record(ReceiverRecord::Granted {
            sender: from,
            incarnation,
            nonce,
        });
        self.ready.push_message(Envelope {
            to: from,
            msg: Msg::Granted { nonce, incarnation },
        });
        self.stats.granted += 1;
        debug!(
            target: TRACE_TARGET,
            node = self.id, role = "receiver", step = step::GRANT, peer = from, incarnation,
            persisted = "granted", sent = "granted",
        );
        Ok(())
    }

    fn on_data(
        &mut self,
        from: NodeId,
        incarnation: Incarnation,
        seq: Seq,
        transfer: Transfer,
    ) -> Result<(), ReceiverError> {
        if seq == 0 {
            return self.reject(ReceiverError::SeqZero { from }, from, seq);
        }
        if !amount_in_range(transfer.amount) {
            let amount = transfer.amount;
            return self.reject(ReceiverError::AmountOutOfRange { from, amount }, from, seq);
        }
        let deduplicates = self.deduplicates();
        let verdict = match self.senders.get(&from) {
            None => Verdict::Expired,
            Some(e) if incarnation > e.granted => {
                let granted = e.granted;
                let error = ReceiverError::UnknownIncarnation {
                    from,
                    incarnation,
                    granted,
                };
                return self.reject(error, from, seq);
            }
            Some(e) if !e.admits(incarnation) => Verdict::Expired,
            Some(e)
                if deduplicates && e.dedup.incarnation == incarnation && e.dedup.contains(seq) =>
            {
                Verdict::Duplicate
            }
            Some(e) => {
                let hwm = if e.dedup.incarnation == incarnation {
                    e.dedup.hwm
                } else {
                    0 // a newer incarnation starts afresh
                };
                if seq > SEQ_MAX || seq > hwm + WINDOW_MAX {
                    let error = ReceiverError::SeqBeyondWindow { from, seq, hwm };
                    return self.reject(error, from, seq);
                }
                Verdict::Apply
            }
        };
        match verdict {
            Verdict::Expired => {
                // No dedup state for this incarnation: applying could apply twice.
                self.ready.push_message(Envelope {
                    to: from,
                    msg: Msg::Expired { incarnation },
                });
                self.stats.expired += 1;
                debug!(
                    target: TRACE_TARGET,
                    node = self.id, role = "receiver", step = step::EXPIRE, peer = from,
                    incarnation, seq, persisted = "none", sent = "expired",
                );
            }
            Verdict::Duplicate => {
                // Already applied and durable (its record preceded this Ready): say so again.
                let entry = self.senders.get_mut(&from).expect("verdict saw the entry");
                entry.last_active = self.now;
                let hwm = entry.dedup.hwm;
                self.ready.push_message(Envelope {
                    to: from,
                    msg: Msg::Ack {
                        incarnation,
                        hwm,
                        seq,
                    },
                });
                self.stats.duplicates += 1;
                debug!(
                    target: TRACE_TARGET,
                    node = self.id, role = "receiver", step = step::DUPLICATE, peer = from,
                    incarnation, seq, hwm, persisted = "none", sent = "ack",
                );
            }
            Verdict::Apply => {
                if self.bank.apply_transfer(&transfer).is_err() {
                    return self.reject(ReceiverError::BalanceOutOfRange { from, seq }, from, seq);
                }
                let now = self.now;
                let entry = self.senders.get_mut(&from).expect("verdict saw the entry");
                if incarnation > entry.dedup.incarnation {
                    entry.dedup = Dedup::fresh(incarnation); // fences the older ones
                }
                // Only the at-least-once baseline re-applies a seq already marked.
                if deduplicates || !entry.dedup.contains(seq) {
                    entry.dedup.insert(seq);
                }
                entry.last_active = now;
                let hwm = entry.dedup.hwm;
                // One record carries the effect and the dedup update; the ack follows it.
                self.ready.push_record(ReceiverRecord::Applied {
                    from,
                    incarnation,
                    seq,
                    transfer,
                });
                self.ready.push_message(Envelope {
                    to: from,
                    msg: Msg::Ack {
                        incarnation,
                        hwm,
                        seq,
                    },
                });
                self.ready.push_event(ReceiverEvent::Applied {
                    from,
                    incarnation,
                    seq,
                    transfer,
                });
                self.stats.applied += 1;
                debug!(
                    target: TRACE_TARGET,
                    node = self.id, role = "receiver", step = step::APPLY, peer = from,
                    incarnation, seq, hwm, amount = transfer.amount,
                    persisted = "applied", sent = "ack",
                );
            }
        }
        Ok(())
    }
}

impl Core for Receiver {
    type Msg = Msg;
    type Record = ReceiverRecord;
    type Event = ReceiverEvent;
    type Error = ReceiverError;

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Msg) -> Result<(), ReceiverError> {
        self.now.advance_to(now);
        self.retire_idle();
        match msg {
            Msg::NewIncarnation { nonce } => self.on_request(from, nonce),
            Msg::Data {
                incarnation,
                seq,
                transfer,
            } => self.on_data(from, incarnation, seq, transfer),
            Msg::Ack { seq, .. } => self.reject(ReceiverError::UnexpectedAck { from }, from, seq),
            Msg::Granted { .. } | Msg::Expired { .. } => {
                self.reject(ReceiverError::UnexpectedGrant { from }, from, 0)
            }
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        self.now.advance_to(now);
    }

    fn poll_timeout(&self) -> Option<Time> {
        None
    }

    fn poll_ready(&mut self) -> Ready<ReceiverRecord, Msg, ReceiverEvent> {
        std::mem::take(&mut self.ready)
    }

    fn snapshot(&self) -> ReceiverRecord {
        assert!(
            self.ready.records().is_empty(),
            "snapshot with records not yet polled and persisted"
        );
        let senders = self.dedup_snapshots();
        debug!(
            target: TRACE_TARGET,
            node = self.id, role = "receiver", step = step::SNAPSHOT,
            senders = senders.len(), persisted = "snapshot", sent = "none",
        );
        ReceiverRecord::Snapshot {
            bank: self.bank.clone(),
            last_granted: self.last_granted,
            senders,
        }
    }
}

// ---- Read-only view for eo-conformance's abstraction functions (no behaviour change). ----
impl Receiver {
    /// Every tracked sender's dedup state, as a snapshot would carry it (by
    /// sender), readable whether or not the last outputs were polled.
    pub fn dedup_snapshots(&self) -> Vec<DedupSnapshot> {
        self.senders
            .iter()
            .map(|(&sender, e)| DedupSnapshot {
                sender,
                floor: e.floor,
                granted: e.granted,
                nonce: e.nonce,
                incarnation: e.dedup.incarnation,
                hwm: e.dedup.hwm,
                above: e.dedup.above.iter().copied().collect(),
            })
            .collect()
    }

    /// The last incarnation granted to any sender (0: none yet).
    pub fn last_granted(&self) -> Incarnation {
        self.last_granted
    }
}

// ---- Added for eo-conformance (issue 12 §1): a clone, and the protocol state as a value ----
// Additive only: nothing above reads these.

/// A field-by-field copy: the core holds no resource.
impl Clone for Receiver {
    fn clone(&self) -> Receiver {
        Receiver {
            id: self.id,
            bank: self.bank.clone(),
            senders: self.senders.clone(),
            last_granted: self.last_granted,
            retention: self.retention,
            ready: self.ready.clone(),
            now: self.now,
            stats: self.stats,
            #[cfg(feature = "bench-baseline")]
            at_least_once: self.at_least_once,
        }
    }
}

/// One tracked sender in a [`ReceiverProtocol`]: its incarnations and dedup state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SenderEntryProtocol {
    pub sender: NodeId,
    pub floor: Incarnation,
    pub granted: Incarnation,
    pub nonce: u64,
    pub incarnation: Incarnation,
    pub hwm: Seq,
    pub above: Vec<Seq>,
}

/// A receiver's protocol state: everything but its clock, the senders' last
/// activity times, its retention and its counters. Two receivers with equal
/// protocol states whose clocks never pass a retention (a driver whose `now`
/// stands still) answer every input alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiverProtocol {
    /// Non-zero balances, by account.
    pub balances: Vec<(crate::bank::AccountId, crate::bank::Amount)>,
    pub last_granted: Incarnation,
    pub senders: Vec<SenderEntryProtocol>,
    /// Whether outputs wait to be polled.
    pub unpolled: bool,
}

impl Receiver {
    /// The protocol state (see [`ReceiverProtocol`]).
    pub fn protocol(&self) -> ReceiverProtocol {
        ReceiverProtocol {
            balances: self.bank.balances().iter().map(|(&a, &b)| (a, b)).collect(),
            last_granted: self.last_granted,
            senders: self
                .senders
                .iter()
                .map(|(&sender, e)| SenderEntryProtocol {
                    sender,
                    floor: e.floor,
                    granted: e.granted,
                    nonce: e.nonce,
                    incarnation: e.dedup.incarnation,
                    hwm: e.dedup.hwm,
                    above: e.dedup.above.iter().copied().collect(),
                })
                .collect(),
            unpolled: !self.ready.is_empty(),
        }
    }
}
