//! # Two-phase commit with crash recovery, presumed abort and client retries
//!
//! One [`coordinator`], P [`participant`]s (default 3) and one [`client`] that
//! runs one transaction, or two one after another (`--transactions 2`, so that
//! late messages of the first can meet the second). The network loses and
//! reorders messages; retransmission duplicates them; any actor may crash —
//! losing its volatile state, keeping its storage — and recover
//! (`--crashes`, default 1, in total per behaviour).
//!
//! The protocol, each rule persisting before it sends:
//! 1. The client durably records its pending transaction, sends `Begin(x)` and
//!    retries with the same id until it learns the outcome.
//! 2. The coordinator starts a round — one at a time, once every participant has
//!    acknowledged the previous decision: it durably records the round as
//!    started, then sends `Prepare(t)` to every participant.
//! 3. A participant votes yes — durably recording `Prepared(t)` with the staged
//!    effect first — or no (recording `Aborted(t)`).
//! 4. All yes → commit; a no or the vote timer → abort. The coordinator appends
//!    the decision to its durable log, then sends it to every participant and the
//!    outcome to the client, re-sending until every participant acknowledges.
//! 5. A participant applies a `Commit` to its durable ledger exactly once (dedup
//!    by transaction id), discards on `Abort`, acknowledges every decision, and
//!    while prepared asks the coordinator (`Query`) rather than deciding alone.
//! 6. Recovery: the coordinator re-sends every logged decision; a started
//!    transaction with no logged decision is presumed aborted — logged and sent
//!    at once — so a client retry is answered, never run a second time.
//!
//! Properties (see [`TwoPhaseCfg::into_model`]):
//! - `atomicity` (always): no transaction committed at one participant and
//!   aborted at another.
//! - `exactly-once` (always): no participant's durable ledger holds a client
//!   transaction's effect twice.
//! - `validity` (always): a transaction is committed anywhere only if every
//!   participant voted yes for it — its durable log has `Prepared(t)`, or its
//!   live state holds the (not yet durable) yes vote.
//! - `client-agreement` (always): if the client learned committed (aborted), no
//!   participant aborted (committed) that transaction.
//! - `commit-possible`, `abort-possible` (sometimes): every participant and the
//!   client reach commit (abort) of the first transaction.
//! - `eventually-decided` (progress): from every reachable state, a settled
//!   state (no timer armed, nothing but dead messages in flight) in which every
//!   participant and the client hold the outcome of every transaction can be
//!   reached — "eventually decided" under strong fairness of every transition,
//!   checked on the explicit state graph ([`crate::graph`]).
//!
//! **Bounds**, each documented where it is applied: a copy of an envelope
//! already in flight is absorbed, and a message that can no longer change
//! anything is removed ([`System`]; the rules are in `dead`); `retry-as-new-transaction` runs
//! at most [`ROUNDS_MAX`] rounds per client transaction; a ledger longer than
//! the transactions plus one is outside the boundary (a first double
//! application already violates `exactly-once`); and with
//! `--coordinator-never-recovers` the client retries and each participant
//! queries at most [`RETRIES_BLOCKED`] times per incarnation — otherwise they
//! would retry forever against a dead coordinator, no behaviour would end, and
//! `eventually-decided` could never be evaluated. In every other configuration
//! retries are unbounded (the fairness assumption: a message sent forever is
//! eventually delivered).
//!
//! **Blocking.** 2PC blocks by design: a participant that voted yes can neither
//! commit nor abort until it hears the decision. With a coordinator that crashes
//! and never recovers, `eventually-decided` fails; `eo check` shows it as the
//! documented limitation row `coordinator-never-recovers`.
//!
//! **Refinement.** [`abstraction`] maps a state (for the first transaction) to a
//! state of Gray and Lamport's TwoPhase ([`crate::two_phase_spec`]); the tests
//! check that every reachable step maps to a spec step or a stutter.
//!
//! **Symmetry.** Participants are interchangeable; [`representative`] sorts them
//! by their whole projected state and rewrites ids consistently.

pub mod client;
pub mod coordinator;
pub mod participant;

use crate::catalog::{
    bounded, ConfigError, FlagInfo, ModelEntry, ModelInfo, PropertyInfo, Settings, VariantInfo,
    VariantKind,
};
use crate::check::{run, Explain, ProgressProperty, Report, RunLabel, RunOptions};
use crate::system::{live_state, reshape, storage, History, System, SystemState};
use crate::two_phase_spec::{self, RmState, TmState, TwoPhaseState};
use client::{Client, ClientState, ClientStorage};
use coordinator::{Coordinator, CoordinatorState, CoordinatorStorage};
use participant::{outcome, Participant, ParticipantState, ParticipantStorage, Record};
use stateright::actor::{Actor, ActorModel, Envelope, Id, LossyNetwork, Network, Out};
use stateright::Expectation;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// The client's transaction number: `0..transactions`.
pub type Tx = u8;

/// A set of participants by index, bit `i` for participant `i + 1`.
pub type Mask = u8;

pub const PARTICIPANTS_MAX: u32 = 5;
/// Participants in a bug variant's default configuration (see
/// [`Variant::defaults`]).
pub const BUG_PARTICIPANTS: u8 = 2;
pub const TRANSACTIONS_MAX: u32 = 2;
pub const CRASHES_MAX: u32 = 2;
/// `retry-as-new-transaction`: rounds per client transaction (the bound that
/// keeps the buggy coordinator's re-runs finite).
pub const ROUNDS_MAX: u8 = 2;
/// With `--coordinator-never-recovers`: client retries and participant queries
/// per incarnation.
pub const RETRIES_BLOCKED: u8 = 1;

/// A transaction id on the wire: the client's transaction and the coordinator's
/// round for it. The round is always 0 except in `retry-as-new-transaction`.
/// Printed `t0`, or `t0.1` for round 1; `t?` is the missing tag of
/// `untagged-decision`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId {
    pub tx: Tx,
    pub round: u8,
}

impl TxId {
    pub const UNTAGGED: TxId = TxId {
        tx: u8::MAX,
        round: 0,
    };
}

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (*self == TxId::UNTAGGED, self.round) {
            (true, _) => write!(f, "t?"),
            (false, 0) => write!(f, "t{}", self.tx),
            (false, r) => write!(f, "t{}.{r}", self.tx),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Decision {
    Commit,
    Abort,
}

/// Wire messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg {
    /// Client → coordinator: run (or tell me the outcome of) this transaction.
    Begin(Tx),
    Prepare(TxId),
    Yes(TxId),
    No(TxId),
    Commit(TxId),
    Abort(TxId),
    Ack(TxId),
    /// Coordinator → client: the outcome.
    Committed(TxId),
    Aborted(TxId),
}

/// Timers. `Log` and `Persist` are the second step of a split bug variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Client: re-send `Begin`.
    Retry,
    /// Coordinator: stop waiting for votes and abort.
    Votes,
    /// Coordinator: re-send decisions not yet acknowledged.
    Resend,
    /// Participant: ask the coordinator for the outcome.
    Query,
    /// `decision-not-logged`: the coordinator's log write, after the send.
    Log,
    /// `vote-before-persist`: the participant's `Prepared` save, after the vote.
    Persist,
}

/// A participant's vote, chosen by the checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VoteChoice {
    Yes(TxId),
    No(TxId),
}

/// The correct protocol and its bug variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Correct,
    /// The coordinator sends its decision (to the participants and the client)
    /// before logging it; the log write is a later step (a `Log` timer). A crash
    /// between the two loses the decision: the recovered coordinator presumes
    /// abort for a transaction some participants already committed.
    DecisionNotLogged,
    /// A participant sends `Yes` before durably recording `Prepared`; the save is
    /// a later step (a `Persist` timer). A crash between them forgets the vote
    /// and the staged effect: the coordinator commits, the participant cannot.
    VoteBeforePersist,
    /// A prepared participant whose `Query` timer fires aborts on its own — the
    /// hazard of transaction timeouts in Flink's two-phase-commit sink over
    /// Kafka — while the coordinator commits.
    ParticipantTimeoutAbort,
    /// The coordinator commits on the first `Yes`, without every vote.
    CommitOnFirstYes,
    /// The coordinator treats a client retry of a decided transaction as a new
    /// transaction (a new round, a new id): participants apply the effect again.
    RetryAsNewTransaction,
    /// A participant applies `Commit` every time it arrives; a re-sent decision
    /// applies the effect twice.
    NoDedupOnCommit,
    /// A recovered coordinator decides commit, instead of abort, for the
    /// started transaction it has no logged decision for: the votes it had
    /// counted died with the crash.
    PresumeCommit,
    /// Decisions carry no transaction id; a participant applies one to whatever
    /// it is working on. A late `Commit` or `Abort` of the first transaction
    /// (a re-sent copy still in flight after the acknowledgement) decides the
    /// second — the delayed
    /// end-transaction class of bug found in Kafka's transaction protocol. Runs
    /// two transactions.
    UntaggedDecision,
    /// A recovered coordinator rebuilds only what the client needs from its
    /// log: it answers a client's retry with the logged outcome, but neither
    /// re-sends logged decisions to the participants nor answers a prepared
    /// participant's query. Nothing unsafe happens — a participant left
    /// prepared stays prepared — but it queries forever and the system never
    /// settles; the client's retries do not help. Only `progress` sees it.
    RecoveredIgnoresQueries,
}

impl Variant {
    pub const ALL: [Variant; 10] = [
        Variant::Correct,
        Variant::DecisionNotLogged,
        Variant::VoteBeforePersist,
        Variant::ParticipantTimeoutAbort,
        Variant::CommitOnFirstYes,
        Variant::RetryAsNewTransaction,
        Variant::NoDedupOnCommit,
        Variant::PresumeCommit,
        Variant::UntaggedDecision,
        Variant::RecoveredIgnoresQueries,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Correct => "correct",
            Variant::DecisionNotLogged => "decision-not-logged",
            Variant::VoteBeforePersist => "vote-before-persist",
            Variant::ParticipantTimeoutAbort => "participant-timeout-abort",
            Variant::CommitOnFirstYes => "commit-on-first-yes",
            Variant::RetryAsNewTransaction => "retry-as-new-transaction",
            Variant::NoDedupOnCommit => "no-dedup-on-commit",
            Variant::PresumeCommit => "presume-commit",
            Variant::UntaggedDecision => "untagged-decision",
            Variant::RecoveredIgnoresQueries => "recovered-ignores-queries",
        }
    }

    /// The property the checker must find violated.
    pub fn expected_violation(self) -> Option<&'static str> {
        match self {
            Variant::Correct => None,
            Variant::DecisionNotLogged
            | Variant::VoteBeforePersist
            | Variant::ParticipantTimeoutAbort
            | Variant::PresumeCommit => Some("atomicity"),
            // With two participants a late untagged Commit of the first
            // transaction commits the second at one participant while the other
            // voted no and aborted it.
            Variant::UntaggedDecision => Some("atomicity"),
            Variant::CommitOnFirstYes => Some("validity"),
            Variant::RetryAsNewTransaction | Variant::NoDedupOnCommit => Some("exactly-once"),
            Variant::RecoveredIgnoresQueries => Some("eventually-decided"),
        }
    }

    /// The configuration this variant is checked in unless a flag says
    /// otherwise — its row of the `eo check` table. The correct protocol runs
    /// the full default (three participants); a bug needs less to show, and two
    /// participants keep each row to seconds. The variants that run a second
    /// round or transaction multiply the state space, so they trim what their
    /// bug does not need: `retry-as-new-transaction` runs one participant (the
    /// second application needs no other), `untagged-decision` runs no crash
    /// (a late decision needs only loss, retransmission and reordering).
    pub fn defaults(self) -> VariantDefaults {
        let base = VariantDefaults {
            participants: BUG_PARTICIPANTS,
            transactions: 1,
            crashes: 1,
        };
        match self {
            Variant::Correct => VariantDefaults {
                participants: 3,
                ..base
            },
            Variant::RetryAsNewTransaction => VariantDefaults {
                participants: 1,
                ..base
            },
            Variant::UntaggedDecision => VariantDefaults {
                transactions: 2,
                crashes: 0,
                ..base
            },
            _ => base,
        }
    }

    pub fn about(self) -> &'static str {
        match self {
            Variant::Correct => {
                "log before send, presumed abort, dedup by transaction id, query while prepared"
            }
            Variant::DecisionNotLogged => "the coordinator sends its decision before logging it",
            Variant::VoteBeforePersist => {
                "a participant votes yes before durably recording prepared"
            }
            Variant::ParticipantTimeoutAbort => {
                "a prepared participant aborts on its own after a timeout"
            }
            Variant::CommitOnFirstYes => "the coordinator commits without every vote",
            Variant::RetryAsNewTransaction => {
                "the coordinator runs a client retry as a new transaction"
            }
            Variant::NoDedupOnCommit => "a participant applies Commit every time it arrives",
            Variant::PresumeCommit => {
                "a recovered coordinator commits a started transaction it has no decision for"
            }
            Variant::UntaggedDecision => {
                "decisions carry no transaction id; a late one decides the next transaction"
            }
            Variant::RecoveredIgnoresQueries => {
                "a recovered coordinator answers the client but never a prepared participant"
            }
        }
    }

    pub fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// A variant's default `--participants`, `--transactions` and `--crashes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VariantDefaults {
    pub participants: u8,
    pub transactions: Tx,
    pub crashes: u8,
}

/// A configuration of the two-phase-commit model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TwoPhaseCfg {
    pub participants: u8,
    pub transactions: Tx,
    pub crashes: u8,
    /// The coordinator may crash and never recovers; nobody else crashes.
    pub coordinator_never_recovers: bool,
    pub variant: Variant,
}

impl Default for TwoPhaseCfg {
    fn default() -> Self {
        TwoPhaseCfg {
            participants: 3,
            transactions: 1,
            crashes: 1,
            coordinator_never_recovers: false,
            variant: Variant::Correct,
        }
    }
}

impl TwoPhaseCfg {
    /// Client retries and participant queries per incarnation: unbounded, except
    /// against a coordinator that never recovers.
    pub fn retries_max(&self) -> Option<u8> {
        self.coordinator_never_recovers.then_some(RETRIES_BLOCKED)
    }

    pub fn client_index(&self) -> usize {
        usize::from(self.participants) + 1
    }
}

/// Every actor: the coordinator (id 0), a participant (ids `1..=P`), the client
/// (id `P + 1`).
#[derive(Clone, Debug)]
pub enum Node {
    Coordinator(Coordinator),
    Participant(Participant),
    Client(Client),
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeState {
    Coordinator(CoordinatorState),
    Participant(ParticipantState),
    Client(ClientState),
}

impl fmt::Debug for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeState::Coordinator(s) => s.fmt(f),
            NodeState::Participant(s) => s.fmt(f),
            NodeState::Client(s) => s.fmt(f),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeStorage {
    Coordinator(CoordinatorStorage),
    Participant(ParticipantStorage),
    Client(ClientStorage),
}

impl fmt::Debug for NodeStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeStorage::Coordinator(s) => s.fmt(f),
            NodeStorage::Participant(s) => s.fmt(f),
            NodeStorage::Client(s) => s.fmt(f),
        }
    }
}

impl Actor for Node {
    type Msg = Msg;
    type Timer = Timer;
    type State = NodeState;
    type Storage = NodeStorage;
    type Random = VoteChoice;

    fn name(&self) -> String {
        match self {
            Node::Coordinator(_) => "coordinator".into(),
            Node::Participant(_) => "participant".into(),
            Node::Client(_) => "client".into(),
        }
    }

    fn on_start(&self, _id: Id, storage: &Option<NodeStorage>, o: &mut Out<Self>) -> NodeState {
        match self {
            Node::Coordinator(c) => NodeState::Coordinator(c.on_start(
                match storage {
                    Some(NodeStorage::Coordinator(s)) => Some(s),
                    _ => None,
                },
                o,
            )),
            Node::Participant(p) => NodeState::Participant(p.on_start(
                match storage {
                    Some(NodeStorage::Participant(s)) => Some(s),
                    _ => None,
                },
                o,
            )),
            Node::Client(c) => NodeState::Client(c.on_start(
                match storage {
                    Some(NodeStorage::Client(s)) => Some(s),
                    _ => None,
                },
                o,
            )),
        }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<NodeState>, src: Id, msg: Msg, o: &mut Out<Self>) {
        let next = match (self, &**state) {
            (Node::Coordinator(c), NodeState::Coordinator(s)) => {
                c.on_msg(s, src, msg, o).map(NodeState::Coordinator)
            }
            (Node::Participant(p), NodeState::Participant(s)) => {
                p.on_msg(s, msg, o).map(NodeState::Participant)
            }
            (Node::Client(c), NodeState::Client(s)) => c.on_msg(s, msg, o).map(NodeState::Client),
            _ => None,
        };
        if let Some(next) = next.filter(|n| n != &**state) {
            *state = Cow::Owned(next);
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<NodeState>, timer: &Timer, o: &mut Out<Self>) {
        let next = match (self, &**state) {
            (Node::Coordinator(c), NodeState::Coordinator(s)) => {
                c.on_timeout(s, *timer, o).map(NodeState::Coordinator)
            }
            (Node::Participant(p), NodeState::Participant(s)) => {
                p.on_timeout(s, *timer, o).map(NodeState::Participant)
            }
            (Node::Client(c), NodeState::Client(s)) if *timer == Timer::Retry => {
                c.on_timeout(s, o).map(NodeState::Client)
            }
            _ => None,
        };
        if let Some(next) = next.filter(|n| n != &**state) {
            *state = Cow::Owned(next);
        }
    }

    fn on_random(
        &self,
        _id: Id,
        state: &mut Cow<NodeState>,
        random: &VoteChoice,
        o: &mut Out<Self>,
    ) {
        if let (Node::Participant(p), NodeState::Participant(s)) = (self, &**state) {
            if let Some(next) = p.on_random(s, *random, o) {
                *state = Cow::Owned(NodeState::Participant(next));
            }
        }
    }
}

/// The checked system.
pub type TwoPhaseCommit = System<Node, TwoPhaseCfg>;
pub type State = SystemState<Node>;

impl TwoPhaseCfg {
    /// Builds the system: the coordinator (id 0), participants (ids `1..=P`), the
    /// client (id `P + 1`), a lossy unordered network, the crash budget and the
    /// properties.
    pub fn into_model(self) -> TwoPhaseCommit {
        let coordinator = Id::from(0);
        let client = Id::from(self.client_index());
        let mut names = vec!["coordinator".to_string()];
        names.extend((1..=self.participants).map(|i| format!("participant {i}")));
        names.push("client".into());
        let retries_max = self.retries_max();
        let actors = ActorModel::new(self.clone(), History::default())
            .actor(Node::Coordinator(Coordinator {
                participants: self.participants,
                client,
                variant: self.variant,
            }))
            .actors((0..self.participants).map(|_| {
                Node::Participant(Participant {
                    coordinator,
                    variant: self.variant,
                    queries_max: retries_max,
                })
            }))
            .actor(Node::Client(Client {
                coordinator,
                transactions: self.transactions,
                retries_max,
            }))
            .init_network(Network::new_unordered_nonduplicating([]))
            .lossy_network(LossyNetwork::Yes);
        let mut system = System::new(actors, names, self.crashes);
        system.skip_undone_crashes = true;
        if self.coordinator_never_recovers {
            let n = system.may_crash.len();
            system.may_crash = (0..n).map(|i| i == 0).collect();
            system.recovers[0] = false;
        }
        let mut system = system
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
                m.is_settled(s)
                    && (0..m.actors.cfg.transactions).all(|x| everyone_decided(m, s, x, None))
            });
        system.dead = dead;
        // A first double application already violates exactly-once; a longer
        // ledger adds nothing and would let the buggy variants grow it forever.
        system.within = |cfg, s| {
            (1..=usize::from(cfg.participants)).all(|i| match storage(s, i) {
                Some(NodeStorage::Participant(p)) => {
                    p.ledger.len() <= usize::from(cfg.transactions) + 1
                }
                _ => true,
            })
        };
        system
    }
}

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
///   votes for the round it is voting on, and it never votes on a logged `t`.
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
fn dead(cfg: &TwoPhaseCfg, s: &State, src: Id, dst: Id, msg: &Msg) -> bool {
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
            && (c.logged(t).is_some() || c.unlogged.is_some_and(|(u, _)| u == t))
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

const EMPTY_LOG: &[Record] = &[];
const EMPTY_LEDGER: &[Tx] = &[];

/// Each participant's durable log, in participant order.
fn participant_logs<'a>(m: &TwoPhaseCommit, s: &'a State) -> Vec<&'a [Record]> {
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
/// given) for client transaction `x`, in some round.
fn everyone_decided(m: &TwoPhaseCommit, s: &State, x: Tx, decision: Option<Decision>) -> bool {
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
            })
        })
}

/// The coordinator's durable log.
fn coordinator_log(s: &State) -> &[(TxId, Decision)] {
    match storage(s, 0) {
        Some(NodeStorage::Coordinator(c)) => &c.log,
        _ => &[],
    }
}

/// The abstraction function: the TwoPhase state this state stands for, for the
/// first transaction (`t0`). It reads durable facts only:
///
/// - `rmState[r]`: participant r's log — `Committed(t0)` → committed,
///   `Aborted(t0)` → aborted, `Prepared(t0)` → prepared, nothing → working.
/// - `tmState`: the coordinator's log — a logged decision, or init.
/// - `msgs`: `Prepared(r)` iff r's log has `Prepared(t0)` (a yes vote is sent
///   only after that record is durable, and the spec's message set only grows,
///   like the log); `Commit`/`Abort` iff the coordinator logged that decision.
/// - `tmPrepared`: the coordinator's vote tally is volatile (a crash forgets it),
///   so it is hidden: it maps to all RMs once the TM committed and to none
///   before. The refinement check lets the TM receive Prepared messages
///   (`TMRcvPrepared`, enabled whenever `Prepared(r)` is in `msgs`) just before a
///   step — standard hiding of an internal variable.
pub fn abstraction(cfg: &TwoPhaseCfg, s: &State) -> TwoPhaseState {
    let t0 = TxId { tx: 0, round: 0 };
    let rms = usize::from(cfg.participants);
    let mut a = TwoPhaseState::init(rms);
    for r in 0..rms {
        let log: &[Record] = match storage(s, r + 1) {
            Some(NodeStorage::Participant(p)) => &p.log,
            _ => EMPTY_LOG,
        };
        let was_prepared = log.contains(&Record::Prepared(t0));
        a.msgs.prepared[r] = was_prepared;
        a.rm_state[r] = match outcome(log, t0) {
            Some(Decision::Commit) => RmState::Committed,
            Some(Decision::Abort) => RmState::Aborted,
            None if was_prepared => RmState::Prepared,
            None => RmState::Working,
        };
    }
    match coordinator_log(s).iter().find(|(t, _)| *t == t0) {
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

/// The canonical member of a state's orbit under permutations of the
/// participants: participants sorted by their whole projected state — volatile
/// state, storage, crashed flag, timers, pending vote choice, the messages to
/// and from them, and the coordinator's per-participant bits (yes vote received,
/// acknowledgement awaited) — with every id and bit rewritten consistently.
pub fn representative(s: &State) -> State {
    let n = s.actor_states.len();
    let p = n - 2; // coordinator, participants, client
                   // The coordinator's per-participant bits.
    let coordinator = match &*s.actor_states[0] {
        NodeState::Coordinator(c) => Some(c),
        _ => None,
    };
    let bit = |mask: Mask, i: usize| mask & (1 << i) != 0;
    let key = |i: usize| {
        let id = Id::from(i + 1);
        let mut timers: Vec<Timer> = s.timers_set[i + 1].iter().copied().collect();
        timers.sort_unstable();
        let mut choices: Vec<(String, Vec<VoteChoice>)> = s.random_choices[i + 1]
            .map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        choices.sort_unstable();
        let mut msgs: Vec<(bool, Msg)> = s
            .network
            .iter_all()
            .filter(|e| e.src == id || e.dst == id)
            .map(|e| (e.src == id, *e.msg))
            .collect();
        msgs.sort_unstable();
        let bits: Vec<bool> = coordinator
            .map(|c| {
                let mut b = vec![c.voting.is_some_and(|v| bit(v.yes, i))];
                b.extend(c.unacked.iter().map(|u| bit(u.waiting, i)));
                b
            })
            .unwrap_or_default();
        (
            (*s.actor_states[i + 1]).clone(),
            s.actor_storages[i + 1].clone(),
            s.crashed[i + 1],
            timers,
            choices,
            msgs,
            bits,
        )
    };
    let mut order: Vec<usize> = (0..p).collect();
    let keys: Vec<_> = (0..p).map(key).collect();
    order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
    if order.iter().enumerate().all(|(new, old)| new == *old) {
        return s.clone();
    }
    // old index → new index
    let mut new_of = vec![0; p];
    for (new, old) in order.iter().enumerate() {
        new_of[*old] = new;
    }
    let map_id = |id: Id| {
        let i = usize::from(id);
        if (1..=p).contains(&i) {
            Id::from(new_of[i - 1] + 1)
        } else {
            id
        }
    };
    let map_mask = |mask: Mask| {
        (0..p)
            .filter(|i| bit(mask, *i))
            .fold(0, |m, i| m | (1 << new_of[i]))
    };
    let slot = |new_i: usize| {
        if (1..=p).contains(&new_i) {
            order[new_i - 1] + 1
        } else {
            new_i
        }
    };
    let mut actor_states: Vec<Arc<NodeState>> =
        (0..n).map(|i| s.actor_states[slot(i)].clone()).collect();
    if let NodeState::Coordinator(c) = &*s.actor_states[0] {
        let mut c = c.clone();
        if let Some(v) = c.voting.as_mut() {
            v.yes = map_mask(v.yes);
        }
        for u in c.unacked.iter_mut() {
            u.waiting = map_mask(u.waiting);
        }
        actor_states[0] = Arc::new(NodeState::Coordinator(c));
    }
    let mut canonical = State {
        actor_states,
        network: Network::new_unordered_nonduplicating(s.network.iter_all().map(|e| Envelope {
            src: map_id(e.src),
            dst: map_id(e.dst),
            msg: *e.msg,
        })),
        timers_set: (0..n).map(|i| s.timers_set[slot(i)].clone()).collect(),
        random_choices: (0..n).map(|i| s.random_choices[slot(i)].clone()).collect(),
        crashed: (0..n).map(|i| s.crashed[slot(i)]).collect(),
        history: s.history,
        actor_storages: (0..n).map(|i| s.actor_storages[slot(i)].clone()).collect(),
    };
    // Timers and choices moved between actors: the shape moves with them.
    reshape(&mut canonical);
    canonical
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

/// `two-phase-commit` in the catalogue.
pub struct TwoPhaseCommitEntry;

pub static ENTRY: TwoPhaseCommitEntry = TwoPhaseCommitEntry;

impl TwoPhaseCommitEntry {
    /// Reads and validates the configuration; returns it and whether to reduce
    /// by symmetry.
    pub fn config(&self, settings: &Settings) -> Result<(TwoPhaseCfg, bool), ConfigError> {
        let info = self.info();
        info.refuse_unknown_flags(settings)?;
        let variant = Variant::parse(info.variant(settings)?.name).expect("catalogue names parse");
        let d = variant.defaults();
        let participants = bounded(
            settings.participants,
            "participants",
            d.participants.into(),
            1,
            PARTICIPANTS_MAX,
        )?;
        let transactions = bounded(
            settings.transactions,
            "transactions",
            d.transactions.into(),
            1,
            TRANSACTIONS_MAX,
        )?;
        let crashes = bounded(
            settings.crashes,
            "crashes",
            d.crashes.into(),
            0,
            CRASHES_MAX,
        )?;
        if settings.coordinator_never_recovers && crashes == 0 {
            return Err(ConfigError(
                "--coordinator-never-recovers needs a crash: drop --crashes 0".into(),
            ));
        }
        Ok((
            TwoPhaseCfg {
                participants,
                transactions,
                crashes,
                coordinator_never_recovers: settings.coordinator_never_recovers,
                variant,
            },
            settings.symmetry,
        ))
    }
}

impl ModelEntry for TwoPhaseCommitEntry {
    fn info(&self) -> ModelInfo {
        let d = TwoPhaseCfg::default();
        // Each row runs its variant's defaults (see `Variant::defaults`).
        let mut variants: Vec<VariantInfo> = Variant::ALL
            .into_iter()
            .map(|v| VariantInfo::of(v.name(), v.expected_violation(), v.about()))
            .collect();
        variants.push(VariantInfo {
            name: "coordinator-never-recovers",
            kind: VariantKind::Limitation,
            expected_violation: Some("eventually-decided"),
            about: "2PC blocks: prepared participants wait forever for a coordinator that never recovers",
            settings: Settings {
                participants: Some(BUG_PARTICIPANTS.into()),
                coordinator_never_recovers: true,
                ..Settings::default()
            },
        });
        ModelInfo {
            name: "two-phase-commit",
            about: "2PC with crash recovery, presumed abort and client retries, refining TwoPhase",
            flags: vec![
                FlagInfo { name: "participants", default: d.participants.to_string(), help: "participants (1 to 5; a bug variant defaults to 2, retry-as-new-transaction to 1)" },
                FlagInfo { name: "transactions", default: d.transactions.to_string(), help: "transactions the client runs one after another (1 or 2; untagged-decision defaults to 2)" },
                FlagInfo { name: "crashes", default: d.crashes.to_string(), help: "crashes per behaviour, any actor (0 to 2; untagged-decision defaults to 0)" },
                FlagInfo { name: "symmetry", default: "off".into(), help: "reduce by symmetry over participants" },
                FlagInfo { name: "coordinator-never-recovers", default: "off".into(), help: "the coordinator may crash and never recovers (2PC blocks)" },
            ],
            properties: vec![
                PropertyInfo { name: "atomicity", expectation: "always", about: "no transaction committed at one participant and aborted at another" },
                PropertyInfo { name: "exactly-once", expectation: "always", about: "no participant's durable ledger holds a transaction's effect twice" },
                PropertyInfo { name: "validity", expectation: "always", about: "a transaction commits only if every participant voted yes" },
                PropertyInfo { name: "client-agreement", expectation: "always", about: "no participant decided against the outcome the client learned" },
                PropertyInfo { name: "commit-possible", expectation: "sometimes", about: "everyone reaches commit" },
                PropertyInfo { name: "abort-possible", expectation: "sometimes", about: "everyone reaches abort" },
                PropertyInfo { name: "eventually-decided", expectation: "progress", about: "from every state, a settled state with every participant and the client holding every outcome is reachable" },
            ],
            variants,
        }
    }

    fn check(&self, settings: &Settings, opts: &RunOptions) -> Result<Report, ConfigError> {
        let (cfg, symmetry) = self.config(settings)?;
        let label = RunLabel {
            model: "two-phase-commit".into(),
            variant: cfg.variant.name().into(),
            config: BTreeMap::from([
                ("participants".to_string(), cfg.participants.to_string()),
                ("transactions".to_string(), cfg.transactions.to_string()),
                ("crashes".to_string(), cfg.crashes.to_string()),
                (
                    "coordinator-recovers".to_string(),
                    (!cfg.coordinator_never_recovers).to_string(),
                ),
                (
                    "symmetry".to_string(),
                    if symmetry { "on" } else { "off" }.to_string(),
                ),
            ]),
            not_checked: Vec::new(),
        };
        let reduce: Option<crate::check::Representative<TwoPhaseCommit>> =
            symmetry.then_some(representative as fn(&State) -> State);
        run(cfg.into_model(), reduce, label, opts).map_err(|e| ConfigError(e.0))
    }

    fn explore(&self, settings: &Settings, address: SocketAddr) -> Result<(), ConfigError> {
        let (cfg, symmetry) = self.config(settings)?;
        let reduce: Option<crate::check::Representative<TwoPhaseCommit>> =
            symmetry.then_some(representative as fn(&State) -> State);
        crate::catalog::serve(cfg.into_model(), reduce, address)
    }
}

#[cfg(test)]
mod tests;
