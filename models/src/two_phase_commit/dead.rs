//! Dead messages of two-phase commit: the rules by which a message in flight
//! can no longer change anything, so [`crate::system::System`] removes it.

use super::participant::{is_prepared, outcome};
use super::properties::coordinator_log;
use super::{
    Decision, Msg, NodeState, NodeStorage, State, TwoPhaseCfg, Tx, TxId, Variant, VoteChoice,
};
use crate::system::{live_state, storage};
use stateright::actor::Id;

/// The messages that can no longer change anything (see [`System::dead`]).
/// Each rule rests on facts that only grow — durable logs and the client's
/// learned outcomes are append-only, a transaction id is voted on in one round
/// only, before its decision is logged, and a coordinator that can no longer
/// recover never waits again for an acknowledgement it has — so a message dead
/// once stays dead.
///
/// - An outcome (`Committed`/`Aborted`) for a transaction the client has
///   learned: the client ignores every outcome but its pending transaction's.
/// - `No(t)` once the coordinator has logged `t`: the coordinator only counts
///   votes for the rounds it is voting on, and it never votes on a logged `t`.
/// - `Prepare(t)` to a participant that committed `t`: ignored. To one that
///   aborted `t`, once the coordinator has logged `t`: answered with `No(t)`,
///   which is dead.
/// - `Begin(x)` once the client has learned `x`: the coordinator answers with
///   the outcome, which is dead, or ignores it while the decision is not yet
///   logged (`decision-not-logged`). Not in `retry-as-new-transaction`, whose
///   coordinator runs such a retry again.
/// - `Ack(t)` from a participant the coordinator no longer waits for on a
///   decided `t`, once the coordinator is up and can never recover again (the
///   crash budget is spent, or it never recovers): only a recovery makes it
///   wait again.
/// - A decision for `t` to a participant that has recorded `t`'s outcome, when
///   its `Ack(t)` would be dead: acknowledged, nothing else. Not in
///   `no-dedup-on-commit`, whose participant applies it again.
/// - `Yes(t)` once the coordinator has logged `t`, when the decision it draws
///   would be dead.
pub(super) fn dead(cfg: &TwoPhaseCfg, s: &State, src: Id, dst: Id, msg: &Msg) -> bool {
    let client_learned = |x: Tx| match storage(s, cfg.client_index()) {
        Some(NodeStorage::Client(c)) => c.outcomes.iter().any(|(t, _)| t.tx == x),
        _ => false,
    };
    let coordinator_logged = |t: TxId| coordinator_log(s).iter().any(|(x, _)| *x == t);
    let participant_outcome = |p: Id, t: TxId| match storage(s, usize::from(p)) {
        Some(NodeStorage::Participant(p)) => outcome(&p.log, t),
        _ => None,
    };
    let ack_dead = |p: Id, t: TxId| {
        let Some(NodeState::Coordinator(c)) = live_state(s, 0) else {
            return false;
        };
        let final_incarnation = cfg.coordinator_never_recovers || s.history.crashes >= cfg.crashes;
        let bit = 1 << (usize::from(p) - 1);
        final_incarnation
            && (c.logged(t).is_some() || c.unlogged.iter().any(|(u, _)| *u == t))
            && !c.unacked.iter().any(|u| u.tx == t && u.waiting & bit != 0)
    };
    let decision_dead = |p: Id, t: TxId| {
        cfg.variant != Variant::NoDedupOnCommit
            && participant_outcome(p, t).is_some()
            && ack_dead(p, t)
    };
    match *msg {
        Msg::Committed(t) | Msg::Aborted(t) => client_learned(t.tx),
        Msg::No(t) => coordinator_logged(t),
        Msg::Prepare(t) => match participant_outcome(dst, t) {
            Some(Decision::Commit) => true,
            Some(Decision::Abort) => coordinator_logged(t),
            None => false,
        },
        Msg::Begin(x) => cfg.variant != Variant::RetryAsNewTransaction && client_learned(x),
        Msg::Ack(t) => ack_dead(src, t),
        // Untagged decisions name no transaction: never provably dead.
        Msg::Commit(t) | Msg::Abort(t) => t != TxId::UNTAGGED && decision_dead(dst, t),
        Msg::Yes(t) => {
            cfg.variant != Variant::UntaggedDecision
                && coordinator_logged(t)
                && decision_dead(src, t)
        }
    }
}

/// The pending vote choices that can no longer change anything (see
/// [`System::dead_choice`](crate::system::System::dead_choice)): a choice for
/// `t` once the participant has voted on `t` — it is prepared for `t` (or holds
/// the unsaved yes vote of `vote-before-persist`) or has recorded `t`'s outcome.
/// Selecting either option then changes nothing (`Participant::on_random`
/// returns no new state). Within an incarnation a participant's log only
/// grows and an unsaved vote becomes a `Prepared` record or an outcome, so a
/// dead choice stays dead; a crash clears every choice anyway. Such a choice is
/// left behind when the vote was forced (no room: a no without a choice) or
/// when the decision came first (the coordinator's vote timer aborted `t`).
pub(super) fn dead_choice(_: &TwoPhaseCfg, s: &State, actor: Id, options: &[VoteChoice]) -> bool {
    let Some(NodeState::Participant(p)) = live_state(s, usize::from(actor)) else {
        return false;
    };
    options.iter().all(|choice| {
        let (VoteChoice::Yes(t) | VoteChoice::No(t)) = *choice;
        outcome(&p.log, t).is_some() || is_prepared(&p.log, t) || p.unpersisted == Some(t)
    })
}
