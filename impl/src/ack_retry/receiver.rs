//! The receiving role: applies each message to the bank exactly once.

use super::{
    amount_in_range, step, DedupSnapshot, Msg, ReceiverError, ReceiverEvent, ReceiverRecord,
    RecoverError, Seq, DEDUP_ABOVE_MAX, SENDERS_MAX, TRACE_TARGET, WINDOW_MAX,
};
use crate::bank::Bank;
use crate::core::{Core, Envelope, NodeId, Ready, Time};
use std::collections::{BTreeMap, BTreeSet};
use tracing::debug;

/// The receiving side of ack-retry.
///
/// Call order (see [`crate::core`]):
///
/// 1. `Receiver::new(id)` on first boot, or `Receiver::recover(id, now, records)`
///    after a restart, with every record the log returned (a snapshot first, if
///    any);
/// 2. inputs: [`Core::handle_message`] with a `now` that never goes backwards
///    (the receiver has no timers);
/// 3. after each input, [`Core::poll_ready`]: append and sync the records, then
///    send the acknowledgements and deliver the events. Redeliveries produce an
///    ack without a record; it must still follow every earlier `Ready`'s records
///    (a driver that carries out `Ready`s in order does this);
/// 4. [`Core::snapshot`] only when every record polled so far is durable.
#[derive(Debug)]
pub struct Receiver {
    id: NodeId,
    bank: Bank,
    /// Dedup state per sender, at most [`SENDERS_MAX`] entries.
    senders: BTreeMap<NodeId, Dedup>,
    ready: Ready<ReceiverRecord, Msg, ReceiverEvent>,
    now: Time,
    stats: ReceiverStats,
}

/// Which seqs of one sender are applied: all `<= hwm`, and those in `above`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Dedup {
    hwm: Seq,
    /// Applied seqs in `(hwm + 1, hwm + WINDOW_MAX]`; never contains `hwm + 1`.
    above: BTreeSet<Seq>,
}

impl Dedup {
    fn contains(&self, seq: Seq) -> bool {
        seq <= self.hwm || self.above.contains(&seq)
    }

    fn in_window(&self, seq: Seq) -> bool {
        seq != 0 && seq <= self.hwm + WINDOW_MAX
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

/// Counters of one receiver incarnation (they restart from zero after a crash).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    pub applied: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

impl Receiver {
    /// A receiver that has never run.
    pub fn new(id: NodeId) -> Receiver {
        Receiver {
            id,
            bank: Bank::new(),
            senders: BTreeMap::new(),
            ready: Ready::default(),
            now: Time::ZERO,
            stats: ReceiverStats::default(),
        }
    }

    /// Rebuilds a receiver from its log: an optional snapshot, then the records
    /// appended after it.
    pub fn recover(
        id: NodeId,
        now: Time,
        records: impl IntoIterator<Item = ReceiverRecord>,
    ) -> Result<Receiver, RecoverError> {
        let mut receiver = Receiver::new(id);
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
        match record {
            ReceiverRecord::Snapshot { bank, senders } => {
                if index != 0 {
                    return Err(RecoverError::SnapshotNotFirst { index });
                }
                if senders.len() > SENDERS_MAX {
                    return Err(RecoverError::OutOfBounds {
                        index,
                        what: "snapshot has too many senders",
                    });
                }
                if !bank.is_well_formed() {
                    return Err(RecoverError::OutOfBounds {
                        index,
                        what: "snapshot balance beyond BALANCE_MAX",
                    });
                }
                self.bank = bank;
                for DedupSnapshot { sender, hwm, above } in senders {
                    let dedup = Dedup {
                        hwm,
                        above: above.iter().copied().collect(),
                    };
                    let well_formed = dedup.above.len() == above.len()
                        && dedup.above.len() <= DEDUP_ABOVE_MAX
                        && dedup
                            .above
                            .iter()
                            .all(|&s| s > hwm + 1 && s <= hwm + WINDOW_MAX);
                    if !well_formed {
                        return Err(RecoverError::OutOfBounds {
                            index,
                            what: "snapshot dedup set outside the window",
                        });
                    }
                    if self.senders.insert(sender, dedup).is_some() {
                        return Err(RecoverError::OutOfBounds {
                            index,
                            what: "snapshot repeats a sender",
                        });
                    }
                }
            }
            ReceiverRecord::Applied {
                from,
                seq,
                transfer,
            } => {
                if !self.senders.contains_key(&from) && self.senders.len() >= SENDERS_MAX {
                    return Err(RecoverError::OutOfBounds {
                        index,
                        what: "applied record from a sender beyond the bound",
                    });
                }
                if !amount_in_range(transfer.amount) {
                    return Err(RecoverError::OutOfBounds {
                        index,
                        what: "applied amount out of range",
                    });
                }
                let dedup = self.senders.entry(from).or_default();
                if dedup.contains(seq) {
                    return Err(RecoverError::AppliedTwice { index, from, seq });
                }
                if !dedup.in_window(seq) {
                    return Err(RecoverError::OutOfBounds {
                        index,
                        what: "applied seq beyond the window (or 0)",
                    });
                }
                self.bank
                    .apply_transfer(&transfer)
                    .map_err(|_| RecoverError::OutOfBounds {
                        index,
                        what: "applied transfer beyond BALANCE_MAX",
                    })?;
                dedup.insert(seq);
            }
        }
        Ok(())
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The ledger, as of the records produced so far.
    pub fn bank(&self) -> &Bank {
        &self.bank
    }

    /// Whether message `seq` from `from` is applied.
    pub fn has_applied(&self, from: NodeId, seq: Seq) -> bool {
        self.senders.get(&from).is_some_and(|d| d.contains(seq))
    }

    /// `from`'s high-water mark: every seq up to it is applied.
    pub fn hwm(&self, from: NodeId) -> Seq {
        self.senders.get(&from).map_or(0, |d| d.hwm)
    }

    /// The size of the dedup state: (senders, seqs remembered above the hwms).
    pub fn dedup_size(&self) -> (usize, usize) {
        (
            self.senders.len(),
            self.senders.values().map(|d| d.above.len()).sum(),
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
}

impl Core for Receiver {
    type Msg = Msg;
    type Record = ReceiverRecord;
    type Event = ReceiverEvent;
    type Error = ReceiverError;

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Msg) -> Result<(), ReceiverError> {
        self.now.advance_to(now);
        let (seq, transfer) = match msg {
            Msg::Data { seq, transfer } => (seq, transfer),
            Msg::Ack { seq, .. } => {
                return self.reject(ReceiverError::UnexpectedAck { from }, from, seq)
            }
        };
        if seq == 0 {
            return self.reject(ReceiverError::SeqZero { from }, from, seq);
        }
        if !amount_in_range(transfer.amount) {
            return self.reject(
                ReceiverError::AmountOutOfRange {
                    from,
                    amount: transfer.amount,
                },
                from,
                seq,
            );
        }
        if !self.senders.contains_key(&from) && self.senders.len() >= SENDERS_MAX {
            return self.reject(ReceiverError::TooManySenders { from }, from, seq);
        }
        // A sender gets dedup state only once one of its messages is applied.
        let unknown = Dedup::default();
        let dedup = self.senders.get(&from).unwrap_or(&unknown);
        if dedup.contains(seq) {
            // Already applied and durable (its record preceded this Ready): say so again.
            let hwm = dedup.hwm;
            self.ready.push_message(Envelope {
                to: from,
                msg: Msg::Ack { hwm, seq },
            });
            self.stats.duplicates += 1;
            debug!(
                target: TRACE_TARGET,
                node = self.id, role = "receiver", step = step::DUPLICATE, peer = from, seq, hwm,
                persisted = "none", sent = "ack",
            );
            return Ok(());
        }
        if !dedup.in_window(seq) {
            let hwm = dedup.hwm;
            return self.reject(ReceiverError::SeqBeyondWindow { from, seq, hwm }, from, seq);
        }
        if self.bank.apply_transfer(&transfer).is_err() {
            return self.reject(ReceiverError::BalanceOutOfRange { from, seq }, from, seq);
        }
        let dedup = self.senders.entry(from).or_default();
        dedup.insert(seq);
        let hwm = dedup.hwm;
        // One record carries the effect and the dedup update; the ack follows it.
        self.ready.push_record(ReceiverRecord::Applied {
            from,
            seq,
            transfer,
        });
        self.ready.push_message(Envelope {
            to: from,
            msg: Msg::Ack { hwm, seq },
        });
        self.ready.push_event(ReceiverEvent::Applied {
            from,
            seq,
            transfer,
        });
        self.stats.applied += 1;
        debug!(
            target: TRACE_TARGET,
            node = self.id, role = "receiver", step = step::APPLY, peer = from, seq, hwm,
            amount = transfer.amount, persisted = "applied", sent = "ack",
        );
        Ok(())
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
        let senders: Vec<DedupSnapshot> = self
            .senders
            .iter()
            .map(|(&sender, d)| DedupSnapshot {
                sender,
                hwm: d.hwm,
                above: d.above.iter().copied().collect(),
            })
            .collect();
        debug!(
            target: TRACE_TARGET,
            node = self.id, role = "receiver", step = step::SNAPSHOT,
            senders = senders.len(), persisted = "snapshot", sent = "none",
        );
        ReceiverRecord::Snapshot {
            bank: self.bank.clone(),
            senders,
        }
    }
}
