//! A node: one protocol core driven with real I/O — a write-ahead log on disk with
//! group commit, TCP to its peers, a monotonic clock — behind a small API.
//!
//! ```no_run
//! use eo_impl::runtime::node::{Node, NodeConfig, RoleConfig};
//! use eo_impl::bank::Transfer;
//! let mut config = NodeConfig::new(1, RoleConfig::Sender { receiver: 2 }, "/tmp/eo/1".into());
//! config.peers.insert(2, "127.0.0.1:7002".parse().unwrap());
//! let mut node = Node::start(config).unwrap();
//! let outcomes = node.take_outcomes().unwrap();
//! let handle = node.handle();
//! // Busy (no incarnation yet, window full) is backpressure: wait and retry.
//! let seq = handle.submit_transfer(Transfer { from: 1, to: 2, amount: 5 });
//! for outcome in outcomes.iter() { println!("{outcome:?}"); }
//! node.shutdown().unwrap();
//! ```
//!
//! # Threads, and why not async
//!
//! A node is a handful of plain threads; see `docs/running.md` for the choice.
//!
//! - the **core thread** owns the core. It waits for one input (a message, an
//!   application command, a durability proof) or the core's next deadline, takes
//!   every other input already queued (up to [`INPUT_BATCH_MAX`]), feeds them all to
//!   the core, then carries out one `Ready`: [`Ready::persist`] appends its records
//!   to the log — no sync here — and the sealed [`Release`] waits in a queue;
//! - the **sync thread** is the group commit: it is told the last appended
//!   position, syncs the log (one `fdatasync` for everything appended so far; the
//!   core thread keeps appending meanwhile) and hands the [`Durable`] proof back;
//!   the core thread then opens every waiting release the proof covers, in order,
//!   and only then hands the messages to the transport and the events to the
//!   application. `Release::open` refuses a proof that does not cover it, so
//!   "acknowledged ⇒ durable" holds by construction; a release that depends on no
//!   new record opens at once with the proof of the last sync;
//! - the **transport** ([`super::transport`]): an accept thread, a reader per
//!   inbound connection, a writer per peer.
//!
//! Inputs reach the core thread through one bounded queue
//! ([`INPUT_QUEUE_LEN`]): a full queue blocks the readers, which stop reading their
//! sockets, which is TCP backpressure to the senders.
//!
//! # Time, randomness, identity
//!
//! The core's time is the time elapsed since the node started, from the monotonic
//! clock ([`Instant`]), as [`Time`]. The sender's incarnation-request nonce and the
//! handshake nonces come from the operating system's generator; the transport's
//! backoff jitter from a ChaCha8 generator seeded with [`NodeConfig::seed`]. The
//! node's *incarnation* (a life between two starts, carried in the handshake and
//! the trace) is the wall-clock time of the start in microseconds: unique per start
//! on a machine whose clock does not go backwards, and stored nowhere.

use super::handshake::{ClusterKey, HandshakeConfig, Identity, Protocol};
use super::store::{wal_dir, RoleKind};
use super::trace::{Lamport, Tracer};
use super::transport::{self, Outbound, TransportCounts, TransportStats};
use crate::ack_retry::{
    self, Receiver, ReceiverEvent, ReceiverStats, Sender, SenderError, SenderEvent, SenderStats,
    Seq,
};
use crate::bank::Transfer;
use crate::core::{Core, NodeId, Time};
use crate::disk::FileDisk;
use crate::release::{Durable, Release};
use crate::two_phase_commit::{self as tpc, Leg, TxnId, VotePolicy};
use crate::wal::{GroupCommit, Lsn, Wal, WalError};
use rand::Rng;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver as Rx, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Inputs queued for the core thread at most; more block their producer.
pub const INPUT_QUEUE_LEN: usize = 4096;

/// Inputs the core thread feeds to the core before it carries out one `Ready`.
pub const INPUT_BATCH_MAX: usize = 256;

/// Outcomes queued for the application at most; more are dropped and counted in
/// [`Status::outcomes_dropped`] (outcomes are at least once across restarts
/// anyway, so an application reconciles from its own state, not from a count).
pub const OUTCOME_QUEUE_LEN: usize = 65_536;

/// The most peers a node may have (each has a writer thread).
pub const PEERS_MAX: usize = 256;

/// The longest group-commit delay a node accepts ([`NodeConfig::sync_delay`]).
pub const SYNC_DELAY_MAX: Duration = Duration::from_millis(100);

/// The role a node plays, with the peers the role needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleConfig {
    /// An ack-retry sender, sending to `receiver`.
    Sender {
        /// The receiver's id (a peer).
        receiver: NodeId,
    },
    /// An ack-retry receiver; its senders are its peers.
    Receiver,
    /// A two-phase-commit coordinator; its other peers are clients.
    Coordinator {
        /// The participants (each a peer).
        participants: Vec<NodeId>,
    },
    /// A two-phase-commit participant that votes yes.
    Participant {
        /// The coordinator's id (a peer).
        coordinator: NodeId,
    },
    /// A two-phase-commit client.
    Client {
        /// The coordinator's id (a peer).
        coordinator: NodeId,
    },
}

impl RoleConfig {
    /// The role's kind (which fixes the protocol and the record type).
    pub fn kind(&self) -> RoleKind {
        match self {
            RoleConfig::Sender { .. } => RoleKind::Sender,
            RoleConfig::Receiver => RoleKind::Receiver,
            RoleConfig::Coordinator { .. } => RoleKind::Coordinator,
            RoleConfig::Participant { .. } => RoleKind::Participant,
            RoleConfig::Client { .. } => RoleKind::Client,
        }
    }

    /// The peers this role must have.
    fn required_peers(&self) -> Vec<NodeId> {
        match self {
            RoleConfig::Sender { receiver } => vec![*receiver],
            RoleConfig::Receiver => vec![],
            RoleConfig::Coordinator { participants } => participants.clone(),
            RoleConfig::Participant { coordinator } | RoleConfig::Client { coordinator } => {
                vec![*coordinator]
            }
        }
    }
}

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id.
    pub id: NodeId,
    /// Its role.
    pub role: RoleConfig,
    /// The address to listen on (default `127.0.0.1:0`: loopback, any port).
    pub listen: SocketAddr,
    /// Every node it talks to, by id: only these may connect.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Its data directory; the log lives in `data_dir/wal/`.
    pub data_dir: PathBuf,
    /// The cluster's id; nodes of other clusters are refused at the handshake.
    pub cluster_id: u64,
    /// With a key, peers must prove they hold it (HMAC challenge-response).
    pub cluster_key: Option<ClusterKey>,
    /// Write the protocol trace (JSON lines) to this file.
    pub trace: Option<PathBuf>,
    /// Seeds the transport's backoff jitter.
    pub seed: u64,
    /// Group commit: how long the sync thread, once asked for a sync, waits for
    /// more records before its `fdatasync` (like PostgreSQL's `commit_delay`).
    /// Zero (the default) syncs at once; a longer delay carries more records per
    /// sync at the cost of latency. At most [`SYNC_DELAY_MAX`].
    pub sync_delay: Duration,
    /// Benchmark-only (feature `bench-baseline`, default false): a receiver
    /// applies duplicates again (the at-least-once baseline). Ignored by other roles.
    #[cfg(feature = "bench-baseline")]
    pub at_least_once: bool,
}

impl NodeConfig {
    /// A configuration with no peers, listening on `127.0.0.1:0`, cluster 0, no
    /// key, no trace, seed 0, no group-commit delay.
    pub fn new(id: NodeId, role: RoleConfig, data_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            id,
            role,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            peers: BTreeMap::new(),
            data_dir,
            cluster_id: 0,
            cluster_key: None,
            trace: None,
            seed: 0,
            sync_delay: Duration::ZERO,
            #[cfg(feature = "bench-baseline")]
            at_least_once: false,
        }
    }

    /// Checks the configuration; every problem is a [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.peers.contains_key(&self.id) {
            return Err(ConfigError::SelfAsPeer { id: self.id });
        }
        if self.peers.len() > PEERS_MAX {
            return Err(ConfigError::TooManyPeers {
                count: self.peers.len(),
            });
        }
        if self.sync_delay > SYNC_DELAY_MAX {
            return Err(ConfigError::SyncDelayTooLong {
                delay: self.sync_delay,
            });
        }
        if let RoleConfig::Coordinator { participants } = &self.role {
            if participants.is_empty() {
                return Err(ConfigError::NoParticipants);
            }
            let distinct: BTreeSet<_> = participants.iter().collect();
            if distinct.len() != participants.len() {
                return Err(ConfigError::DuplicateParticipant);
            }
        }
        for needed in self.role.required_peers() {
            if !self.peers.contains_key(&needed) {
                return Err(ConfigError::MissingPeer {
                    role: self.role.kind(),
                    peer: needed,
                });
            }
        }
        Ok(())
    }
}

/// A configuration that cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The node lists itself as a peer.
    #[error("node {id} lists itself as a peer")]
    SelfAsPeer {
        /// The node's id.
        id: NodeId,
    },
    /// More than [`PEERS_MAX`] peers.
    #[error("{count} peers, above the limit of {PEERS_MAX}")]
    TooManyPeers {
        /// Peers configured.
        count: usize,
    },
    /// A node the role talks to has no address.
    #[error("the {role} needs node {peer} as a peer (give its address)")]
    MissingPeer {
        /// The role.
        role: RoleKind,
        /// The node without an address.
        peer: NodeId,
    },
    /// A coordinator without participants.
    #[error("a coordinator needs at least one participant")]
    NoParticipants,
    /// A participant listed twice.
    #[error("a participant is listed twice")]
    DuplicateParticipant,
    /// A group-commit delay above [`SYNC_DELAY_MAX`].
    #[error("a sync delay of {delay:?} is above the limit of {SYNC_DELAY_MAX:?}")]
    SyncDelayTooLong {
        /// The delay configured.
        delay: Duration,
    },
}

/// Why a node did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error("bad configuration: {0}")]
    Config(#[from] ConfigError),
    /// The data directory cannot be created or opened.
    #[error("data directory {path:?}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The log does not open or recover.
    #[error("write-ahead log: {0}")]
    Wal(#[from] WalError),
    /// The recovered records do not rebuild an ack-retry core.
    #[error("recovery: {0}")]
    RecoverAckRetry(#[from] ack_retry::RecoverError),
    /// The recovered records do not rebuild a two-phase-commit core.
    #[error("recovery: {0}")]
    RecoverTwoPhaseCommit(#[from] tpc::Error),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The trace file cannot be opened.
    #[error("trace file {path:?}: {source}")]
    Trace {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] io::Error),
}

/// Why a running node stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The log failed (an I/O error poisons it): restart the node to recover.
    #[error("write-ahead log failed: {0}")]
    Wal(#[from] WalError),
    /// A node thread panicked (a bug).
    #[error("a node thread panicked")]
    Panicked,
}

/// What a node tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// From an ack-retry sender: started, accepted, delivered, outcome unknown.
    Sender(SenderEvent),
    /// From an ack-retry receiver: applied.
    Receiver(ReceiverEvent),
    /// From a two-phase-commit node: outcome, decided, committed, aborted, busy.
    TwoPhaseCommit(tpc::Event),
}

/// Why a submission was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The sender refused it (window full and no incarnation yet are backpressure:
    /// see [`SubmitError::is_busy`]).
    #[error("sender: {0}")]
    Sender(#[from] SenderError),
    /// The client refused it.
    #[error("client: {0}")]
    Client(#[from] tpc::SubmitError),
    /// This node's role takes no such submission.
    #[error("a {role} does not take this submission")]
    WrongRole {
        /// The node's role.
        role: RoleKind,
    },
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

impl SubmitError {
    /// Backpressure: retry the same submission later.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            SubmitError::Sender(SenderError::WindowFull { .. } | SenderError::NoIncarnation)
                | SubmitError::Client(tpc::SubmitError::WindowFull { .. })
        )
    }
}

/// The role-specific part of a [`Status`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleStatus {
    /// An ack-retry sender.
    Sender {
        /// Its incarnation, once granted.
        incarnation: Option<u64>,
        /// The seq of its next submission.
        next_seq: Seq,
        /// Messages not yet acknowledged.
        in_flight: usize,
        /// Its counters.
        stats: SenderStats,
    },
    /// An ack-retry receiver.
    Receiver {
        /// Its counters.
        stats: ReceiverStats,
        /// The sum of all balances (conserved by transfers).
        bank_total: i128,
    },
    /// A two-phase-commit coordinator.
    Coordinator {
        /// Transactions it holds.
        txns: usize,
    },
    /// A two-phase-commit participant.
    Participant {
        /// Transactions it holds.
        txns: usize,
        /// The sum of its balances.
        bank_total: i128,
    },
    /// A two-phase-commit client.
    Client {
        /// The seq of its next transaction.
        next_seq: u64,
        /// Transactions whose outcome it has not learned.
        pending: usize,
    },
}

/// A node's state, for progress lines and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The role's own numbers.
    pub role: RoleStatus,
    /// The last appended log position.
    pub lsn_last: Lsn,
    /// The log is durable up to here.
    pub lsn_durable: Lsn,
    /// `fdatasync`s of the log since the node started.
    pub syncs: u64,
    /// Records appended since the node started.
    pub records: u64,
    /// Releases waiting for a sync.
    pub releases_waiting: usize,
    /// Outcomes dropped because the application did not take them.
    pub outcomes_dropped: u64,
    /// The node's Lamport clock.
    pub lamport: Lamport,
    /// The transport's counters.
    pub transport: TransportCounts,
    /// Why the last refused inbound connections were closed (oldest first).
    pub refusals: Vec<String>,
}

/// An application command, answered through its reply channel.
enum Command {
    Transfer(Transfer, SyncSender<Result<Seq, SubmitError>>),
    Transaction(Vec<Leg>, SyncSender<Result<TxnId, SubmitError>>),
    Status(SyncSender<Status>),
}

/// What the core thread waits for.
enum Input<M> {
    Message {
        from: NodeId,
        stamp: Lamport,
        msg: M,
    },
    Command(Command),
    Durable(Durable),
    SyncFailed(WalError),
    Stop,
}

/// A core the runtime can drive: the three roles' cores, with their start-up and
/// their application commands.
trait Driven: Core + Send + 'static
where
    Self::Msg: Send,
    Self::Event: Send,
{
    /// Builds the core from its recovered records (none: a new node).
    fn build(
        id: NodeId,
        role: &RoleConfig,
        now: Time,
        records: Vec<Self::Record>,
        nonce: u64,
    ) -> Result<Self, StartError>;
    fn outcome(event: Self::Event) -> Outcome;
    fn role_status(&self) -> RoleStatus;
    fn submit_transfer(&mut self, _now: Time, _transfer: Transfer) -> Result<Seq, SubmitError> {
        Err(SubmitError::WrongRole {
            role: self.role_kind(),
        })
    }
    fn submit_transaction(&mut self, _now: Time, _legs: Vec<Leg>) -> Result<TxnId, SubmitError> {
        Err(SubmitError::WrongRole {
            role: self.role_kind(),
        })
    }
    fn role_kind(&self) -> RoleKind;
    /// Benchmark-only: see [`NodeConfig::at_least_once`].
    #[cfg(feature = "bench-baseline")]
    fn set_at_least_once(&mut self, _on: bool) {}
}

impl Driven for Sender {
    fn build(
        id: NodeId,
        role: &RoleConfig,
        now: Time,
        records: Vec<ack_retry::SenderRecord>,
        nonce: u64,
    ) -> Result<Sender, StartError> {
        let RoleConfig::Sender { receiver } = role else {
            unreachable!("dispatched by role")
        };
        Ok(Sender::recover(id, *receiver, now, nonce, records)?)
    }
    fn outcome(event: SenderEvent) -> Outcome {
        Outcome::Sender(event)
    }
    fn role_status(&self) -> RoleStatus {
        RoleStatus::Sender {
            incarnation: self.incarnation(),
            next_seq: self.next_seq(),
            in_flight: self.in_flight(),
            stats: self.stats(),
        }
    }
    fn submit_transfer(&mut self, now: Time, transfer: Transfer) -> Result<Seq, SubmitError> {
        Ok(self.submit(now, transfer)?)
    }
    fn role_kind(&self) -> RoleKind {
        RoleKind::Sender
    }
}

impl Driven for Receiver {
    fn build(
        id: NodeId,
        _role: &RoleConfig,
        now: Time,
        records: Vec<ack_retry::ReceiverRecord>,
        _nonce: u64,
    ) -> Result<Receiver, StartError> {
        Ok(Receiver::recover(id, now, records)?)
    }
    fn outcome(event: ReceiverEvent) -> Outcome {
        Outcome::Receiver(event)
    }
    fn role_status(&self) -> RoleStatus {
        RoleStatus::Receiver {
            stats: self.stats(),
            bank_total: self.bank().total(),
        }
    }
    fn role_kind(&self) -> RoleKind {
        RoleKind::Receiver
    }
    #[cfg(feature = "bench-baseline")]
    fn set_at_least_once(&mut self, on: bool) {
        Receiver::set_at_least_once(self, on);
    }
}

impl Driven for tpc::Node {
    fn build(
        id: NodeId,
        role: &RoleConfig,
        now: Time,
        records: Vec<tpc::NodeRecord>,
        _nonce: u64,
    ) -> Result<tpc::Node, StartError> {
        let role = match role {
            RoleConfig::Coordinator { participants } => tpc::Role::Coordinator {
                participants: participants.clone(),
            },
            RoleConfig::Participant { coordinator } => tpc::Role::Participant {
                coordinator: *coordinator,
                policy: VotePolicy::Yes,
            },
            RoleConfig::Client { coordinator } => tpc::Role::Client {
                coordinator: *coordinator,
            },
            RoleConfig::Sender { .. } | RoleConfig::Receiver => {
                unreachable!("dispatched by role")
            }
        };
        if records.is_empty() {
            return Ok(tpc::Node::new(id, &role));
        }
        Ok(tpc::Node::recover(id, &role, now, records)?)
    }
    fn outcome(event: tpc::Event) -> Outcome {
        Outcome::TwoPhaseCommit(event)
    }
    fn role_status(&self) -> RoleStatus {
        match self {
            tpc::Node::Client(c) => RoleStatus::Client {
                next_seq: c.next_seq(),
                pending: c.pending().len(),
            },
            tpc::Node::Coordinator(c) => RoleStatus::Coordinator {
                txns: c.txn_count(),
            },
            tpc::Node::Participant(p) => RoleStatus::Participant {
                txns: p.txn_count(),
                bank_total: p.bank().total(),
            },
        }
    }
    fn submit_transaction(&mut self, now: Time, legs: Vec<Leg>) -> Result<TxnId, SubmitError> {
        match self.as_client_mut() {
            Some(client) => Ok(client.submit(now, legs)?),
            None => Err(SubmitError::WrongRole {
                role: self.role_kind(),
            }),
        }
    }
    fn role_kind(&self) -> RoleKind {
        match self {
            tpc::Node::Client(_) => RoleKind::Client,
            tpc::Node::Coordinator(_) => RoleKind::Coordinator,
            tpc::Node::Participant(_) => RoleKind::Participant,
        }
    }
}

/// A handle to a running node, for the application: submit work, ask for status.
/// Cheap to clone; every call is answered by the core thread.
#[derive(Clone)]
pub struct Handle {
    role: RoleKind,
    send: Arc<dyn Fn(Command) -> bool + Send + Sync>,
}

impl Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handle({})", self.role)
    }
}

impl Handle {
    fn call<T>(&self, make: impl FnOnce(SyncSender<T>) -> Command) -> Option<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        if !(self.send)(make(tx)) {
            return None;
        }
        rx.recv().ok()
    }

    /// The node's role.
    pub fn role(&self) -> RoleKind {
        self.role
    }

    /// Submits a transfer at an ack-retry sender; returns its seq. It is durable
    /// in the outbox when [`SenderEvent::Accepted`] arrives, applied at the
    /// receiver exactly once, and [`SenderEvent::Delivered`] says so.
    pub fn submit_transfer(&self, transfer: Transfer) -> Result<Seq, SubmitError> {
        self.call(|reply| Command::Transfer(transfer, reply))
            .unwrap_or(Err(SubmitError::Stopped))
    }

    /// Submits a transaction at a two-phase-commit client; returns its id. Its
    /// outcome arrives as [`tpc::Event::Outcome`].
    pub fn submit_transaction(&self, legs: Vec<Leg>) -> Result<TxnId, SubmitError> {
        self.call(|reply| Command::Transaction(legs, reply))
            .unwrap_or(Err(SubmitError::Stopped))
    }

    /// The node's current state, or `None` once it stopped.
    pub fn status(&self) -> Option<Status> {
        self.call(Command::Status)
    }
}

/// A running node. Dropping it shuts it down (see [`Node::shutdown`]).
pub struct Node {
    id: NodeId,
    role: RoleKind,
    incarnation: u64,
    local_addr: SocketAddr,
    handle: Handle,
    stop_input: Box<dyn Fn() -> bool + Send + Sync>,
    outcomes: Option<Rx<Outcome>>,
    running: Option<Running>,
}

/// The threads of a running node, joined at shutdown.
struct Running {
    core: JoinHandle<Result<(), NodeError>>,
    stop: Arc<AtomicBool>,
    listener: transport::Listener,
}

impl Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({} {} at {})", self.role, self.id, self.local_addr)
    }
}

impl Node {
    /// Recovers the node's log (creating it if new), binds its listen address and
    /// starts its threads. When this returns, the node accepts connections.
    pub fn start(config: NodeConfig) -> Result<Node, StartError> {
        config.validate()?;
        match config.role {
            RoleConfig::Sender { .. } => start_core::<Sender>(config),
            RoleConfig::Receiver => start_core::<Receiver>(config),
            RoleConfig::Coordinator { .. }
            | RoleConfig::Participant { .. }
            | RoleConfig::Client { .. } => start_core::<tpc::Node>(config),
        }
    }

    /// A handle for the application.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The outcomes, once: the application reads them from this channel.
    pub fn take_outcomes(&mut self) -> Option<Rx<Outcome>> {
        self.outcomes.take()
    }

    /// The address the node listens on (the real port if it was given port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// This life of the node: the start's wall-clock time in microseconds.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// True once the core thread has ended (shut down, or failed: see
    /// [`Node::shutdown`] for the error).
    pub fn is_finished(&self) -> bool {
        self.running.as_ref().is_none_or(|r| r.core.is_finished())
    }

    /// Stops the node cleanly: the core thread carries out what it has, syncs the
    /// log, hands out the last outcomes and messages, then the transport closes
    /// its connections. Returns the error that stopped the node, if one did.
    pub fn shutdown(mut self) -> Result<(), NodeError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), NodeError> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        let _ = (self.stop_input)();
        let result = running.core.join().unwrap_or(Err(NodeError::Panicked));
        running.stop.store(true, Ordering::Relaxed);
        running.listener.join();
        result
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!(node = self.id, %error, "node stopped with an error");
        }
    }
}

/// A submission's result as a trace field: `{"Ok": n}` or `{"Err": "…"}`.
fn submit_result<T: serde::Serialize>(result: &Result<T, SubmitError>) -> serde_json::Value {
    match result {
        Ok(value) => json!({ "Ok": value }),
        Err(error) => json!({ "Err": error.to_string() }),
    }
}

fn node_incarnation() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn start_core<C>(config: NodeConfig) -> Result<Node, StartError>
where
    C: Driven,
    C::Msg: Send,
    C::Event: Send,
{
    let started = Instant::now();
    let role = config.role.kind();
    let id = config.id;
    let incarnation = node_incarnation();

    let dir = wal_dir(&config.data_dir);
    // No log directory at all: a first start, or a disk lost since the last
    // life (the trace, kept elsewhere, tells which: see `disk_lost` below).
    let no_log_dir = !dir.exists();
    let disk = FileDisk::open(&dir).map_err(|source| StartError::DataDir {
        path: dir.clone(),
        source,
    })?;
    let (wal, recovered) = Wal::open(disk)?;
    if let Some(cut) = &recovered.truncated {
        tracing::warn!(node = id, segment = %cut.segment, offset = cut.offset, len = cut.len, reason = %cut.reason, "cut a torn tail off the log");
    }
    let records: Vec<C::Record> = recovered.decode()?;
    let record_count = records.len();
    let nonce: u64 = rand::rng().random();
    #[allow(unused_mut)] // mutated only with the feature `bench-baseline`
    let mut core = C::build(id, &config.role, Time::ZERO, records, nonce)?;
    #[cfg(feature = "bench-baseline")]
    core.set_at_least_once(config.at_least_once);

    let listener = TcpListener::bind(config.listen).map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let mut tracer = match &config.trace {
        Some(path) => {
            Tracer::to_file(id, incarnation, path).map_err(|source| StartError::Trace {
                path: path.clone(),
                source,
            })?
        }
        None => Tracer::clock_only(id, incarnation),
    };
    if no_log_dir && tracer.clock() > 0 {
        // Earlier lives are traced but their log is gone (`eo run
        // --wipe-disk-every` moved it away): the model's disk loss.
        tracer.local("disk_lost", json!({}));
    }
    tracer.local(
        "start",
        json!({"role": role.name(), "records": record_count, "lsn": wal.lsn_last().0, "listen": local_addr.to_string()}),
    );
    tracer.flush();
    tracing::info!(node = id, %role, records = record_count, %local_addr, incarnation, "node started");

    let handshake = Arc::new(HandshakeConfig {
        local: Identity {
            protocol: role.protocol(),
            cluster_id: config.cluster_id,
            node_id: id,
            incarnation,
        },
        peers: config.peers.keys().copied().collect(),
        key: config.cluster_key.clone(),
    });
    debug_assert_eq!(
        handshake.local.protocol,
        match role {
            RoleKind::Sender | RoleKind::Receiver => Protocol::AckRetry,
            _ => Protocol::TwoPhaseCommit,
        }
    );
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(TransportStats::default());
    let (input_tx, input_rx) = mpsc::sync_channel::<Input<C::Msg>>(INPUT_QUEUE_LEN);
    let (outcome_tx, outcome_rx) = mpsc::sync_channel(OUTCOME_QUEUE_LEN);
    let group = Arc::new(GroupCommit::new(wal));

    let outbound = Outbound::start(
        Arc::clone(&handshake),
        &config.peers,
        config.seed,
        Arc::clone(&stop),
        Arc::clone(&stats),
    )
    .map_err(StartError::Thread)?;
    let (sync_tx, sync_rx) = mpsc::channel::<Lsn>();
    let syncer = spawn_syncer(
        id,
        Arc::clone(&group),
        config.sync_delay,
        sync_rx,
        input_tx.clone(),
    )
    .map_err(StartError::Thread)?;

    let deliver_tx = input_tx.clone();
    let deliver: transport::Deliver<C::Msg> = Arc::new(move |from, stamp, msg| {
        deliver_tx.send(Input::Message { from, stamp, msg }).is_ok()
    });
    let listener = transport::spawn_listener(
        listener,
        Arc::clone(&handshake),
        deliver,
        Arc::clone(&stop),
        Arc::clone(&stats),
    )
    .map_err(StartError::Thread)?;

    let durable = group.with_wal(|wal| wal.durable_proof())?;
    let driver = Driver {
        id,
        core,
        group,
        pending: VecDeque::new(),
        durable,
        sync_tx,
        tracer,
        outbound: Some(outbound),
        outcomes: outcome_tx,
        started,
        records: 0,
        outcomes_dropped: 0,
        stats,
    };
    let core = thread::Builder::new()
        .name(format!("eo-core-{id}"))
        .spawn(move || {
            let result = driver.run(input_rx);
            let _ = syncer.join();
            result
        })
        .map_err(StartError::Thread)?;

    let command_tx = input_tx.clone();
    let handle = Handle {
        role,
        send: Arc::new(move |command| command_tx.send(Input::Command(command)).is_ok()),
    };
    let stop_tx = input_tx;
    Ok(Node {
        id,
        role,
        incarnation,
        local_addr,
        handle,
        stop_input: Box::new(move || stop_tx.send(Input::Stop).is_ok()),
        outcomes: Some(outcome_rx),
        running: Some(Running {
            core,
            stop,
            listener,
        }),
    })
}

/// The group-commit thread: syncs up to the last position it was told about and
/// hands the proof to the core thread. With a `delay`, it first gathers the
/// positions asked for during that long. Ends when the core thread drops its sender.
fn spawn_syncer<M: Send + 'static>(
    id: NodeId,
    group: Arc<GroupCommit<FileDisk>>,
    delay: Duration,
    targets: Rx<Lsn>,
    input: SyncSender<Input<M>>,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(format!("eo-sync-{id}"))
        .spawn(move || {
            while let Ok(mut target) = targets.recv() {
                // The group-commit delay: let more records join this sync. If the
                // core thread stops meanwhile, what it asked for is still synced.
                if !delay.is_zero() {
                    let deadline = Instant::now() + delay;
                    loop {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        match targets.recv_timeout(left) {
                            Ok(later) => target = target.max(later),
                            Err(_) => break,
                        }
                    }
                }
                // Everything asked for meanwhile is covered by this one sync.
                while let Ok(later) = targets.try_recv() {
                    target = target.max(later);
                }
                let result = group
                    .wait_durable(target)
                    .and_then(|_| group.with_wal(|wal| wal.durable_proof()));
                let input_msg = match result {
                    Ok(proof) => Input::Durable(proof),
                    Err(error) => Input::SyncFailed(error),
                };
                let failed = matches!(input_msg, Input::SyncFailed(_));
                if input.send(input_msg).is_err() || failed {
                    return;
                }
            }
        })
}

/// The core thread's state.
struct Driver<C: Core> {
    id: NodeId,
    core: C,
    group: Arc<GroupCommit<FileDisk>>,
    /// Releases waiting for a proof, in persist order (their positions only grow).
    pending: VecDeque<Release<C::Msg, C::Event>>,
    /// The latest proof received.
    durable: Durable,
    sync_tx: mpsc::Sender<Lsn>,
    tracer: Tracer,
    outbound: Option<Outbound>,
    outcomes: SyncSender<Outcome>,
    started: Instant,
    records: u64,
    outcomes_dropped: u64,
    stats: Arc<TransportStats>,
}

impl<C> Driver<C>
where
    C: Driven,
    C::Msg: Send,
    C::Event: Send,
{
    fn now(&self) -> Time {
        Time(u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn run(mut self, inputs: Rx<Input<C::Msg>>) -> Result<(), NodeError> {
        // A recovered core may have messages to re-send: carry out its first Ready.
        self.step()?;
        loop {
            let now = self.now();
            let first = match self.core.poll_timeout() {
                Some(due) if due <= now => None,
                Some(due) => match inputs.recv_timeout(Duration::from_micros(due.0 - now.0)) {
                    Ok(input) => Some(input),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => Some(Input::Stop),
                },
                None => Some(inputs.recv().unwrap_or(Input::Stop)),
            };
            let mut stopping = false;
            if let Some(input) = first {
                stopping |= self.handle(input)?;
                for _ in 1..INPUT_BATCH_MAX {
                    match inputs.try_recv() {
                        Ok(input) => stopping |= self.handle(input)?,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            stopping = true;
                            break;
                        }
                    }
                }
            }
            let now = self.now();
            if self.core.poll_timeout().is_some_and(|due| due <= now) {
                self.core.handle_timeout(now);
                self.tracer.local("timeout", json!({}));
            }
            self.step()?;
            if stopping {
                return self.finish();
            }
        }
    }

    /// Feeds one input to the core; returns true for `Stop`.
    fn handle(&mut self, input: Input<C::Msg>) -> Result<bool, NodeError> {
        match input {
            Input::Message { from, stamp, msg } => {
                self.tracer.recv(from, stamp, &msg);
                let now = self.now();
                if let Err(error) = self.core.handle_message(now, from, msg) {
                    tracing::warn!(node = self.id, peer = from, %error, "message refused by the core");
                }
            }
            Input::Command(command) => self.command(command),
            Input::Durable(proof) => {
                self.note_proof(proof);
                self.open_pending();
            }
            Input::SyncFailed(error) => {
                tracing::error!(node = self.id, %error, "log sync failed; the node stops");
                return Err(error.into());
            }
            Input::Stop => return Ok(true),
        }
        Ok(false)
    }

    fn command(&mut self, command: Command) {
        let now = self.now();
        match command {
            Command::Transfer(transfer, reply) => {
                let result = self.core.submit_transfer(now, transfer);
                self.tracer.local_with(
                    "submit",
                    || json!({"transfer": transfer, "result": submit_result(&result)}),
                );
                let _ = reply.send(result);
            }
            Command::Transaction(legs, reply) => {
                let result = self.core.submit_transaction(now, legs.clone());
                self.tracer.local_with(
                    "submit",
                    || json!({"legs": legs, "result": submit_result(&result)}),
                );
                let _ = reply.send(result);
            }
            Command::Status(reply) => {
                let (lsn_last, lsn_durable, syncs) = self
                    .group
                    .with_wal(|wal| (wal.lsn_last(), wal.lsn_durable(), wal.sync_count()))
                    .unwrap_or((Lsn::ZERO, Lsn::ZERO, 0));
                let _ = reply.send(Status {
                    role: self.core.role_status(),
                    lsn_last,
                    lsn_durable,
                    syncs,
                    records: self.records,
                    releases_waiting: self.pending.len(),
                    outcomes_dropped: self.outcomes_dropped,
                    lamport: self.tracer.clock(),
                    transport: self.stats.snapshot(),
                    refusals: self.stats.recent_refusals(),
                });
            }
        }
    }

    /// Keeps the proof of the furthest durable position: a proof from the sync
    /// thread may arrive after a later one was taken in `step`.
    fn note_proof(&mut self, proof: Durable) {
        if proof.log() != self.durable.log() || proof.lsn() >= self.durable.lsn() {
            if proof.lsn() > self.durable.lsn() {
                self.tracer.durable(proof.lsn().0);
            }
            self.durable = proof;
        }
    }

    /// Carries out the core's `Ready`: append its records (no sync), queue the
    /// release, ask the sync thread for a sync if records were appended, and open
    /// whatever the last proof already covers.
    fn step(&mut self) -> Result<(), NodeError> {
        let ready = self.core.poll_ready();
        if ready.is_empty() {
            return Ok(());
        }
        let appended = ready.records().len() as u64;
        let records = ready.records().to_vec();
        let (release, proof) = self
            .group
            .with_wal(|wal| ready.persist(wal).map(|r| (r, wal.durable_proof())))??;
        self.records += appended;
        let needs = release.needs();
        self.tracer.append(needs.0, &records);
        self.pending.push_back(release);
        self.note_proof(proof);
        if needs > proof.lsn() {
            // The sync thread is alive as long as the node runs; if it died, its
            // failure is already queued as an input.
            let _ = self.sync_tx.send(needs);
        }
        self.open_pending();
        Ok(())
    }

    /// Opens every waiting release the last proof covers, in order, and hands out
    /// their messages and events.
    fn open_pending(&mut self) {
        let mut messages = Vec::new();
        while let Some(release) = self.pending.pop_front() {
            match release.open(self.durable) {
                Ok(released) => {
                    for envelope in released.messages {
                        let stamp = self.tracer.send(envelope.to, &envelope.msg);
                        match transport::encode_message(stamp, &envelope.msg) {
                            Ok(frame) => messages.push((envelope.to, frame)),
                            Err(error) => {
                                tracing::error!(node = self.id, peer = envelope.to, %error, "message not sent")
                            }
                        }
                    }
                    for event in released.events {
                        let outcome = C::outcome(event);
                        self.tracer.outcome(&outcome);
                        if self.outcomes.try_send(outcome).is_err() {
                            self.outcomes_dropped += 1;
                        }
                    }
                }
                Err(refused) => {
                    // Positions only grow along the queue: nothing behind opens either.
                    self.pending.push_front(refused.release);
                    break;
                }
            }
        }
        // The trace's lines for these sends are on file before the sends leave.
        self.tracer.flush();
        if let Some(outbound) = &self.outbound {
            for (to, frame) in messages {
                outbound.send(to, frame);
            }
        }
    }

    /// Clean stop: sync, hand out what the sync opens, close the transport.
    fn finish(mut self) -> Result<(), NodeError> {
        let synced = self
            .group
            .sync()
            .and_then(|_| self.group.with_wal(|wal| wal.durable_proof()));
        let result = match synced {
            Ok(proof) => {
                self.note_proof(proof);
                self.open_pending();
                Ok(())
            }
            Err(error) => Err(NodeError::Wal(error)),
        };
        self.tracer.local("stop", json!({}));
        self.tracer.flush();
        if let Some(outbound) = self.outbound.take() {
            outbound.close();
        }
        tracing::info!(node = self.id, "node stopped");
        result
    }
}
