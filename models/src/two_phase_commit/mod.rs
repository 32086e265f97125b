//! # Two-phase commit with crash recovery, presumed abort and client retries
//!
//! One [`coordinator`], P [`participant`]s (default 3) and one [`client`] that
//! runs one transaction, or two (`--transactions 2`, so that late messages of
//! the first can meet the second) — one after another, or both in flight at
//! once (`--in-flight 2`, as the implementation runs up to 64 per client). The network loses and
//! reorders messages; retransmission duplicates them; any actor may crash —
//! losing its volatile state, keeping its storage — and recover
//! (`--crashes`, default 1, in total per behaviour).
//!
//! The protocol, each rule persisting before it sends:
//! 1. The client durably records its pending transactions (up to `in_flight`),
//!    sends `Begin(x)` for each and retries with the same id until it learns
//!    the outcome.
//! 2. The coordinator starts a round — up to `in_flight` held at once (one at a
//!    time by default, until every participant has acknowledged the previous
//!    decision): it durably records the round as started, then sends
//!    `Prepare(t)` to every participant.
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
//! - `balance-bound` (always): with a balance bound set (two or more
//!   transactions in flight), no participant's balance — one unit per applied
//!   transaction — exceeds it.
//! - `validity` (always): a transaction is committed anywhere only if every
//!   participant voted yes for it — its durable log has `Prepared(t)`, or its
//!   live state holds the (not yet durable) yes vote.
//! - `client-agreement` (always): if the client learned committed (aborted), no
//!   participant aborted (committed) that transaction.
//! - `commit-possible`, `abort-possible` (sometimes): every participant and the
//!   client reach commit (abort) of the first transaction.
//! - `eventually-decided` (progress): from every reachable state, a state at
//!   rest (no timer armed, nothing but dead messages in flight, no crashed actor
//!   that will recover) in which every
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
//! **Refinement.** [`abstraction`] maps a state and a transaction to a state of
//! that transaction's instance of Gray and Lamport's TwoPhase
//! ([`crate::two_phase_spec`]); the tests check that every reachable step maps,
//! for every transaction, to a spec step or a stutter.
//!
//! **Symmetry.** Participants are interchangeable; [`representative`] sorts them
//! by their whole projected state and rewrites ids consistently.

pub mod client;
pub mod coordinator;
mod dead;
mod entry;
pub mod participant;
pub mod properties;
pub mod refinement;
pub mod symmetry;
pub mod variants;

pub use entry::{check_cfg, TwoPhaseCommitEntry, ENTRY};
pub use refinement::{abstraction, refines_step};
pub use symmetry::representative;
pub use variants::{Variant, VariantDefaults};

use crate::system::{storage, History, System, SystemState};
use client::{Client, ClientState, ClientStorage};
use coordinator::{Coordinator, CoordinatorState, CoordinatorStorage};
use participant::{Participant, ParticipantState, ParticipantStorage};
use stateright::actor::{Actor, ActorModel, Id, LossyNetwork, Network, Out};
use std::borrow::Cow;
use std::fmt;
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
/// Transactions the client may have in flight at once (`--in-flight`): at most
/// every transaction it runs.
pub const IN_FLIGHT_MAX: u32 = TRANSACTIONS_MAX;
/// With two or more transactions in flight, each participant's account has room
/// for one unit above its opening balance (every transaction credits one unit at
/// every participant), so two in-flight transactions contend for it: a yes vote
/// must count the postings already staged. One at a time, no bound is set (the
/// implementation's `BALANCE_MAX` is far beyond any reachable balance).
pub const CONCURRENT_BALANCE_MAX: u8 = 1;
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

/// A configuration of the two-phase-commit model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TwoPhaseCfg {
    pub participants: u8,
    pub transactions: Tx,
    pub crashes: u8,
    /// The coordinator may crash and never recovers; nobody else crashes.
    pub coordinator_never_recovers: bool,
    /// Transactions the client keeps in flight at once: it submits transaction
    /// `x` only once every transaction below `x - in_flight + 1` is learned (the
    /// implementation's window of `CLIENT_PENDING_TXNS_MAX` consecutive ids).
    /// The coordinator runs as many rounds at once, and a participant holds as
    /// many prepared transactions (beyond that it votes no, as the
    /// implementation's participant does at `PARTICIPANT_TXNS_MAX`).
    pub in_flight: Tx,
    /// The most units a participant's balance may hold (`None`: unbounded). Each
    /// transaction credits one unit at every participant, so a balance is the
    /// length of the participant's ledger.
    pub balance_max: Option<u8>,
    pub variant: Variant,
    /// How a save becomes durable (`--log`).
    pub log: crate::system::LogMode,
    /// The network (`--network`).
    pub network: TwoPhaseNetwork,
}

/// The network two-phase commit runs on (`--network`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TwoPhaseNetwork {
    /// Unordered, lossy, each copy delivered once: a message can be lost,
    /// reordered and (through retransmission) duplicated. The default.
    #[default]
    Lossy,
    /// Unordered and duplicating, never losing: a message once sent stays
    /// deliverable for ever, any number of times, in any order with the
    /// others — every retransmission it could have had is already there, and
    /// every late copy. What it leaves out is loss: no message is ever gone
    /// for good, so `eventually-decided` is checked assuming each message
    /// sent can still arrive (docs/two-phase-commit.md, "Concurrent").
    Duplicating,
}

impl TwoPhaseNetwork {
    /// `lossy` or `duplicating`, as `--network` takes it.
    pub fn name(self) -> &'static str {
        match self {
            TwoPhaseNetwork::Lossy => "lossy",
            TwoPhaseNetwork::Duplicating => "duplicating",
        }
    }

    /// Reads `--network` (absent: lossy).
    pub fn parse(text: Option<&str>) -> Result<TwoPhaseNetwork, crate::catalog::ConfigError> {
        match text {
            None | Some("lossy") => Ok(TwoPhaseNetwork::Lossy),
            Some("duplicating") => Ok(TwoPhaseNetwork::Duplicating),
            Some(other) => Err(crate::catalog::ConfigError(format!(
                "--network {other} is not a two-phase-commit network: it must be lossy or duplicating"
            ))),
        }
    }
}

impl Default for TwoPhaseCfg {
    fn default() -> Self {
        TwoPhaseCfg {
            participants: 3,
            transactions: 1,
            crashes: 1,
            coordinator_never_recovers: false,
            in_flight: 1,
            balance_max: None,
            variant: Variant::Correct,
            log: crate::system::LogMode::Atomic,
            network: TwoPhaseNetwork::Lossy,
        }
    }
}

impl TwoPhaseCfg {
    /// Client retries and participant queries per incarnation: unbounded, except
    /// against a coordinator that never recovers.
    pub fn retries_max(&self) -> Option<u8> {
        self.coordinator_never_recovers.then_some(RETRIES_BLOCKED)
    }

    /// The balance bound that goes with `in_flight` transactions in flight:
    /// [`CONCURRENT_BALANCE_MAX`] when two or more run at once, none otherwise.
    pub fn balance_max_for(in_flight: Tx) -> Option<u8> {
        (in_flight > 1).then_some(CONCURRENT_BALANCE_MAX)
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

/// An actor's storage. Shared (`Arc`) rather than owned: Stateright clones
/// every actor's storage with the state on every step, while a step changes
/// at most one actor's storage, so a clone is a reference count where it was
/// one allocation per vector in it. Hashing, equality, order and `Debug` are
/// those of the value inside.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeStorage {
    Coordinator(Arc<CoordinatorStorage>),
    Participant(Arc<ParticipantStorage>),
    Client(Arc<ClientStorage>),
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
                    Some(NodeStorage::Coordinator(s)) => Some(&**s),
                    _ => None,
                },
                o,
            )),
            Node::Participant(p) => NodeState::Participant(p.on_start(
                match storage {
                    Some(NodeStorage::Participant(s)) => Some(&**s),
                    _ => None,
                },
                o,
            )),
            Node::Client(c) => NodeState::Client(c.on_start(
                match storage {
                    Some(NodeStorage::Client(s)) => Some(&**s),
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
                in_flight: self.in_flight,
                variant: self.variant,
            }))
            .actors((0..self.participants).map(|_| {
                Node::Participant(Participant {
                    coordinator,
                    variant: self.variant,
                    queries_max: retries_max,
                    capacity: self.in_flight,
                    balance_max: self.balance_max,
                })
            }))
            .actor(Node::Client(Client {
                coordinator,
                transactions: self.transactions,
                in_flight: self.in_flight,
                retries_max,
            }))
            .init_network(match self.network {
                TwoPhaseNetwork::Lossy => Network::new_unordered_nonduplicating([]),
                TwoPhaseNetwork::Duplicating => Network::new_unordered_duplicating([]),
            })
            .lossy_network(match self.network {
                TwoPhaseNetwork::Lossy => LossyNetwork::Yes,
                TwoPhaseNetwork::Duplicating => LossyNetwork::No,
            });
        let mut system = System::new(actors, names, self.crashes);
        system.skip_undone_crashes = true;
        if self.coordinator_never_recovers {
            let n = system.may_crash.len();
            system.may_crash = (0..n).map(|i| i == 0).collect();
            system.recovers[0] = false;
        }
        // The syncing log (issue 9): the variant is a flag of the System.
        system.log = self.log;
        for i in 1..=usize::from(self.participants) {
            system.releases_before_sync[i] = self.variant == Variant::VoteBeforeSync;
        }
        let mut system = properties::add(system);
        system.dead = dead::dead;
        system.dead_choice = dead::dead_choice;
        system.forgets_last_delivery = true;
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

#[cfg(test)]
mod tests;
