//! # Ack-retry with receiver-side deduplication
//!
//! S senders each deliver M messages to one receiver over a network that loses,
//! reorders and (in one configuration) duplicates messages, while any actor may
//! crash — losing its volatile state and keeping its storage — and recover. The
//! model follows the rules of `impl/src/ack_retry` (without depending on it):
//!
//! - The [`sender`] keeps a durable outbox of at most `F` messages in flight and
//!   retransmits until acknowledged: *at-least-once delivery*. Its application
//!   submits one message per `Submit` step, interleaved with everything else.
//! - The [`receiver`] deduplicates with a per-sender high-water mark plus the
//!   seqs applied in a window of `W` above it, refuses seqs beyond the window,
//!   and saves the effect (a ledger entry) together with the dedup record in one
//!   save: *idempotent, transactional processing*. Duplicates are acknowledged
//!   again.
//!
//! Together they give *exactly-once effect*: every submitted message is applied
//! once, never twice, never lost. Each [`Variant`] other than `correct` breaks one
//! mechanism and names the property that catches it; the properties are in
//! [`properties`].

pub mod entry;
pub mod properties;
pub mod receiver;
pub mod sender;
pub mod variants;

pub use entry::{AckRetryEntry, ENTRY};
pub use variants::Variant;

use crate::catalog::ConfigError;
use crate::system::{History, LogMode, System, SystemState};
use receiver::{Entry, Receiver, ReceiverState, ReceiverStorage};
use sender::{Sender, SenderState, SenderStorage};
use stateright::actor::{Actor, ActorModel, Id, LossyNetwork, Network, Out};
use std::borrow::Cow;
use std::fmt;

/// A sender's message number. The first message of a sender is seq 1; 0 means
/// "nothing yet" in a high-water mark.
pub type Seq = u8;

/// Senders, messages, windows and crashes beyond these are too large to check
/// exhaustively.
pub const SENDERS_MAX: u32 = 4;
pub const MESSAGES_MAX: u32 = 4;
pub const MESSAGES_TOTAL_MAX: u32 = 8;
pub const CRASHES_MAX: u32 = 3;
/// The largest receiver window `W` and sender in-flight bound `F` (in messages).
pub const WINDOW_MAX: u32 = 4;
/// The most disk losses per sender.
pub const DISK_LOSSES_MAX: u32 = 2;

/// A set of sequence numbers below 8, printed as `{1, 2}`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seqs(u8);

impl Seqs {
    pub const EMPTY: Seqs = Seqs(0);

    /// The most seqs a set holds: seqs `0..CAPACITY`. The model's seqs are at
    /// most `MESSAGES_MAX`, and a high-water mark plus one at most one more.
    pub const CAPACITY: Seq = 8;

    fn bit(seq: Seq) -> u8 {
        assert!(seq < Seqs::CAPACITY, "seq {seq} beyond a Seqs set");
        1 << seq
    }
    pub fn single(seq: Seq) -> Seqs {
        Seqs(Seqs::bit(seq))
    }
    pub fn contains(self, seq: Seq) -> bool {
        seq < Seqs::CAPACITY && self.0 & Seqs::bit(seq) != 0
    }
    pub fn insert(&mut self, seq: Seq) {
        self.0 |= Seqs::bit(seq);
    }
    pub fn remove(&mut self, seq: Seq) {
        if seq < Seqs::CAPACITY {
            self.0 &= !Seqs::bit(seq);
        }
    }
    pub fn lowest(self) -> Option<Seq> {
        (self.0 != 0).then(|| self.0.trailing_zeros() as Seq)
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

/// An application message's identity: its sender and the application's number
/// for it (1, 2, …), printed `s0#1`. A ghost: the protocol never reads it. It
/// equals the seq while the sender never lost its disk; after a disk loss the
/// new incarnation's seq 1 carries the application's next number, which is how
/// the properties tell it from the old incarnation's seq 1.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgId {
    pub sender: u8,
    pub msg: u8,
}

impl fmt::Debug for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}#{}", self.sender, self.msg)
    }
}

/// A sender's incarnation: its life between two empty disks, granted by the
/// receiver, only growing. 0 is the incarnation every sender is installed with
/// (the implementation asks for its first one too; the model grants it at
/// install time, which changes nothing the properties see and keeps the
/// configurations without disk loss as small as before).
pub type Inc = u8;

/// Wire messages. The sender of a `Data` is the envelope's source.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg {
    /// Message `seq` of incarnation `inc`; `msg` is the ghost application
    /// number (see [`MsgId`]), never read by the receiver's decisions.
    Data { inc: Inc, seq: Seq, msg: u8 },
    /// `seq` of incarnation `inc` is applied, and so is every seq `<= hwm` (the
    /// receiver's high-water mark for it when it answered).
    Ack { inc: Inc, hwm: Seq, seq: Seq },
    /// A sender without an incarnation asks for one; `nonce` tells this boot's
    /// request from an earlier boot's.
    NewIncarnation { nonce: u8 },
    /// The answer to the request with `nonce`.
    Granted { nonce: u8, inc: Inc },
    /// Data of incarnation `inc` is refused: a newer incarnation of its sender
    /// has sent data (the old one is fenced).
    Expired { inc: Inc },
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Msg::Data { inc: 0, seq, msg } if msg == seq => write!(f, "Data({seq})"),
            Msg::Data { inc: 0, seq, msg } => write!(f, "Data({seq}, msg {msg})"),
            Msg::Data { inc, seq, msg } => write!(f, "Data({seq}, inc {inc}, msg {msg})"),
            Msg::Ack { inc: 0, hwm, seq } => write!(f, "Ack({seq}, hwm {hwm})"),
            Msg::Ack { inc, hwm, seq } => write!(f, "Ack({seq}, hwm {hwm}, inc {inc})"),
            Msg::NewIncarnation { nonce } => write!(f, "NewIncarnation(nonce {nonce})"),
            Msg::Granted { nonce, inc } => write!(f, "Granted(inc {inc}, nonce {nonce})"),
            Msg::Expired { inc } => write!(f, "Expired(inc {inc})"),
        }
    }
}

/// Timers. `Submit` is the sender's application handing it the next message;
/// `Retry` is the sender's retransmission timer (of its outbox, or of its
/// request for an incarnation); `DiskLoss` is the fault "the sender loses its
/// disk"; the others are the second step of a split bug variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    Submit,
    Retry,
    DiskLoss,
    /// `send-before-persist` (sender) and `ack-before-persist` (receiver): the
    /// save that should have come first.
    Persist,
    /// `non-atomic-apply`: the receiver's dedup save after its effect save.
    RecordDedup,
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
    /// Messages each sender's application submits.
    pub messages: Seq,
    /// `W`: the receiver's window above its high-water mark.
    pub window: Seq,
    /// `F`: the sender's in-flight bound; `F <= W` (the variant
    /// `in-flight-beyond-window` sends `W + 1`).
    pub in_flight: Seq,
    pub crashes: u8,
    /// How many times each sender may lose its disk (0: never).
    pub disk_losses: u8,
    pub network: NetworkKind,
    pub variant: Variant,
    /// How a save becomes durable (`--log`).
    pub log: LogMode,
}

impl Default for AckRetryCfg {
    fn default() -> Self {
        AckRetryCfg {
            senders: 1,
            messages: 3,
            window: 2,
            in_flight: 2,
            crashes: 1,
            disk_losses: 0,
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
                s.on_timeout(st, *timer, o).map(NodeState::Sender)
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
type State = SystemState<Node>;

impl AckRetryCfg {
    pub(crate) fn receiver_index(&self) -> usize {
        usize::from(self.senders)
    }

    /// The sender's in-flight bound as this variant sets it.
    pub(crate) fn sender_in_flight(&self) -> Seq {
        if self.variant == Variant::InFlightBeyondWindow {
            self.window + 1
        } else {
            self.in_flight
        }
    }

    /// Refuses a configuration the correct protocol does not allow: `F > W`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.in_flight > self.window {
            return Err(ConfigError(format!(
                "--in-flight {} exceeds --window {}: the sender must keep within the \
                 receiver's window (see --variant in-flight-beyond-window)",
                self.in_flight, self.window
            )));
        }
        Ok(())
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
                    in_flight: self.sender_in_flight(),
                    disk_losses: self.disk_losses,
                    variant: self.variant,
                })
            }))
            .actor(Node::Receiver(Receiver {
                senders: self.senders,
                window: self.window,
                variant: self.variant,
            }))
            .init_network(network)
            .lossy_network(LossyNetwork::Yes);
        let mut system = properties::add(System::new(actors, names, crashes));
        // The syncing log (issue 9): its variants are flags of the System.
        system.log = self.log;
        system.releases_before_sync[self.receiver_index()] = self.variant == Variant::AckBeforeSync;
        if self.variant == Variant::TornApply {
            system.records = torn_apply_records;
        }
        system
    }
}

/// `torn-apply`'s records: a receiver save that applies a message is written
/// as the effect (the new ledger with the old dedup state), then the whole new
/// value. Any other save is one record.
fn torn_apply_records(
    cfg: &AckRetryCfg,
    _id: Id,
    before: Option<&NodeStorage>,
    saved: &NodeStorage,
) -> Vec<NodeStorage> {
    let NodeStorage::Receiver(after) = saved else {
        return vec![saved.clone()];
    };
    let (senders, last_granted) = match before {
        Some(NodeStorage::Receiver(old)) if old.ledger == after.ledger => {
            return vec![saved.clone()]
        }
        Some(NodeStorage::Receiver(old)) => (old.senders.clone(), old.last_granted),
        _ => (vec![Entry::default(); usize::from(cfg.senders)], 0),
    };
    let effect = NodeStorage::Receiver(ReceiverStorage {
        ledger: after.ledger.clone(),
        senders,
        last_granted,
    });
    vec![effect, saved.clone()]
}

#[cfg(test)]
mod tests;
