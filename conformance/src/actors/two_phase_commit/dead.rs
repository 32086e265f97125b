//! Dead messages of the adapted cores: the rules by which a message in flight
//! can no longer change any core, so the [`System`](eo_models::system::System)
//! removes it (the model's own rules, `eo_models::two_phase_commit`'s `dead`,
//! read on the implementation's records and protocol views). Each rule rests on
//! facts that only grow — durable records, and a coordinator that has spent the
//! crash budget keeping what it holds — so a message dead once stays dead.
//!
//! - An `Outcome` for a transaction the client has durably learned: its core
//!   holds it no longer pending and ignores it.
//! - A `Begin` for a transaction the client has durably learned, whose `low`
//!   is at most the coordinator's durable floor for the client (so it raises
//!   nothing): the coordinator holds the transaction decided (its `Decided`
//!   record is durable before any `Outcome` leaves) and answers with an
//!   `Outcome`, which is dead, or it is below the floor and ignored.
//! - A `Vote` once the coordinator has a durable `Decided` record for the
//!   transaction: ignored, whatever the coordinator holds (decided, or
//!   forgotten below its floor).
//! - A `Prepare` to a participant with a durable outcome record for the
//!   transaction, whose `floor` is at most the participant's durable floor:
//!   ignored.
//! - An `Ack` from a participant the coordinator no longer waits for (it holds
//!   the transaction done, or its acknowledgement counted), once the
//!   coordinator is up and the crash budget is spent: only a recovery makes
//!   it wait again.
//! - A `Decision` to a participant with a durable outcome record for the
//!   transaction, when its `Ack` would be dead: acknowledged, nothing else.
//!   Not under the `CommitTwice` fault, whose driver applies it again.
//! - A `Query` once the coordinator has a durable `Decided` record for the
//!   transaction, when the `Decision` it draws would be dead.

use super::{ImplState, ImplTwoPhaseCfg, NodeState, NodeStorage, Wire};
use eo_impl::core::NodeId;
use eo_impl::two_phase_commit::{
    ClientRecord, CoordinatorRecord, Msg, ParticipantRecord, PhaseView, TxnId,
};
use eo_models::system::{live_state, storage};
use stateright::actor::Id;

/// Whether `msg` from `src` to `dst` is dead in `s` (see the module docs).
pub fn dead(cfg: &ImplTwoPhaseCfg, s: &ImplState, src: Id, dst: Id, msg: &Wire) -> bool {
    let src_node = usize::from(src) as NodeId;
    let dst_node = usize::from(dst) as NodeId;
    match &msg.0 {
        Msg::Outcome { txn, .. } => client_learned(cfg, s, *txn),
        Msg::Begin { txn, low } => {
            client_learned(cfg, s, txn.id) && *low <= coordinator_floor(s, txn.id.client)
        }
        Msg::Vote { txn, .. } => coordinator_decided(s, *txn),
        Msg::Prepare { txn, floor, .. } => {
            participant_finished(s, dst, *txn) && *floor <= participant_floor(s, dst, txn.client)
        }
        Msg::Ack { txn, .. } => ack_dead(cfg, s, src_node, *txn),
        Msg::Decision { txn, .. } => decision_dead(cfg, s, dst, dst_node, *txn),
        Msg::Query { txn, .. } => {
            coordinator_decided(s, *txn) && decision_dead(cfg, s, src, src_node, *txn)
        }
        Msg::Busy { .. } => false,
    }
}

fn client_learned(cfg: &ImplTwoPhaseCfg, s: &ImplState, txn: TxnId) -> bool {
    match storage(s, cfg.client_index()) {
        Some(NodeStorage::Client(log)) => log
            .iter()
            .any(|r| matches!(r, ClientRecord::Learned { txn: t, .. } if *t == txn)),
        _ => false,
    }
}

fn coordinator_log(s: &ImplState) -> &[CoordinatorRecord] {
    match storage(s, 0) {
        Some(NodeStorage::Coordinator(log)) => log,
        _ => &[],
    }
}

fn coordinator_decided(s: &ImplState, txn: TxnId) -> bool {
    coordinator_log(s)
        .iter()
        .any(|r| matches!(r, CoordinatorRecord::Decided(d) if d.txn == txn))
}

fn coordinator_floor(s: &ImplState, client: NodeId) -> u64 {
    coordinator_log(s)
        .iter()
        .filter_map(|r| match r {
            CoordinatorRecord::Floor { client: c, floor } if *c == client => Some(*floor),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

fn participant_log(s: &ImplState, p: Id) -> &[ParticipantRecord] {
    match storage(s, usize::from(p)) {
        Some(NodeStorage::Participant(log)) => log,
        _ => &[],
    }
}

fn participant_finished(s: &ImplState, p: Id, txn: TxnId) -> bool {
    participant_log(s, p).iter().any(|r| match r {
        ParticipantRecord::Committed { txn: t, .. } | ParticipantRecord::Aborted { txn: t } => {
            *t == txn
        }
        _ => false,
    })
}

fn participant_floor(s: &ImplState, p: Id, client: NodeId) -> u64 {
    participant_log(s, p)
        .iter()
        .filter_map(|r| match r {
            ParticipantRecord::Floor { client: c, floor } if *c == client => Some(*floor),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

fn ack_dead(cfg: &ImplTwoPhaseCfg, s: &ImplState, from: NodeId, txn: TxnId) -> bool {
    let Some(NodeState::Coordinator { core, .. }) = live_state(s, 0) else {
        return false;
    };
    s.history.crashes >= cfg.crashes
        && core.phases().iter().any(|(t, _, phase)| {
            *t == txn
                && match phase {
                    PhaseView::Done { .. } => true,
                    PhaseView::Deciding { acked, .. } => acked.contains(&from),
                    PhaseView::Preparing { .. } => false,
                }
        })
}

fn decision_dead(cfg: &ImplTwoPhaseCfg, s: &ImplState, p: Id, node: NodeId, txn: TxnId) -> bool {
    #[cfg(test)]
    if cfg.fault == super::Fault::CommitTwice {
        return false;
    }
    participant_finished(s, p, txn) && ack_dead(cfg, s, node, txn)
}
