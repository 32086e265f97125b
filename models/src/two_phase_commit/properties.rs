//! What must hold of two-phase commit, read from durable facts: the
//! properties the checker evaluates, and the one-line summary of a state that
//! follows a counterexample.

use super::participant::{outcome, Record};
use super::{Decision, NodeState, NodeStorage, State, TwoPhaseCommit, Tx, TxId};
use crate::check::{Explain, ProgressProperty};
use crate::system::{live_state, storage};
use stateright::Expectation;

/// Adds every property of the model to `system` (see the module docs of
/// [`super`]).
pub fn add(system: TwoPhaseCommit) -> TwoPhaseCommit {
    system
        .property(Expectation::Always, "atomicity", |m, s| {
            let logs = participant_logs(m, s);
            !logs.iter().any(|log| {
                log.iter().any(|r| match r {
                    Record::Committed(t) => logs
                        .iter()
                        .any(|other| outcome(other, *t) == Some(Decision::Abort)),
                    _ => false,
                })
            })
        })
        .property(Expectation::Always, "exactly-once", |m, s| {
            participant_ledgers(m, s)
                .iter()
                .all(|ledger| ledger.windows(2).all(|w| w[0] != w[1]))
        })
        .property(Expectation::Always, "balance-bound", |m, s| {
            // Each applied transaction credited one unit: a balance is the
            // length of the ledger.
            m.actors.cfg.balance_max.is_none_or(|max| {
                participant_ledgers(m, s)
                    .iter()
                    .all(|ledger| ledger.len() <= usize::from(max))
            })
        })
        .property(Expectation::Always, "validity", |m, s| {
            let logs = participant_logs(m, s);
            logs.iter().all(|log| {
                log.iter().all(|r| match r {
                    Record::Committed(t) => {
                        (0..m.actors.cfg.participants).all(|p| voted_yes(s, p, *t))
                    }
                    _ => true,
                })
            })
        })
        .property(Expectation::Always, "client-agreement", |m, s| {
            let logs = participant_logs(m, s);
            client_outcomes(m, s).iter().all(|(t, d)| {
                logs.iter()
                    .all(|log| outcome(log, *t).is_none_or(|o| o == *d))
            })
        })
        .property(Expectation::Sometimes, "commit-possible", |m, s| {
            everyone_decided(m, s, 0, Some(Decision::Commit))
        })
        .property(Expectation::Sometimes, "abort-possible", |m, s| {
            everyone_decided(m, s, 0, Some(Decision::Abort))
        })
        .progress("eventually-decided", |m, s| {
            m.is_at_rest(s)
                && (0..m.actors.cfg.transactions).all(|x| everyone_decided(m, s, x, None))
        })
}

pub(super) const EMPTY_LOG: &[Record] = &[];
pub(super) const EMPTY_LEDGER: &[Tx] = &[];

/// Each participant's durable log, in participant order.
pub(super) fn participant_logs<'a>(m: &TwoPhaseCommit, s: &'a State) -> Vec<&'a [Record]> {
    (1..=usize::from(m.actors.cfg.participants))
        .map(|i| match storage(s, i) {
            Some(NodeStorage::Participant(p)) => p.log.as_slice(),
            _ => EMPTY_LOG,
        })
        .collect()
}

fn participant_ledgers<'a>(m: &TwoPhaseCommit, s: &'a State) -> Vec<&'a [Tx]> {
    (1..=usize::from(m.actors.cfg.participants))
        .map(|i| match storage(s, i) {
            Some(NodeStorage::Participant(p)) => p.ledger.as_slice(),
            _ => EMPTY_LEDGER,
        })
        .collect()
}

/// Whether participant `p` (index) voted yes for `t`: a durable `Prepared(t)`,
/// or a yes vote its live state still holds (`vote-before-persist`).
fn voted_yes(s: &State, p: u8, t: TxId) -> bool {
    let i = usize::from(p) + 1;
    let durable = matches!(storage(s, i), Some(NodeStorage::Participant(st)) if st.log.contains(&Record::Prepared(t)));
    let live =
        matches!(live_state(s, i), Some(NodeState::Participant(st)) if st.unpersisted == Some(t));
    durable || live
}

/// The outcomes the client has durably learned.
fn client_outcomes(m: &TwoPhaseCommit, s: &State) -> Vec<(TxId, Decision)> {
    match storage(s, m.actors.cfg.client_index()) {
        Some(NodeStorage::Client(c)) => c.outcomes.clone(),
        _ => Vec::new(),
    }
}

/// Whether every participant and the client hold an outcome (`decision`, if
/// given) for client transaction `x`, in some round. A participant that logged
/// nothing of `x` — it voted no, or never saw its `Prepare` — holds an abort:
/// it never prepared `x`, so it can only abort it (presumed abort; it logs
/// nothing for a transaction it did not prepare).
pub(super) fn everyone_decided(
    m: &TwoPhaseCommit,
    s: &State,
    x: Tx,
    decision: Option<Decision>,
) -> bool {
    let fits = |d: Decision| decision.is_none_or(|want| want == d);
    let client = client_outcomes(m, s)
        .iter()
        .any(|(t, d)| t.tx == x && fits(*d));
    client
        && participant_logs(m, s).iter().all(|log| {
            log.iter().any(|r| match r {
                Record::Committed(t) => t.tx == x && fits(Decision::Commit),
                Record::Aborted(t) => t.tx == x && fits(Decision::Abort),
                Record::Prepared(_) => false,
            }) || (fits(Decision::Abort) && !log.iter().any(|r| r.tx().tx == x))
        })
}

/// The coordinator's durable log.
pub(super) fn coordinator_log(s: &State) -> &[(TxId, Decision)] {
    match storage(s, 0) {
        Some(NodeStorage::Coordinator(c)) => &c.log,
        _ => &[],
    }
}

impl Explain for TwoPhaseCommit {
    fn summarize(&self, s: &State) -> String {
        let mut parts = vec![format!("coordinator log {:?}", coordinator_log(s))];
        for i in 1..=usize::from(self.actors.cfg.participants) {
            let (log, ledger) = match storage(s, i) {
                Some(NodeStorage::Participant(p)) => (p.log.as_slice(), p.ledger.as_slice()),
                _ => (EMPTY_LOG, EMPTY_LEDGER),
            };
            parts.push(format!("participant {i}: log {log:?}, ledger {ledger:?}"));
        }
        parts.push(format!("client learned {:?}", client_outcomes(self, s)));
        parts.push(format!("crashes {}", s.history.crashes));
        parts.join("; ")
    }

    fn progress_properties(&self) -> Vec<ProgressProperty<Self>> {
        self.progress.clone()
    }
}
