//! Refinement: two-phase commit as Gray and Lamport's TwoPhase, one TwoPhase
//! instance per transaction. The abstraction maps a state of the actor model
//! and a transaction to a TwoPhase state; the tests check that every reachable
//! step maps, for every transaction at once, to a TwoPhase step or a stutter of
//! that transaction's instance.
//!
//! With transactions in flight at once the instances run interleaved, and they
//! share nothing TwoPhase can see: each step of the actor model writes the
//! durable facts of one transaction at most (a participant's `Prepared`,
//! `Committed` or `Aborted` record, one decision in the coordinator's log) —
//! except a recovered coordinator, which presumes abort for every started
//! transaction in one step, so that step may move several instances by a
//! `TMAbort` each. What couples the transactions — a participant's capacity and
//! its balance bound, which make it vote no — is a reason to take
//! `RMChooseToAbort`, which TwoPhase allows at any time; TwoPhase has no
//! balances, so `balance-bound` is a property of the actor model alone.

use super::participant::{outcome, Record};
use super::properties::{coordinator_log, EMPTY_LOG};
use super::{Decision, NodeStorage, State, TwoPhaseCfg, Tx, TxId};
use crate::system::storage;
use crate::two_phase_spec::{self, RmState, TmState, TwoPhaseState};

/// The abstraction function: the TwoPhase state this state stands for, for
/// client transaction `x` (its round 0, the only round the correct protocol
/// runs). It reads durable facts only:
///
/// - `rmState[r]`: participant r's log — `Committed(t)` → committed,
///   `Aborted(t)` → aborted, `Prepared(t)` → prepared, nothing → working.
/// - `tmState`: the coordinator's log — a logged decision, or init.
/// - `msgs`: `Prepared(r)` iff r's log has `Prepared(t)` (a yes vote is sent
///   only after that record is durable, and the spec's message set only grows,
///   like the log); `Commit`/`Abort` iff the coordinator logged that decision.
/// - `tmPrepared`: the coordinator's vote tally is volatile (a crash forgets it),
///   so it is hidden: it maps to all RMs once the TM committed and to none
///   before. The refinement check lets the TM receive Prepared messages
///   (`TMRcvPrepared`, enabled whenever `Prepared(r)` is in `msgs`) just before a
///   step — standard hiding of an internal variable.
pub fn abstraction(cfg: &TwoPhaseCfg, s: &State, x: Tx) -> TwoPhaseState {
    let t = TxId { tx: x, round: 0 };
    let rms = usize::from(cfg.participants);
    let mut a = TwoPhaseState::init(rms);
    for r in 0..rms {
        let log: &[Record] = match storage(s, r + 1) {
            Some(NodeStorage::Participant(p)) => &p.log,
            _ => EMPTY_LOG,
        };
        let was_prepared = log.contains(&Record::Prepared(t));
        a.msgs.prepared[r] = was_prepared;
        a.rm_state[r] = match outcome(log, t) {
            Some(Decision::Commit) => RmState::Committed,
            Some(Decision::Abort) => RmState::Aborted,
            None if was_prepared => RmState::Prepared,
            None => RmState::Working,
        };
    }
    match coordinator_log(s).iter().find(|(logged, _)| *logged == t) {
        Some((_, Decision::Commit)) => {
            a.tm_state = TmState::Committed;
            a.msgs.commit = true;
            a.tm_prepared = vec![true; rms];
        }
        Some((_, Decision::Abort)) => {
            a.tm_state = TmState::Aborted;
            a.msgs.abort = true;
        }
        None => {}
    }
    a
}

/// Whether `to` is `from` (a stutter) or one TwoPhase step from `from`, after
/// any number of hidden `TMRcvPrepared` steps.
pub fn refines_step(
    spec: &two_phase_spec::TwoPhaseSpec,
    from: &TwoPhaseState,
    to: &TwoPhaseState,
) -> bool {
    if from == to {
        return true;
    }
    // Close `from` under TMRcvPrepared (at most one per RM).
    let mut closure = vec![from.clone()];
    let mut at = 0;
    while at < closure.len() {
        let s = closure[at].clone();
        for (action, next) in spec.successors(&s) {
            if matches!(action, two_phase_spec::Action::TmRcvPrepared(_))
                && !closure.contains(&next)
            {
                closure.push(next);
            }
        }
        at += 1;
    }
    closure.iter().any(|s| {
        // tmPrepared is hidden before a commit: compare the rest.
        let hide = |x: &TwoPhaseState| {
            let mut x = x.clone();
            if x.tm_state != TmState::Committed {
                x.tm_prepared = vec![false; x.tm_prepared.len()];
            }
            x
        };
        spec.successors(s).iter().any(|(_, next)| hide(next) == *to) || hide(s) == *to
    })
}
