//! # Ack-retry with receiver-side deduplication
//!
//! S senders each deliver M messages to one receiver over a network that loses,
//! reorders and (in one configuration) duplicates messages, while any actor may
//! crash — losing its volatile state and keeping its storage — and recover.
//!
//! - The [`sender`] keeps a durable outbox and retransmits until acknowledged:
//!   *at-least-once delivery*.
//! - The [`receiver`] deduplicates by message id and saves the effect (a ledger
//!   entry) together with the dedup record in one save: *idempotent,
//!   transactional processing*. Duplicates are acknowledged again.
//!
//! Together they give *exactly-once effect*: every submitted message is applied
//! once, never twice, never lost. Each [`Variant`] other than `correct` breaks one
//! mechanism and names the property that catches it.
//!
//! Properties (see [`AckRetryCfg::into_model`]):
//! - `exactly-once` (always): no id appears twice in the receiver's durable ledger.
//! - `no-loss` (always): a submitted message its sender no longer retries is in
//!   the receiver's durable ledger — acknowledged implies durable.
//! - `no-phantom` (always): every applied message was durably submitted.
//! - `all-delivered` (sometimes): every message applied — the model does something.
//! - `eventually-delivered` (progress): from every reachable state, a state at
//!   rest (no timer armed, nothing but dead messages in flight, no crashed actor
//!   that will recover) in which every
//!   durably submitted message is applied can be reached. On the finite state
//!   graph this is "eventually settled and delivered" under strong fairness of
//!   every transition: a behaviour that loses every retransmission forever is
//!   unfair and not a counterexample, but a state from which no behaviour at all
//!   can finish — a livelock such as `no-reack`'s, or a dead end such as
//!   `no-retry`'s — is. Checked on every network, the duplicating one included
//!   (loss can empty it).

pub mod receiver;
pub mod sender;

use crate::catalog::{
    bounded, ConfigError, ConfigInfo, ConfigScope, FlagInfo, ModelEntry, ModelInfo, PropertyInfo,
    Settings, VariantInfo,
};
use crate::check::{run, Explain, ProgressProperty, Report, RunLabel, RunOptions};
use crate::system::{live_state, storage, History, LogMode, System, SystemState};
use receiver::{Receiver, ReceiverState, ReceiverStorage};
use sender::{Sender, SenderState, SenderStorage};
use stateright::actor::{Actor, ActorModel, Id, LossyNetwork, Network, Out};
use stateright::Expectation;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

/// A sender's message number.
pub type Seq = u8;

/// Senders, messages and crashes beyond these are too large to check exhaustively.
pub const SENDERS_MAX: u32 = 4;
pub const MESSAGES_MAX: u32 = 4;
pub const MESSAGES_TOTAL_MAX: u32 = 8;
pub const CRASHES_MAX: u32 = 3;

/// A set of sequence numbers below 8, printed as `{0, 1}`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seqs(u8);

impl Seqs {
    pub const EMPTY: Seqs = Seqs(0);

    /// `{0, …, n-1}`.
    pub fn first(n: Seq) -> Seqs {
        assert!(n <= 8);
        Seqs(((1u16 << n) - 1) as u8)
    }
    pub fn single(seq: Seq) -> Seqs {
        Seqs(1 << seq)
    }
    pub fn contains(self, seq: Seq) -> bool {
        self.0 & (1 << seq) != 0
    }
    pub fn insert(&mut self, seq: Seq) {
        self.0 |= 1 << seq;
    }
    pub fn remove(&mut self, seq: Seq) {
        self.0 &= !(1 << seq);
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn highest(self) -> Option<Seq> {
        (self.0 != 0).then(|| 7 - self.0.leading_zeros() as Seq)
    }
    pub fn iter(self) -> impl Iterator<Item = Seq> {
        (0..8).filter(move |s| self.contains(*s))
    }
}

impl fmt::Debug for Seqs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A message's identity: its sender and the sender's number for it. Printed as
/// `s0#1`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgId {
    pub sender: u8,
    pub seq: Seq,
}

impl fmt::Debug for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}#{}", self.sender, self.seq)
    }
}

/// Wire messages. The sender of a `Data` is the envelope's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg {
    Data(Seq),
    Ack(Seq),
}

/// Timers. `Retry` is the sender's retransmission timer; the others are the
/// second step of a split bug variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    Retry,
    /// `send-before-persist` (sender) and `ack-before-persist` (receiver): the
    /// save that should have come first.
    Persist,
    /// `non-atomic-apply`: the receiver's dedup save after its effect save.
    RecordDedup,
}

/// The correct protocol and its bug variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Correct,
    /// The receiver applies every delivery; a retransmission is applied again.
    NoDedup,
    /// The dedup record lives in volatile state while the ledger is durable: after
    /// a receiver crash a retransmitted message is applied a second time.
    VolatileDedup,
    /// The effect and the dedup record are saved in two steps (the second is a
    /// `RecordDedup` timer, the ack leaves with it): a crash between them leaves
    /// the effect without its dedup record, and the retransmission applies again.
    NonAtomicApply,
    /// The receiver acknowledges on delivery and saves the effect in a later step
    /// (a `Persist` timer): the sender drops an acknowledged message that the
    /// receiver has not made durable, and a crash then loses it.
    AckBeforePersist,
    /// The sender's outbox is volatile (only the count submitted is saved): a
    /// sender crash forgets unacknowledged messages, and nobody retransmits them.
    VolatileOutbox,
    /// No retransmission timer: one lost message is lost for good.
    NoRetry,
    /// The sender sends on submission and saves the submission in a later step (a
    /// `Persist` timer): the receiver can apply a message its sender has no
    /// durable record of having submitted — a dirty write that escaped. If the
    /// sender crashes before saving, its application was never told the message
    /// was accepted and is free to abandon it, yet its effect exists.
    SendBeforePersist,
    /// Dedup by a per-sender high-water mark: a message overtaken by a later one
    /// counts as a duplicate, is silently dropped, and is acknowledged — so its
    /// sender stops retrying a message that was never applied.
    HighWaterMarkDedup,
    /// A duplicate is dropped without being acknowledged again. Every safety
    /// property holds — nothing is applied twice or lost — but once the first
    /// acknowledgement of a message is lost its sender retransmits forever and
    /// the system never settles: only `progress` sees it.
    NoReack,
    // --- Syncing-log variants (issue 9, "a log that syncs"; see docs/system.md).
    // Each is a flag of the System, not protocol code, and is unsafe only
    // under `--log sync` (their default).
    /// The receiver's acknowledgement leaves at once instead of waiting for
    /// the sync of the application it confirms: the sender stops retrying a
    /// message whose application a receiver crash can still lose.
    AckBeforeSync,
    /// The receiver's one save is written as two appends, the effect and then
    /// the dedup record: a crash that keeps only the first leaves the effect
    /// without its dedup record, and the retransmission applies again.
    TornApply,
}

impl Variant {
    pub const ALL: [Variant; 12] = [
        Variant::Correct,
        Variant::NoDedup,
        Variant::VolatileDedup,
        Variant::NonAtomicApply,
        Variant::AckBeforePersist,
        Variant::VolatileOutbox,
        Variant::NoRetry,
        Variant::SendBeforePersist,
        Variant::HighWaterMarkDedup,
        Variant::NoReack,
        Variant::AckBeforeSync,
        Variant::TornApply,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Correct => "correct",
            Variant::NoDedup => "no-dedup",
            Variant::VolatileDedup => "volatile-dedup",
            Variant::NonAtomicApply => "non-atomic-apply",
            Variant::AckBeforePersist => "ack-before-persist",
            Variant::VolatileOutbox => "volatile-outbox",
            Variant::NoRetry => "no-retry",
            Variant::SendBeforePersist => "send-before-persist",
            Variant::HighWaterMarkDedup => "high-water-mark-dedup",
            Variant::NoReack => "no-reack",
            Variant::AckBeforeSync => "ack-before-sync",
            Variant::TornApply => "torn-apply",
        }
    }

    /// The property the checker must find violated.
    pub fn expected_violation(self) -> Option<&'static str> {
        match self {
            Variant::Correct => None,
            Variant::NoDedup
            | Variant::VolatileDedup
            | Variant::NonAtomicApply
            | Variant::TornApply => Some("exactly-once"),
            Variant::AckBeforePersist
            | Variant::VolatileOutbox
            | Variant::HighWaterMarkDedup
            | Variant::AckBeforeSync => Some("no-loss"),
            Variant::NoRetry | Variant::NoReack => Some("eventually-delivered"),
            Variant::SendBeforePersist => Some("no-phantom"),
        }
    }

    pub fn about(self) -> &'static str {
        match self {
            Variant::Correct => {
                "durable outbox, retransmission, dedup saved atomically with the effect"
            }
            Variant::NoDedup => "the receiver applies every delivery",
            Variant::VolatileDedup => "the dedup record is volatile, the ledger durable",
            Variant::NonAtomicApply => "effect and dedup record saved in two steps",
            Variant::AckBeforePersist => "the receiver acknowledges before it persists",
            Variant::VolatileOutbox => "the sender's outbox is not durable",
            Variant::NoRetry => "no retransmission timer",
            Variant::SendBeforePersist => "the sender sends before its submission is durable",
            Variant::HighWaterMarkDedup => {
                "dedup by a per-sender high-water mark drops a reordered message"
            }
            Variant::NoReack => "a duplicate is not acknowledged again; its sender retries forever",
            Variant::AckBeforeSync => {
                "the receiver's ack leaves before its application is synced (--log sync)"
            }
            Variant::TornApply => {
                "effect and dedup record are two appends; a crash may keep the first only (--log sync)"
            }
        }
    }

    pub fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The log a variant is checked with unless `--log` says otherwise: the
    /// syncing-log variants need `sync`.
    pub fn default_log(self) -> LogMode {
        match self {
            Variant::AckBeforeSync | Variant::TornApply => LogMode::Sync,
            _ => LogMode::Atomic,
        }
    }
}

/// How the network treats messages. All are lossy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetworkKind {
    /// Any message in flight may be delivered next; delivery consumes it.
    /// Duplicates come only from retransmission.
    Unordered,
    /// Like `Unordered`, and a message may also be delivered any number of times.
    UnorderedDup,
    /// Per-link FIFO order.
    Ordered,
}

impl NetworkKind {
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::Unordered => "unordered",
            NetworkKind::UnorderedDup => "unordered-dup",
            NetworkKind::Ordered => "ordered",
        }
    }

    pub fn parse(name: &str) -> Result<NetworkKind, ConfigError> {
        [
            NetworkKind::Unordered,
            NetworkKind::UnorderedDup,
            NetworkKind::Ordered,
        ]
        .into_iter()
        .find(|n| n.name() == name)
        .ok_or_else(|| {
            ConfigError(format!(
                "unknown --network '{name}' (networks: unordered, unordered-dup, ordered)"
            ))
        })
    }
}

/// A configuration of the ack-retry model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AckRetryCfg {
    pub senders: u8,
    pub messages: Seq,
    pub crashes: u8,
    pub network: NetworkKind,
    pub variant: Variant,
    /// How a save becomes durable (`--log`).
    pub log: LogMode,
}

impl Default for AckRetryCfg {
    fn default() -> Self {
        AckRetryCfg {
            senders: 2,
            messages: 2,
            crashes: 1,
            network: NetworkKind::Unordered,
            variant: Variant::Correct,
            log: LogMode::Atomic,
        }
    }
}

/// Every actor of the model: a sender or the receiver.
#[derive(Clone, Debug)]
pub enum Node {
    Sender(Sender),
    Receiver(Receiver),
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum NodeState {
    Sender(SenderState),
    Receiver(ReceiverState),
}

impl fmt::Debug for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeState::Sender(s) => s.fmt(f),
            NodeState::Receiver(r) => r.fmt(f),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum NodeStorage {
    Sender(SenderStorage),
    Receiver(ReceiverStorage),
}

impl fmt::Debug for NodeStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeStorage::Sender(s) => s.fmt(f),
            NodeStorage::Receiver(r) => r.fmt(f),
        }
    }
}

impl Actor for Node {
    type Msg = Msg;
    type Timer = Timer;
    type State = NodeState;
    type Storage = NodeStorage;
    type Random = ();

    fn name(&self) -> String {
        match self {
            Node::Sender(_) => "sender".into(),
            Node::Receiver(_) => "receiver".into(),
        }
    }

    fn on_start(&self, _id: Id, storage: &Option<NodeStorage>, o: &mut Out<Self>) -> NodeState {
        match self {
            Node::Sender(s) => {
                let stored = match storage {
                    Some(NodeStorage::Sender(st)) => Some(st),
                    _ => None,
                };
                NodeState::Sender(s.on_start(stored, o))
            }
            Node::Receiver(r) => {
                let stored = match storage {
                    Some(NodeStorage::Receiver(st)) => Some(st),
                    _ => None,
                };
                NodeState::Receiver(r.on_start(stored))
            }
        }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<NodeState>, src: Id, msg: Msg, o: &mut Out<Self>) {
        let next = match (self, &**state) {
            (Node::Sender(s), NodeState::Sender(st)) => s.on_msg(st, msg, o).map(NodeState::Sender),
            (Node::Receiver(r), NodeState::Receiver(st)) => {
                r.on_msg(st, src, msg, o).map(NodeState::Receiver)
            }
            _ => None,
        };
        if let Some(next) = next {
            *state = Cow::Owned(next);
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<NodeState>, timer: &Timer, o: &mut Out<Self>) {
        let next = match (self, &**state) {
            (Node::Sender(s), NodeState::Sender(st)) => {
                s.on_timeout(st, *timer, o);
                None
            }
            (Node::Receiver(r), NodeState::Receiver(st)) => {
                r.on_timeout(st, *timer, o).map(NodeState::Receiver)
            }
            _ => None,
        };
        if let Some(next) = next {
            *state = Cow::Owned(next);
        }
    }
}

/// The checked system.
pub type AckRetry = System<Node, AckRetryCfg>;

/// `torn-apply`'s records: a receiver save that applies a message is written
/// as the effect (the new ledger with the old dedup record), then the whole
/// new value. Any other save is one record.
fn torn_apply_records(
    cfg: &AckRetryCfg,
    id: Id,
    before: Option<&NodeStorage>,
    saved: &NodeStorage,
) -> Vec<NodeStorage> {
    let NodeStorage::Receiver(after) = saved else {
        return vec![saved.clone()];
    };
    let old_dedup = match before {
        Some(NodeStorage::Receiver(old)) if old.ledger == after.ledger => {
            return vec![saved.clone()]
        }
        Some(NodeStorage::Receiver(old)) => old.dedup.clone(),
        _ => vec![Seqs::EMPTY; usize::from(cfg.senders)],
    };
    debug_assert_eq!(usize::from(id), cfg.receiver_index());
    let effect = NodeStorage::Receiver(ReceiverStorage {
        ledger: after.ledger.clone(),
        dedup: old_dedup,
    });
    vec![effect, saved.clone()]
}
type State = SystemState<Node>;

impl AckRetryCfg {
    /// The defaults a variant is checked with: the syncing-log variants run
    /// under `--log sync` with one message per sender (a syncing log
    /// multiplies the state space; see docs/system.md).
    pub fn defaults_for(variant: Variant) -> AckRetryCfg {
        let log = variant.default_log();
        AckRetryCfg {
            variant,
            log,
            messages: if log == LogMode::Sync { 1 } else { 2 },
            ..AckRetryCfg::default()
        }
    }

    fn receiver_index(&self) -> usize {
        usize::from(self.senders)
    }

    /// Builds the system: senders `0..S` (ids `0..S`), the receiver (id `S`), a
    /// lossy network of the configured kind, the crash budget and the properties.
    pub fn into_model(self) -> AckRetry {
        let receiver = Id::from(self.receiver_index());
        let mut names: Vec<String> = (0..self.senders).map(|i| format!("sender {i}")).collect();
        names.push("receiver".into());
        let network = match self.network {
            NetworkKind::Unordered => Network::new_unordered_nonduplicating([]),
            NetworkKind::UnorderedDup => Network::new_unordered_duplicating([]),
            NetworkKind::Ordered => Network::new_ordered([]),
        };
        let crashes = self.crashes;
        let actors = ActorModel::new(self.clone(), History::default())
            .actors((0..self.senders).map(|_| {
                Node::Sender(Sender {
                    receiver,
                    messages: self.messages,
                    variant: self.variant,
                })
            }))
            .actor(Node::Receiver(Receiver {
                senders: self.senders,
                variant: self.variant,
            }))
            .init_network(network)
            .lossy_network(LossyNetwork::Yes);
        let mut system = System::new(actors, names, crashes)
            .property(Expectation::Always, "exactly-once", |m, s| {
                ledger(m, s).windows(2).all(|w| w[0] != w[1])
            })
            .property(Expectation::Always, "no-loss", |m, s| {
                let ledger = ledger(m, s);
                (0..m.actors.cfg.senders).all(|sender| {
                    let (submitted, retrying) = sender_view(s, sender);
                    (0..submitted).all(|seq| {
                        retrying.contains(seq) || ledger.contains(&MsgId { sender, seq })
                    })
                })
            })
            .property(Expectation::Always, "no-phantom", |m, s| {
                ledger(m, s)
                    .iter()
                    .all(|id| id.seq < durable_submitted(s, id.sender))
            })
            .property(Expectation::Sometimes, "all-delivered", all_applied)
            .progress("eventually-delivered", |m, s| {
                m.is_at_rest(s) && submitted_applied(m, s)
            });
        // A first duplicate already violates exactly-once; states with more
        // applications than messages plus one add nothing and would let the
        // buggy variants grow the ledger forever.
        // The syncing log (issue 9): the variants are flags of the System.
        system.log = self.log;
        let receiver_index = self.receiver_index();
        system.releases_before_sync[receiver_index] = self.variant == Variant::AckBeforeSync;
        if self.variant == Variant::TornApply {
            system.records = torn_apply_records;
        }
        system.within = |cfg, s| {
            let total = usize::from(cfg.senders) * usize::from(cfg.messages);
            match storage(s, cfg.receiver_index()) {
                Some(NodeStorage::Receiver(r)) => r.ledger.len() <= total + 1,
                _ => true,
            }
        };
        system
    }
}

const EMPTY_LEDGER: &[MsgId] = &[];

/// The receiver's durable ledger.
fn ledger<'a>(m: &AckRetry, s: &'a State) -> &'a [MsgId] {
    match storage(s, m.actors.cfg.receiver_index()) {
        Some(NodeStorage::Receiver(r)) => &r.ledger,
        _ => EMPTY_LEDGER,
    }
}

fn durable_submitted(s: &State, sender: u8) -> Seq {
    match storage(s, usize::from(sender)) {
        Some(NodeStorage::Sender(st)) => st.submitted,
        _ => 0,
    }
}

/// What a sender has durably submitted, and what it is still retrying: its live
/// outbox, or while it is crashed, the outbox it will recover with.
fn sender_view(s: &State, sender: u8) -> (Seq, Seqs) {
    let index = usize::from(sender);
    let stored = match storage(s, index) {
        Some(NodeStorage::Sender(st)) => Some(st),
        _ => None,
    };
    let submitted = stored.map_or(0, |st| st.submitted);
    let retrying = match live_state(s, index) {
        Some(NodeState::Sender(live)) => live.outbox,
        _ => stored.map_or(Seqs::EMPTY, |st| st.outbox),
    };
    (submitted, retrying)
}

/// Every durably submitted message is in the receiver's durable ledger.
fn submitted_applied(m: &AckRetry, s: &State) -> bool {
    let ledger = ledger(m, s);
    (0..m.actors.cfg.senders).all(|sender| {
        (0..durable_submitted(s, sender)).all(|seq| ledger.contains(&MsgId { sender, seq }))
    })
}

fn all_applied(m: &AckRetry, s: &State) -> bool {
    let ledger = ledger(m, s);
    let cfg = &m.actors.cfg;
    (0..cfg.senders)
        .all(|sender| (0..cfg.messages).all(|seq| ledger.contains(&MsgId { sender, seq })))
}

impl Explain for AckRetry {
    fn summarize(&self, s: &State) -> String {
        let mut parts = vec![format!("receiver ledger {:?}", ledger(self, s))];
        for sender in 0..self.actors.cfg.senders {
            let (submitted, retrying) = sender_view(s, sender);
            parts.push(format!(
                "sender {sender}: submitted {submitted}, retrying {retrying:?}"
            ));
        }
        parts.push(format!("crashes {}", s.history.crashes));
        parts.join("; ")
    }

    fn progress_properties(&self) -> Vec<ProgressProperty<Self>> {
        self.progress.clone()
    }
}

/// `ack-retry` in the catalogue.
pub struct AckRetryEntry;

pub static ENTRY: AckRetryEntry = AckRetryEntry;

impl AckRetryEntry {
    /// Reads and validates the configuration from command-line settings.
    pub fn config(&self, settings: &Settings) -> Result<AckRetryCfg, ConfigError> {
        let info = self.info();
        let settings = &info.resolve(settings)?;
        info.refuse_unknown_flags(settings)?;
        let variant = Variant::parse(info.variant(settings)?.name).expect("catalogue names parse");
        let defaults = AckRetryCfg::defaults_for(variant);
        let senders = bounded(
            settings.senders,
            "senders",
            defaults.senders.into(),
            1,
            SENDERS_MAX,
        )?;
        let messages = bounded(
            settings.messages,
            "messages",
            defaults.messages.into(),
            1,
            MESSAGES_MAX,
        )?;
        if u32::from(senders) * u32::from(messages) > MESSAGES_TOTAL_MAX {
            return Err(ConfigError(format!(
                "--senders {senders} --messages {messages} is too large to check exhaustively \
                 (at most {MESSAGES_TOTAL_MAX} messages in all)"
            )));
        }
        let crashes = bounded(
            settings.crashes,
            "crashes",
            defaults.crashes.into(),
            0,
            CRASHES_MAX,
        )?;
        let network = match &settings.network {
            Some(n) => NetworkKind::parse(n)?,
            None => defaults.network,
        };
        Ok(AckRetryCfg {
            senders,
            messages,
            crashes,
            network,
            variant,
            log: LogMode::parse(settings.log.as_deref(), defaults.log)?,
        })
    }
}

impl ModelEntry for AckRetryEntry {
    fn info(&self) -> ModelInfo {
        let d = AckRetryCfg::default();
        ModelInfo {
            name: "ack-retry",
            about: "at-least-once delivery with a durable outbox, plus receiver dedup saved atomically with the effect",
            flags: vec![
                FlagInfo { name: "senders", default: d.senders.to_string(), help: "number of senders" },
                FlagInfo { name: "messages", default: d.messages.to_string(), help: "messages per sender (ack-before-sync, torn-apply default to 1)" },
                FlagInfo { name: "crashes", default: d.crashes.to_string(), help: "crashes per behaviour, any actor" },
                FlagInfo { name: "network", default: d.network.name().into(), help: "unordered | unordered-dup | ordered (all lossy)" },
                FlagInfo { name: "log", default: d.log.name().into(), help: "atomic | sync: saves durable at once, or appends durable at a sync (ack-before-sync, torn-apply default to sync)" },
            ],
            properties: vec![
                PropertyInfo { name: "exactly-once", expectation: "always", about: "no message id appears twice in the receiver's durable ledger" },
                PropertyInfo { name: "no-loss", expectation: "always", about: "a message its sender stopped retrying is in the receiver's durable ledger" },
                PropertyInfo { name: "no-phantom", expectation: "always", about: "only durably submitted messages are applied" },
                PropertyInfo { name: "all-delivered", expectation: "sometimes", about: "a state with every message applied is reachable" },
                PropertyInfo { name: "eventually-delivered", expectation: "progress", about: "from every state, a state at rest with every durably submitted message applied is reachable" },
            ],
            variants: Variant::ALL
                .into_iter()
                .map(|v| VariantInfo::of(v.name(), v.expected_violation(), v.about()))
                .collect(),
            configs: vec![ConfigInfo {
                name: "sync-log",
                about: "the correct protocol under a syncing log, one message per sender",
                scope: ConfigScope::Table,
                settings: Settings {
                    log: Some("sync".into()),
                    messages: Some(1),
                    ..Settings::default()
                },
            }, ConfigInfo {
                name: "sync-log-two-messages",
                about: "the correct protocol under a syncing log, two messages per sender (1.8 M states)",
                scope: ConfigScope::Deep,
                settings: Settings {
                    log: Some("sync".into()),
                    ..Settings::default()
                },
            }, ConfigInfo {
                name: "two-crashes",
                about: "two crashes per behaviour on an ordered network",
                scope: ConfigScope::Deep,
                settings: Settings {
                    crashes: Some(2),
                    network: Some("ordered".into()),
                    ..Settings::default()
                },
            }],
        }
    }

    fn check(&self, settings: &Settings, opts: &RunOptions) -> Result<Report, ConfigError> {
        let cfg = self.config(settings)?;
        let label = RunLabel {
            model: "ack-retry".into(),
            variant: cfg.variant.name().into(),
            config: BTreeMap::from([
                ("senders".to_string(), cfg.senders.to_string()),
                ("messages".to_string(), cfg.messages.to_string()),
                ("crashes".to_string(), cfg.crashes.to_string()),
                ("network".to_string(), cfg.network.name().to_string()),
                ("log".to_string(), cfg.log.name().to_string()),
            ]),
            not_checked: Vec::new(),
        };
        run(cfg.into_model(), None, label, opts).map_err(|e| ConfigError(e.to_string()))
    }

    fn explore(&self, settings: &Settings, address: SocketAddr) -> Result<(), ConfigError> {
        let cfg = self.config(settings)?;
        crate::catalog::serve(cfg.into_model(), None, address)
    }
}

#[cfg(test)]
mod tests;
