//! The ack-retry **receiver**: applies each message once and acknowledges every
//! delivery, with bounded dedup state — as `impl/src/ack_retry/receiver.rs`.
//!
//! Per sender the receiver keeps a [`Dedup`]: a *high-water mark* `hwm` (every
//! seq `<= hwm` is applied) and the seqs applied out of order above it, all
//! within the *window* `(hwm + 1, hwm + W]`. Applying a message appends its id
//! to the durable ledger (the effect) and updates the dedup record, in ONE save:
//! the transactional approach. The acknowledgement `Ack { hwm, seq }` leaves with
//! that save and tells the sender both the seq and the high-water mark (every
//! seq at or below it is applied).
//!
//! A delivery already applied (`seq <= hwm` or in the window set) is a
//! duplicate: not applied again, but acknowledged again — its sender
//! retransmitted because an earlier acknowledgement was lost, and would retry
//! forever otherwise. A seq beyond `hwm + W` is refused without an answer, as the
//! implementation refuses it with `SeqBeyondWindow`: the sender will retransmit
//! it, and a correct sender (in flight `F <= W`) never sends one. The refusal is
//! recorded in the ghost flag [`ReceiverState::refused`], which only the
//! `within-window` property reads.
//!
//! Several bug variants change exactly one of these decisions; each is described
//! on [`Variant`].

use super::{Msg, MsgId, Node, NodeStorage, Seq, Seqs, Timer, Variant};
use stateright::actor::{model_timeout, Id, Out};
use std::fmt;

/// Which seqs of one sender are applied: every seq `<= hwm`, and those in
/// `above`. `above` never holds `hwm + 1` (it would have been absorbed into the
/// high-water mark) and, in the correct protocol, only seqs in the window.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Dedup {
    pub hwm: Seq,
    pub above: Seqs,
}

impl Dedup {
    pub fn contains(self, seq: Seq) -> bool {
        seq <= self.hwm || self.above.contains(seq)
    }

    /// Whether `seq` lies within the window `hwm + window`.
    pub fn in_window(self, seq: Seq, window: Seq) -> bool {
        u16::from(seq) <= u16::from(self.hwm) + u16::from(window)
    }

    /// Marks `seq` applied and advances the high-water mark over every seq
    /// applied without a gap.
    pub fn insert(&mut self, seq: Seq) {
        self.above.insert(seq);
        while self.above.contains(self.hwm + 1) {
            self.above.remove(self.hwm + 1);
            self.hwm += 1;
        }
    }

    /// The highest seq applied (0: none).
    pub fn highest(self) -> Seq {
        self.above.highest().unwrap_or(0).max(self.hwm)
    }
}

impl fmt::Debug for Dedup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.above.is_empty() {
            write!(f, "≤{}", self.hwm)
        } else {
            write!(f, "≤{}+{:?}", self.hwm, self.above)
        }
    }
}

/// What the receiver keeps across crashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReceiverStorage {
    /// The effects applied, as message ids, sorted; a duplicate id is a double
    /// application.
    pub ledger: Vec<MsgId>,
    /// Per sender, the seqs already applied.
    pub dedup: Vec<Dedup>,
}

/// The receiver's volatile state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReceiverState {
    pub ledger: Vec<MsgId>,
    pub dedup: Vec<Dedup>,
    /// Work between the two steps of a split variant (`non-atomic-apply`,
    /// `ack-before-persist`); always empty in the correct protocol.
    pub pending: Vec<MsgId>,
    /// Ghost, read only by `within-window`: a data message beyond the window was
    /// refused since the receiver last started.
    pub refused: bool,
}

#[derive(Clone, Debug)]
pub struct Receiver {
    pub senders: u8,
    /// `W`: the receiver applies a seq only within `hwm + W`.
    pub window: Seq,
    pub variant: Variant,
}

fn insert_sorted(v: &mut Vec<MsgId>, id: MsgId) {
    let at = v.partition_point(|x| *x <= id);
    v.insert(at, id);
}

impl Receiver {
    fn save(&self, o: &mut Out<Node>, ledger: &[MsgId], dedup: &[Dedup]) {
        let dedup = dedup
            .iter()
            .map(|d| match self.variant {
                // The bug: the dedup record is not saved; only the ledger is.
                Variant::VolatileDedup => Dedup::default(),
                // The bug: only the high-water mark is saved, not the window above it.
                Variant::VolatileWindow => Dedup {
                    hwm: d.hwm,
                    above: Seqs::EMPTY,
                },
                // The bug: one number is saved, the highest seq applied, as if
                // every seq below it were applied.
                Variant::HwmPastGap => Dedup {
                    hwm: d.highest(),
                    above: Seqs::EMPTY,
                },
                _ => *d,
            })
            .collect();
        o.save(NodeStorage::Receiver(ReceiverStorage {
            ledger: ledger.to_vec(),
            dedup,
        }));
    }

    fn is_duplicate(&self, state: &ReceiverState, id: MsgId) -> bool {
        let applied = state.dedup[usize::from(id.sender)];
        match self.variant {
            Variant::NoDedup => false,
            // The bug: anything at or below the highest applied number counts as
            // seen, so a message overtaken by a later one is dropped — and acked.
            Variant::HighWaterMarkDedup => id.seq <= applied.highest(),
            _ => applied.contains(id.seq),
        }
    }

    /// Records `seq` as applied in `dedup`, as this variant does.
    fn record(&self, dedup: &mut Dedup, seq: Seq) {
        if self.variant == Variant::HighWaterMarkDedup {
            *dedup = Dedup {
                hwm: dedup.highest().max(seq),
                above: Seqs::EMPTY,
            };
        } else {
            dedup.insert(seq);
        }
    }

    pub fn on_start(&self, storage: Option<&ReceiverStorage>) -> ReceiverState {
        match storage {
            Some(s) => ReceiverState {
                ledger: s.ledger.clone(),
                dedup: s.dedup.clone(),
                pending: Vec::new(),
                refused: false,
            },
            None => ReceiverState {
                ledger: Vec::new(),
                dedup: vec![Dedup::default(); usize::from(self.senders)],
                pending: Vec::new(),
                refused: false,
            },
        }
    }

    pub fn on_msg(
        &self,
        state: &ReceiverState,
        src: Id,
        msg: Msg,
        o: &mut Out<Node>,
    ) -> Option<ReceiverState> {
        let Msg::Data(seq) = msg else { return None };
        let sender = u8::try_from(usize::from(src))
            .ok()
            .filter(|s| *s < self.senders)?;
        let id = MsgId { sender, seq };
        let dedup = state.dedup[usize::from(sender)];
        if state.pending.contains(&id) {
            // Mid-way through a split apply: `ack-before-persist` has acked it
            // already and acks again; `non-atomic-apply` acks when it finishes.
            if self.variant == Variant::AckBeforePersist {
                o.send(
                    src,
                    Msg::Ack {
                        hwm: dedup.hwm,
                        seq,
                    },
                );
            }
            return None;
        }
        if self.is_duplicate(state, id) {
            // The `no-reack` bug: a duplicate is dropped unacknowledged.
            if self.variant != Variant::NoReack {
                o.send(
                    src,
                    Msg::Ack {
                        hwm: dedup.hwm,
                        seq,
                    },
                );
            }
            return None;
        }
        if !dedup.in_window(seq, self.window) {
            // Refused, unanswered: the sender retransmits it later.
            if state.refused {
                return None;
            }
            let mut next = state.clone();
            next.refused = true;
            return Some(next);
        }
        let mut next = state.clone();
        let index = usize::from(sender);
        match self.variant {
            Variant::NonAtomicApply => {
                // The bug: the effect is saved now, the dedup record in a later step.
                insert_sorted(&mut next.ledger, id);
                self.save(o, &next.ledger, &next.dedup);
                insert_sorted(&mut next.pending, id);
                o.set_timer(Timer::RecordDedup, model_timeout());
            }
            Variant::AckBeforePersist => {
                // The bug: the ack leaves now, the effect is saved in a later step.
                o.send(
                    src,
                    Msg::Ack {
                        hwm: dedup.hwm,
                        seq,
                    },
                );
                insert_sorted(&mut next.pending, id);
                o.set_timer(Timer::Persist, model_timeout());
            }
            _ => {
                insert_sorted(&mut next.ledger, id);
                self.record(&mut next.dedup[index], seq);
                self.save(o, &next.ledger, &next.dedup);
                let hwm = next.dedup[index].hwm;
                o.send(src, Msg::Ack { hwm, seq });
            }
        }
        Some(next)
    }

    pub fn on_timeout(
        &self,
        state: &ReceiverState,
        timer: Timer,
        o: &mut Out<Node>,
    ) -> Option<ReceiverState> {
        if state.pending.is_empty() {
            return None;
        }
        let mut next = state.clone();
        let pending = std::mem::take(&mut next.pending);
        match timer {
            Timer::RecordDedup => {
                for id in &pending {
                    next.dedup[usize::from(id.sender)].insert(id.seq);
                }
                self.save(o, &next.ledger, &next.dedup);
                for id in &pending {
                    let hwm = next.dedup[usize::from(id.sender)].hwm;
                    o.send(
                        Id::from(usize::from(id.sender)),
                        Msg::Ack { hwm, seq: id.seq },
                    );
                }
            }
            Timer::Persist => {
                for id in &pending {
                    insert_sorted(&mut next.ledger, *id);
                    next.dedup[usize::from(id.sender)].insert(id.seq);
                }
                self.save(o, &next.ledger, &next.dedup);
            }
            Timer::Retry | Timer::Submit => return None,
        }
        Some(next)
    }
}
