//! `eo_impl::two_phase_commit`'s [`Client`], [`Coordinator`] and
//! [`Participant`] cores as Stateright actors in the models' [`System`],
//! checked against the two-phase-commit model's properties ([`properties`]).
//!
//! The actors sit where the model's do (`eo_models::two_phase_commit`): the
//! coordinator is actor 0, participants `1..=P`, the client `P + 1`, on the
//! model's lossy, reordering network with its crash budget and log modes. Each
//! role's step is in its own file ([`coordinator`], [`participant`],
//! [`client`]); every step carries out the core's `Ready` as
//! [`crate::actors::release`] does, and the actor's storage is its log — every
//! record appended so far (see [`crate::actors`] for the log modes and the
//! standing clock). The actors mirror the model wherever the model has a choice
//! to make that the implementation leaves to its driver:
//!
//! - **The application.** The client's application submits transactions
//!   `0..transactions` as the model's client does: on its first start, and
//!   whenever an outcome frees the window, while fewer than `in_flight` are
//!   pending. Transaction `tx` spans every participant with the legs of
//!   [`legs_of`] (so a participant's ledger is its balance, see
//!   [`crate::abstraction::two_phase_commit`]).
//! - **The vote.** A participant's vote is the application's (`VotePolicy`);
//!   the model leaves it to a nondeterministic choice. A `Prepare` for a
//!   transaction the core holds nothing for is therefore not handed over at
//!   once: the actor offers the choice yes or no (Stateright's
//!   `choose_random`, as the model does), and the chosen branch sets the
//!   core's vote policy and hands the `Prepare` over. A crash forgets a choice
//!   not yet made, as it forgets the model's.
//! - **Time.** Every role has one timer, [`Timer::Deadline`], armed exactly
//!   while the core's `poll_timeout()` is `Some`; its firing is
//!   `handle_timeout(NOW)`, which fires every armed deadline at once: the
//!   client's retries, the coordinator's vote timeouts (a preparing
//!   transaction aborts — the model's `Votes` timer) and decision re-sends, a
//!   prepared participant's queries.

pub mod client;
pub mod coordinator;
mod dead;
pub mod participant;
pub mod properties;

use crate::abstraction::two_phase_commit::Layout;
use crate::actors::checked::Checked;
use crate::actors::release::{appends, carry_out};
use crate::actors::{bounded, BoundError};
use eo_impl::core::{Core, NodeId};
use eo_impl::two_phase_commit::{
    Client, ClientRecord, Coordinator, CoordinatorRecord, Decision, Msg, Participant,
    ParticipantRecord, Vote,
};
use eo_models::system::{History, LogMode, System, SystemState};
use stateright::actor::{model_timeout, Actor, ActorModel, Id, LossyNetwork, Network, Out};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The most participants (the model's types hold more; the state space does not).
pub const PARTICIPANTS_MAX: u32 = 3;
/// The fewest participants: a transaction's legs must sum to zero and still
/// tell who applied it (see [`Layout::new`]).
pub const PARTICIPANTS_MIN: u32 = 2;
/// The most transactions the client's application runs.
pub const TRANSACTIONS_MAX: u32 = 2;
/// The most transactions it keeps pending at once.
pub const IN_FLIGHT_MAX: u32 = 2;
/// The most crashes per behaviour.
pub const CRASHES_MAX: u32 = 2;

/// A fault planted in the implementation's driving to show that the checker
/// catches it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The cores as they are.
    #[default]
    None,
    /// The participants' drivers open each release before its records are
    /// synced (`Release::open_before_durable`'s bug): under `--log sync` a yes
    /// vote leaves ahead of its `Prepared` record. Tests only.
    #[cfg(test)]
    VoteBeforeSync,
    /// The participants' drivers hand every `Commit` over twice to a fresh
    /// core rebuilt from the log without its last `Committed` record: a
    /// participant that applies a commit twice. Tests only.
    #[cfg(test)]
    CommitTwice,
    /// The participants' drivers leave the `Prepared` records out of what
    /// they save: a yes vote leaves and its prepare record never becomes
    /// durable, so a crash forgets it. Tests only.
    #[cfg(test)]
    PreparedNotLogged,
    /// The coordinator's driver drops the `Decided` records from what it
    /// saves: a coordinator that forgets its decision in a crash. Tests only.
    #[cfg(test)]
    DecisionNotLogged,
}

/// A configuration of the adapted cores.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImplTwoPhaseCfg {
    pub participants: u8,
    /// Transactions the client's application runs.
    pub transactions: u8,
    /// Transactions it keeps pending at once.
    pub in_flight: u8,
    pub crashes: u8,
    pub log: LogMode,
    pub fault: Fault,
}

impl Default for ImplTwoPhaseCfg {
    /// Two participants, one transaction, one crash, an atomic log: the model's
    /// default with the bug variants' two participants.
    fn default() -> Self {
        ImplTwoPhaseCfg {
            participants: 2,
            transactions: 1,
            in_flight: 1,
            crashes: 1,
            log: LogMode::Atomic,
            fault: Fault::None,
        }
    }
}

impl ImplTwoPhaseCfg {
    /// A configuration from plain numbers, each checked against its bound.
    pub fn new(
        participants: u32,
        transactions: u32,
        in_flight: u32,
        crashes: u32,
    ) -> Result<ImplTwoPhaseCfg, BoundError> {
        let cfg = ImplTwoPhaseCfg {
            participants: bounded(
                "participants",
                participants,
                PARTICIPANTS_MIN,
                PARTICIPANTS_MAX,
            )?,
            transactions: bounded("transactions", transactions, 1, TRANSACTIONS_MAX)?,
            in_flight: bounded("in-flight", in_flight, 1, IN_FLIGHT_MAX)?,
            crashes: bounded("crashes", crashes, 0, CRASHES_MAX)?,
            ..ImplTwoPhaseCfg::default()
        };
        if in_flight > transactions {
            return Err(BoundError::TooLarge(format!(
                "--in-flight {in_flight} exceeds --transactions {transactions}: the client has no more to run"
            )));
        }
        Ok(cfg)
    }

    /// Where the actors are.
    pub fn layout(&self) -> Layout {
        // `new` and the catalogue bound participants to what a layout takes.
        Layout::new(self.participants).unwrap_or(Layout {
            participants: self.participants,
        })
    }

    /// The client's actor index.
    pub fn client_index(&self) -> usize {
        usize::from(self.participants) + 1
    }

    /// Builds the checked system: the coordinator (id 0), the participants
    /// (ids `1..=P`), the client (id `P + 1`), the model's network, crash
    /// budget and log mode, and the properties.
    pub fn into_model(self) -> ImplTwoPhase {
        let layout = self.layout();
        let mut names = vec!["coordinator".to_string()];
        names.extend((1..=self.participants).map(|i| format!("participant {i}")));
        names.push("client".into());
        let actors = ActorModel::new(self.clone(), History::default())
            .actor(Node::Coordinator {
                layout,
                fault: self.fault,
            })
            .actors((0..self.participants).map(|_| Node::Participant {
                in_flight: self.in_flight,
                fault: self.fault,
            }))
            .actor(Node::Client {
                layout,
                transactions: self.transactions,
                in_flight: self.in_flight,
            })
            .init_network(Network::new_unordered_nonduplicating([]))
            .lossy_network(LossyNetwork::Yes);
        let mut system = System::new(actors, names, self.crashes);
        system.log = self.log;
        system.records = records;
        system.dead = dead::dead;
        system.skip_undone_crashes = true;
        #[cfg(test)]
        for i in 1..=usize::from(self.participants) {
            system.releases_before_sync[i] = self.fault == Fault::VoteBeforeSync;
        }
        properties::add(system)
    }
}

/// The checked system of adapted cores.
pub type ImplTwoPhase = Checked<Node, ImplTwoPhaseCfg>;
/// A state of it.
pub type ImplState = SystemState<Node>;

/// An impl message on the model's network: ordered and hashed by all its fields.
#[derive(Clone, PartialEq, Eq)]
pub struct Wire(pub Msg);

/// A message as a tuple of its fields: kind, transaction, a decision or vote,
/// a number (`low`, `floor`), and the legs or participants it carries.
type WireKey = (u8, NodeId, u64, u8, u64, Vec<(NodeId, u32, i64)>);

fn decision_key(d: Option<Decision>) -> u8 {
    match d {
        None => 0,
        Some(Decision::Commit) => 1,
        Some(Decision::Abort) => 2,
    }
}

impl Wire {
    fn key(&self) -> WireKey {
        let nodes = |ps: &[NodeId]| ps.iter().map(|p| (*p, 0, 0)).collect();
        match &self.0 {
            Msg::Begin { txn, low } => (
                0,
                txn.id.client,
                txn.id.seq,
                0,
                *low,
                txn.legs
                    .iter()
                    .map(|l| (l.participant, l.posting.account, l.posting.delta))
                    .collect(),
            ),
            Msg::Outcome { txn, decision } => (
                1,
                txn.client,
                txn.seq,
                decision_key(Some(*decision)),
                0,
                Vec::new(),
            ),
            Msg::Prepare {
                txn,
                posting,
                participants,
                floor,
            } => {
                let mut rest: Vec<(NodeId, u32, i64)> = nodes(participants);
                rest.push((NodeId::MAX, posting.account, posting.delta));
                (2, txn.client, txn.seq, 0, *floor, rest)
            }
            Msg::Vote { txn, vote } => (
                3,
                txn.client,
                txn.seq,
                u8::from(*vote == Vote::Yes),
                0,
                Vec::new(),
            ),
            Msg::Decision { txn, decision } => (
                4,
                txn.client,
                txn.seq,
                decision_key(Some(*decision)),
                0,
                Vec::new(),
            ),
            Msg::Ack { txn, held } => (5, txn.client, txn.seq, decision_key(*held), 0, Vec::new()),
            Msg::Query { txn, participants } => (6, txn.client, txn.seq, 0, 0, nodes(participants)),
            Msg::Busy { txn, reason } => (
                7,
                txn.client,
                txn.seq,
                0,
                u64::from(matches!(reason, eo_impl::two_phase_commit::Busy::Clients)),
                Vec::new(),
            ),
        }
    }
}

impl Hash for Wire {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key().hash(h);
    }
}

impl PartialOrd for Wire {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Wire {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Msg::Begin { txn, low } => write!(f, "Begin({}, low {low})", txn.id),
            Msg::Outcome { txn, decision } => write!(f, "Outcome({txn}, {decision:?})"),
            Msg::Prepare { txn, floor, .. } => write!(f, "Prepare({txn}, floor {floor})"),
            Msg::Vote { txn, vote } => write!(f, "Vote({txn}, {vote:?})"),
            Msg::Decision { txn, decision } => write!(f, "Decision({txn}, {decision:?})"),
            Msg::Ack { txn, held } => write!(f, "Ack({txn}, held {held:?})"),
            Msg::Query { txn, .. } => write!(f, "Query({txn})"),
            Msg::Busy { txn, reason } => write!(f, "Busy({txn}, {reason:?})"),
        }
    }
}

/// The one timer: the core's `poll_timeout()` deadline, always due (see
/// [`crate::actors::NOW`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    Deadline,
}

/// A participant's vote choice for the `Prepare` it holds back.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VoteChoice {
    pub vote: bool,
    pub prepare: Wire,
}

/// An actor: one adapted core.
#[derive(Clone, Debug)]
pub enum Node {
    Coordinator {
        layout: Layout,
        fault: Fault,
    },
    Participant {
        /// The client's window: the vote choices of the transactions in
        /// flight at once are kept apart by their slot in it.
        in_flight: u8,
        fault: Fault,
    },
    Client {
        layout: Layout,
        transactions: u8,
        in_flight: u8,
    },
}

/// An actor's volatile state: its core, and its log as appended so far.
#[derive(Clone)]
pub enum NodeState {
    Coordinator {
        core: Box<Coordinator>,
        log: Arc<Vec<CoordinatorRecord>>,
    },
    Participant {
        core: Box<Participant>,
        log: Arc<Vec<ParticipantRecord>>,
    },
    Client {
        core: Box<Client>,
        log: Arc<Vec<ClientRecord>>,
    },
    /// The core's `recover` refused the stored log: the actor does nothing more.
    Failed { error: String },
}

/// What identifies a [`NodeState`]: the cores' protocol views and the logs
/// (see [`crate::actors`] on what a protocol view leaves out).
#[derive(PartialEq, Eq, Hash)]
enum View<'a> {
    Coordinator(
        eo_impl::two_phase_commit::CoordinatorProtocol,
        &'a [CoordinatorRecord],
    ),
    Participant(
        eo_impl::two_phase_commit::ParticipantProtocol,
        ParticipantLog<'a>,
    ),
    Client(
        eo_impl::two_phase_commit::ClientProtocol,
        &'a [ClientRecord],
    ),
    Failed(&'a str),
}

impl NodeState {
    fn view(&self) -> View<'_> {
        match self {
            NodeState::Coordinator { core, log } => View::Coordinator(core.protocol(), log),
            NodeState::Participant { core, log } => {
                View::Participant(core.protocol(), ParticipantLog(log))
            }
            NodeState::Client { core, log } => View::Client(core.protocol(), log),
            NodeState::Failed { error } => View::Failed(error),
        }
    }
}

super::identity_by_view!(NodeState);

impl fmt::Debug for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeState::Coordinator { core, .. } => {
                write!(f, "Coordinator {:?}", core.phases())
            }
            NodeState::Participant { core, .. } => {
                write!(f, "Participant {:?}", core.txn_views())
            }
            NodeState::Client { core, .. } => write!(
                f,
                "Client {{ next {}, pending {:?} }}",
                core.next_seq(),
                core.pending()
            ),
            NodeState::Failed { error } => write!(f, "Failed({error})"),
        }
    }
}

/// A participant's log, hashed record by record with every field
/// (`ParticipantRecord` holds a `Bank`, which has no `Hash`).
#[derive(PartialEq, Eq)]
pub struct ParticipantLog<'a>(pub &'a [ParticipantRecord]);

impl Hash for ParticipantLog<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.len().hash(h);
        for r in self.0 {
            match r {
                ParticipantRecord::Prepared(p) => (0u8, p.txn, p.posting, &p.participants).hash(h),
                ParticipantRecord::Committed { txn, posting } => (1u8, txn, posting).hash(h),
                ParticipantRecord::Aborted { txn } => (2u8, txn).hash(h),
                ParticipantRecord::Floor { client, floor } => (3u8, client, floor).hash(h),
                // Adapters never compact; a snapshot is keyed by its whole text.
                ParticipantRecord::Snapshot(s) => (4u8, format!("{s:?}")).hash(h),
            }
        }
    }
}

/// An actor's storage: its log, every record appended, in order. Shared
/// (`Arc`), as the model's storages are: a step changes one actor's storage at
/// most, while every state clones them all.
#[derive(Clone, PartialEq, Eq)]
pub enum NodeStorage {
    Coordinator(Arc<Vec<CoordinatorRecord>>),
    Participant(Arc<Vec<ParticipantRecord>>),
    Client(Arc<Vec<ClientRecord>>),
}

impl Hash for NodeStorage {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self {
            NodeStorage::Coordinator(log) => (0u8, &**log).hash(h),
            NodeStorage::Participant(log) => (1u8, ParticipantLog(log)).hash(h),
            NodeStorage::Client(log) => (2u8, &**log).hash(h),
        }
    }
}

impl fmt::Debug for NodeStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeStorage::Coordinator(log) => write!(f, "{log:?}"),
            NodeStorage::Participant(log) => write!(f, "{log:?}"),
            NodeStorage::Client(log) => write!(f, "{log:?}"),
        }
    }
}

/// Under `--log sync`, the appends one save makes: one per record added to
/// the log.
fn records(
    _: &ImplTwoPhaseCfg,
    _: Id,
    before: Option<&NodeStorage>,
    saved: &NodeStorage,
) -> Vec<NodeStorage> {
    fn split<R: Clone + PartialEq>(
        before: Option<&[R]>,
        saved: &[R],
        wrap: fn(Arc<Vec<R>>) -> NodeStorage,
    ) -> Option<Vec<NodeStorage>> {
        appends(before.unwrap_or(&[]), saved)
            .map(|prefixes| prefixes.into_iter().map(|p| wrap(Arc::new(p))).collect())
    }
    let split = match (before, saved) {
        (Some(NodeStorage::Coordinator(old)), NodeStorage::Coordinator(new)) => {
            split(Some(old), new, NodeStorage::Coordinator)
        }
        (None, NodeStorage::Coordinator(new)) => split(None, new, NodeStorage::Coordinator),
        (Some(NodeStorage::Participant(old)), NodeStorage::Participant(new)) => {
            split(Some(old), new, NodeStorage::Participant)
        }
        (None, NodeStorage::Participant(new)) => split(None, new, NodeStorage::Participant),
        (Some(NodeStorage::Client(old)), NodeStorage::Client(new)) => {
            split(Some(old), new, NodeStorage::Client)
        }
        (None, NodeStorage::Client(new)) => split(None, new, NodeStorage::Client),
        _ => None,
    };
    split.unwrap_or_else(|| vec![saved.clone()])
}

/// Carries out `core`'s `Ready`: appends its records to `log` and saves the
/// log (as `wrap` makes it a storage), sends the released messages, and arms
/// the deadline timer exactly while the core has one. `plant` may change the
/// records before they are appended: a planted fault's driver (tests only);
/// the cores as they are pass [`as_is`].
fn step<C: Core<Msg = Msg>>(
    core: &mut C,
    log: &mut Arc<Vec<C::Record>>,
    wrap: fn(Arc<Vec<C::Record>>) -> NodeStorage,
    plant: impl FnOnce(&mut Vec<C::Record>),
    o: &mut Out<Node>,
) where
    C::Record: Clone,
{
    let mut carried = carry_out(core);
    plant(&mut carried.records);
    if !carried.records.is_empty() {
        Arc::make_mut(log).extend(carried.records);
        o.save(wrap(log.clone()));
    }
    for envelope in carried.messages {
        o.send(Id::from(envelope.to as usize), Wire(envelope.msg));
    }
    if core.poll_timeout().is_some() {
        o.set_timer(Timer::Deadline, model_timeout());
    } else {
        o.cancel_timer(Timer::Deadline);
    }
}

/// The records of a step, appended as the core wrote them.
fn as_is<R>(_: &mut Vec<R>) {}

/// The impl node id of actor `id`.
fn node_id(id: Id) -> NodeId {
    usize::from(id) as NodeId
}

impl Actor for Node {
    type Msg = Wire;
    type Timer = Timer;
    type State = NodeState;
    type Storage = NodeStorage;
    type Random = VoteChoice;

    fn name(&self) -> String {
        match self {
            Node::Coordinator { .. } => "coordinator".into(),
            Node::Participant { .. } => "participant".into(),
            Node::Client { .. } => "client".into(),
        }
    }

    fn on_start(&self, id: Id, storage: &Option<NodeStorage>, o: &mut Out<Self>) -> NodeState {
        let recovered = match self {
            Node::Coordinator { layout, fault } => {
                let log = match storage {
                    Some(NodeStorage::Coordinator(log)) => log.clone(),
                    _ => Arc::default(),
                };
                coordinator::start(*layout, *fault, log, o)
            }
            Node::Participant { fault, .. } => {
                let log = match storage {
                    Some(NodeStorage::Participant(log)) => log.clone(),
                    _ => Arc::default(),
                };
                participant::start(node_id(id), *fault, log, o)
            }
            Node::Client {
                layout,
                transactions,
                in_flight,
            } => {
                let log = match storage {
                    Some(NodeStorage::Client(log)) => log.clone(),
                    _ => Arc::default(),
                };
                client::start(*layout, *transactions, *in_flight, log, o)
            }
        };
        recovered.unwrap_or_else(|error| NodeState::Failed {
            error: error.to_string(),
        })
    }

    fn on_msg(&self, _: Id, state: &mut Cow<NodeState>, src: Id, msg: Wire, o: &mut Out<Self>) {
        match (self, state.to_mut()) {
            (Node::Coordinator { fault, .. }, NodeState::Coordinator { core, log }) => {
                coordinator::on_msg(*fault, core, log, node_id(src), msg.0, o)
            }
            (Node::Participant { in_flight, fault }, NodeState::Participant { core, log }) => {
                participant::on_msg(*in_flight, *fault, core, log, node_id(src), msg, o)
            }
            (
                Node::Client {
                    layout,
                    transactions,
                    in_flight,
                },
                NodeState::Client { core, log },
            ) => client::on_msg(
                *layout,
                *transactions,
                *in_flight,
                core,
                log,
                node_id(src),
                msg.0,
                o,
            ),
            _ => {}
        }
    }

    fn on_timeout(&self, _: Id, state: &mut Cow<NodeState>, _: &Timer, o: &mut Out<Self>) {
        match (self, state.to_mut()) {
            (Node::Coordinator { fault, .. }, NodeState::Coordinator { core, log }) => {
                coordinator::on_timeout(*fault, core, log, o)
            }
            (Node::Participant { fault, .. }, NodeState::Participant { core, log }) => {
                participant::on_timeout(*fault, core, log, o)
            }
            (Node::Client { .. }, NodeState::Client { core, log }) => {
                client::on_timeout(core, log, o)
            }
            _ => {}
        }
    }

    fn on_random(&self, _: Id, state: &mut Cow<NodeState>, choice: &VoteChoice, o: &mut Out<Self>) {
        if let (Node::Participant { fault, .. }, NodeState::Participant { core, log }) =
            (self, state.to_mut())
        {
            participant::on_vote(*fault, core, log, choice, o);
        }
    }
}

#[cfg(test)]
mod tests;
