//! The ack-retry **receiver**: applies each message once and acknowledges every
//! delivery.
//!
//! Applying a message appends its id to the durable ledger (the effect) and
//! records the id in the durable dedup record, in ONE save: the transactional
//! approach. A delivery whose id is already recorded is a duplicate; it is not
//! applied again but is acknowledged again — its sender retransmitted because an
//! earlier acknowledgement was lost, and would retry forever otherwise.
//!
//! Several bug variants change exactly one of these decisions; each is described
//! on [`Variant`].

use super::Msg;
use super::{MsgId, Node, NodeStorage, Seqs, Timer, Variant};
use stateright::actor::{model_timeout, Id, Out};

/// What the receiver keeps across crashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReceiverStorage {
    /// The effects applied, as message ids, sorted; a duplicate id is a double
    /// application.
    pub ledger: Vec<MsgId>,
    /// Per sender, the sequence numbers already applied.
    pub dedup: Vec<Seqs>,
}

/// The receiver's volatile state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReceiverState {
    pub ledger: Vec<MsgId>,
    pub dedup: Vec<Seqs>,
    /// Work between the two steps of a split variant (`non-atomic-apply`,
    /// `ack-before-persist`); always empty in the correct protocol.
    pub pending: Vec<MsgId>,
}

#[derive(Clone, Debug)]
pub struct Receiver {
    pub senders: u8,
    pub variant: Variant,
}

fn insert_sorted(v: &mut Vec<MsgId>, id: MsgId) {
    let at = v.partition_point(|x| *x <= id);
    v.insert(at, id);
}

impl Receiver {
    fn save(&self, o: &mut Out<Node>, ledger: &[MsgId], dedup: &[Seqs]) {
        let dedup = if self.variant == Variant::VolatileDedup {
            // The bug: the dedup record is not saved; only the ledger is.
            vec![Seqs::EMPTY; dedup.len()]
        } else {
            dedup.to_vec()
        };
        o.save(NodeStorage::Receiver(ReceiverStorage {
            ledger: ledger.to_vec(),
            dedup,
        }));
    }

    fn is_duplicate(&self, state: &ReceiverState, id: MsgId) -> bool {
        let applied = &state.dedup[usize::from(id.sender)];
        match self.variant {
            Variant::NoDedup => false,
            // The bug: anything at or below the highest applied number counts as
            // seen, so a message overtaken by a later one is dropped — and acked.
            Variant::HighWaterMarkDedup => applied.highest().is_some_and(|max| id.seq <= max),
            _ => applied.contains(id.seq),
        }
    }

    pub fn on_start(&self, storage: Option<&ReceiverStorage>) -> ReceiverState {
        match storage {
            Some(s) => ReceiverState {
                ledger: s.ledger.clone(),
                dedup: s.dedup.clone(),
                pending: Vec::new(),
            },
            None => ReceiverState {
                ledger: Vec::new(),
                dedup: vec![Seqs::EMPTY; usize::from(self.senders)],
                pending: Vec::new(),
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
        if state.pending.contains(&id) {
            // Mid-way through a split apply: `ack-before-persist` has acked it
            // already and acks again; `non-atomic-apply` acks when it finishes.
            if self.variant == Variant::AckBeforePersist {
                o.send(src, Msg::Ack(seq));
            }
            return None;
        }
        if self.is_duplicate(state, id) {
            // The `no-reack` bug: a duplicate is dropped unacknowledged.
            if self.variant != Variant::NoReack {
                o.send(src, Msg::Ack(seq));
            }
            return None;
        }
        let mut next = state.clone();
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
                o.send(src, Msg::Ack(seq));
                insert_sorted(&mut next.pending, id);
                o.set_timer(Timer::Persist, model_timeout());
            }
            Variant::HighWaterMarkDedup => {
                insert_sorted(&mut next.ledger, id);
                let high = next.dedup[usize::from(sender)]
                    .highest()
                    .map_or(seq, |m| m.max(seq));
                next.dedup[usize::from(sender)] = Seqs::single(high);
                self.save(o, &next.ledger, &next.dedup);
                o.send(src, Msg::Ack(seq));
            }
            _ => {
                insert_sorted(&mut next.ledger, id);
                next.dedup[usize::from(sender)].insert(seq);
                self.save(o, &next.ledger, &next.dedup);
                o.send(src, Msg::Ack(seq));
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
                    o.send(Id::from(usize::from(id.sender)), Msg::Ack(id.seq));
                }
            }
            Timer::Persist => {
                for id in &pending {
                    insert_sorted(&mut next.ledger, *id);
                    next.dedup[usize::from(id.sender)].insert(id.seq);
                }
                self.save(o, &next.ledger, &next.dedup);
            }
            Timer::Retry => return None,
        }
        Some(next)
    }
}
