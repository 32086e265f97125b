//! The two-phase-commit model's properties, evaluated on the abstraction of
//! the implementation's durable records
//! ([`crate::abstraction::two_phase_commit`]): a participant's log and ledger
//! are those of its `Prepared`/`Committed`/`Aborted` records and the postings
//! its `Committed` records apply, the client's outcomes its `Learned` records.
//! A state the abstraction cannot map (a record it has no model state for)
//! violates every safety property: such a state is not a behaviour of the
//! model.
//!
//! The same names as `eo_models::two_phase_commit::properties`: `atomicity`,
//! `exactly-once`, `validity`, `client-agreement` (always), `commit-possible`,
//! `abort-possible` (sometimes), `eventually-decided` (progress); and one the
//! model needs not: `recovers` (always) — every core's `recover` accepts the
//! log it wrote. `balance-bound` is not checked: the implementation's balance
//! bound is its constant `BALANCE_MAX`, not a configuration of the cores (see
//! [`NOT_CHECKED`]).
//!
//! A participant *holds the outcome* of a transaction for
//! `eventually-decided` when its durable log records the outcome, or when it
//! holds no durable `Prepared` record for it: the implementation keeps a no
//! vote, and an abort of a transaction it never prepared, in memory only
//! (presumed abort: it cannot commit what it never prepared, as `validity`
//! checks), so a crash forgets them and nothing brings them back.

use super::{ImplState, ImplTwoPhase, ImplTwoPhaseCfg, Node, NodeState, NodeStorage};
use crate::abstraction::two_phase_commit::{client_storage, participant_storage, Layout};
use crate::abstraction::AbstractionError;
use crate::actors::checked::Checked;
use eo_models::check::{Explain, ProgressProperty};
use eo_models::system::{storage, System};
use eo_models::two_phase_commit::participant::{outcome, Record};
use eo_models::two_phase_commit::{Decision, Tx, TxId};
use stateright::Expectation;

/// The model's properties this adapter does not check, with why.
pub const NOT_CHECKED: &[(&str, &str, &str)] = &[(
    "balance-bound",
    "always",
    "the implementation's balance bound is its constant BALANCE_MAX, not a configuration of the cores",
)];

/// Adds the properties and the ledger boundary.
pub fn add(mut system: System<Node, ImplTwoPhaseCfg>) -> ImplTwoPhase {
    // As in the model: a first double application already violates
    // exactly-once; a longer ledger adds nothing.
    system.within = |cfg, s| match facts(cfg, s) {
        Ok(f) => f
            .ledgers
            .iter()
            .all(|l| l.len() <= usize::from(cfg.transactions) + 1),
        Err(_) => true,
    };
    Checked::new(system)
        .property(Expectation::Always, "atomicity", |m, s| {
            facts(m.cfg(), s).is_ok_and(|f| {
                !f.logs.iter().any(|log| {
                    log.iter().any(|r| match r {
                        Record::Committed(t) => f
                            .logs
                            .iter()
                            .any(|other| outcome(other, *t) == Some(Decision::Abort)),
                        _ => false,
                    })
                })
            })
        })
        .property(Expectation::Always, "exactly-once", |m, s| {
            facts(m.cfg(), s).is_ok_and(|f| {
                f.ledgers
                    .iter()
                    .all(|ledger| ledger.windows(2).all(|w| w[0] != w[1]))
            })
        })
        .property(Expectation::Always, "validity", |m, s| {
            facts(m.cfg(), s).is_ok_and(|f| {
                f.logs.iter().all(|log| {
                    log.iter().all(|r| match r {
                        Record::Committed(t) => f
                            .logs
                            .iter()
                            .all(|other| other.contains(&Record::Prepared(*t))),
                        _ => true,
                    })
                })
            })
        })
        .property(Expectation::Always, "client-agreement", |m, s| {
            facts(m.cfg(), s).is_ok_and(|f| {
                f.client.iter().all(|(t, d)| {
                    f.logs
                        .iter()
                        .all(|log| outcome(log, *t).is_none_or(|o| o == *d))
                })
            })
        })
        .property(Expectation::Always, "recovers", |_, s| {
            s.actor_states
                .iter()
                .all(|a| !matches!(**a, NodeState::Failed { .. }))
        })
        .property(Expectation::Sometimes, "commit-possible", |m, s| {
            facts(m.cfg(), s).is_ok_and(|f| f.recorded(0, Decision::Commit))
        })
        .property(Expectation::Sometimes, "abort-possible", |m, s| {
            facts(m.cfg(), s).is_ok_and(|f| f.recorded(0, Decision::Abort))
        })
        .progress("eventually-decided", |m, s| {
            m.system.is_at_rest(s)
                && facts(m.cfg(), s).is_ok_and(|f| (0..m.cfg().transactions).all(|x| f.decided(x)))
        })
}

/// What the durable records say, in the model's terms.
pub struct Facts {
    /// Each participant's log, in participant order.
    pub logs: Vec<Vec<Record>>,
    /// Each participant's ledger: the transactions it applied, sorted.
    pub ledgers: Vec<Vec<Tx>>,
    /// The outcomes the client has durably learned.
    pub client: Vec<(TxId, Decision)>,
}

impl Facts {
    /// The client learned `decision` for `x`, and every participant's durable
    /// log records it.
    fn recorded(&self, x: Tx, decision: Decision) -> bool {
        let is = |t: &TxId| t.tx == x;
        self.client.iter().any(|(t, d)| is(t) && *d == decision)
            && self.logs.iter().all(|log| {
                log.iter().any(|r| match r {
                    Record::Committed(t) => is(t) && decision == Decision::Commit,
                    Record::Aborted(t) => is(t) && decision == Decision::Abort,
                    Record::Prepared(_) => false,
                })
            })
    }

    /// The client learned an outcome for `x`, and every participant holds one
    /// (see the module docs).
    fn decided(&self, x: Tx) -> bool {
        let t = TxId { tx: x, round: 0 };
        self.client.iter().any(|(u, _)| u.tx == x)
            && self
                .logs
                .iter()
                .all(|log| outcome(log, t).is_some() || !log.contains(&Record::Prepared(t)))
    }
}

/// The abstraction of every durable log in `s`.
pub fn facts(cfg: &ImplTwoPhaseCfg, s: &ImplState) -> Result<Facts, AbstractionError> {
    let layout = Layout::new(cfg.participants)?;
    let mut f = Facts {
        logs: Vec::new(),
        ledgers: Vec::new(),
        client: Vec::new(),
    };
    for index in 0..cfg.participants {
        let stored = match storage(s, usize::from(index) + 1) {
            Some(NodeStorage::Participant(log)) => participant_storage(layout, index, log)?,
            _ => None,
        };
        let (log, ledger) = stored.map(|p| (p.log, p.ledger)).unwrap_or_default();
        f.logs.push(log);
        f.ledgers.push(ledger);
    }
    if let Some(NodeStorage::Client(log)) = storage(s, cfg.client_index()) {
        if let Some(c) = client_storage(layout, log)? {
            f.client = c.outcomes;
        }
    }
    Ok(f)
}

impl Explain for ImplTwoPhase {
    fn summarize(&self, s: &ImplState) -> String {
        let mut parts = Vec::new();
        match facts(self.cfg(), s) {
            Ok(f) => {
                for (i, (log, ledger)) in f.logs.iter().zip(&f.ledgers).enumerate() {
                    parts.push(format!(
                        "participant {}: log {log:?}, ledger {ledger:?}",
                        i + 1
                    ));
                }
                parts.push(format!("client learned {:?}", f.client));
            }
            Err(e) => parts.push(format!("no model state: {e}")),
        }
        parts.push(format!("crashes {}", s.history.crashes));
        parts.join("; ")
    }

    fn progress_properties(&self) -> Vec<ProgressProperty<Self>> {
        Checked::progress_properties(self)
    }
}
