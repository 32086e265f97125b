//! `eo_impl::ack_retry`'s [`Sender`] and [`Receiver`] cores as Stateright actors in
//! the models' [`System`], checked against the ack-retry model's properties
//! ([`properties`]).
//!
//! The actors mirror `eo_models::ack_retry` wherever the model has a choice to
//! make that the implementation leaves to its driver:
//!
//! - **The application.** Each sender's application hands over `messages`
//!   transfers, one per `Submit` timer, while the sender has an incarnation and
//!   fewer than `in_flight` (`F`) messages are unacknowledged from its oldest
//!   one — the model's application and its backpressure. The transfer of the
//!   application's message `n` carries `n` as its amount, which is how the
//!   properties name messages in the receiver's durable `Applied` records.
//!   The count of messages handed over is the application's ([`Ghost`]): it is
//!   saved with the `Submitted` record and survives a disk loss.
//! - **Disk loss.** A sender with work left may lose its disk (its `DiskLoss`
//!   timer, as in the model): it restarts with [`Sender::new`] on an empty log
//!   and asks for a new incarnation under a nonce no earlier disk used (the
//!   driver's fresh random nonce; here the disk's number, as in the model).
//! - **The window.** The implementation's receiver window is the constant
//!   `eo_impl::ack_retry::WINDOW_MAX` (64 seqs); it is not a configuration of
//!   the cores, so `within-window` is checked against that window, with the
//!   application keeping `F <= 4` in flight.
//!
//! Each step carries out the core's `Ready` as [`crate::actors::release`] does;
//! the actor's storage is its log, every record appended so far (see
//! [`crate::actors`] for the log modes and the standing clock).

pub mod properties;

use crate::actors::checked::Checked;
use crate::actors::release::carry_out;
use crate::actors::{bounded, BoundError, NOW};
use eo_impl::ack_retry::{
    Msg, Receiver, ReceiverError, ReceiverProtocol, ReceiverRecord, Sender, SenderProtocol,
    SenderRecord,
};
use eo_impl::bank::Transfer;
use eo_impl::{Core, NodeId};
use eo_models::ack_retry::NetworkKind;
use eo_models::system::{History, LogMode, System, SystemState};
use stateright::actor::{model_timeout, Actor, ActorModel, Id, LossyNetwork, Network, Out};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The most senders an adapter configuration has.
pub const SENDERS_MAX: u32 = 3;
/// The most messages per sender.
pub const MESSAGES_MAX: u32 = 4;
/// The most messages of all senders together.
pub const MESSAGES_TOTAL_MAX: u32 = 6;
/// The most messages a sender's application keeps unacknowledged (`F`).
pub const IN_FLIGHT_MAX: u32 = 4;
/// The most crashes per behaviour.
pub const CRASHES_MAX: u32 = 3;
/// The most disk losses per sender.
pub const DISK_LOSSES_MAX: u32 = 2;

/// The account every transfer goes to (the receiver's bank).
pub const RECEIVER_ACCOUNT: u32 = 1_000;

/// Nonces of one disk's life start at `disk number × NONCE_STRIDE`; a life asks
/// for far fewer incarnations than this.
pub const NONCE_STRIDE: u64 = 1 << 32;

/// The nonce of the installed grants (made before the check starts): one no
/// life asks with, so a request is never taken for the installation's.
pub const INSTALLED_NONCE: u64 = u64::MAX;

/// A fault planted in the implementation to show that the checker catches it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The cores as they are.
    #[default]
    None,
    /// The receiver's duplicate check is off (`eo-impl`'s `bench-baseline`
    /// knob `Receiver::set_at_least_once`): tests only.
    #[cfg(test)]
    ReceiverDedupOff,
    /// The receiver's driver opens each release before its records are
    /// synced (`Release::open_before_durable`'s bug): under `--log sync` its
    /// acknowledgements leave ahead of the sync. Tests only.
    #[cfg(test)]
    ReceiverReleasesBeforeSync,
}

/// A configuration of the adapted cores.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImplAckRetryCfg {
    pub senders: u8,
    /// Messages each sender's application hands over.
    pub messages: u8,
    /// `F`: the most messages a sender's application keeps unacknowledged.
    pub in_flight: u8,
    pub crashes: u8,
    /// How many times each sender may lose its disk.
    pub disk_losses: u8,
    pub network: NetworkKind,
    pub log: LogMode,
    pub fault: Fault,
}

impl Default for ImplAckRetryCfg {
    /// The model's default configuration: one sender, three messages, two in
    /// flight, one crash, an unordered lossy network, an atomic log.
    fn default() -> Self {
        ImplAckRetryCfg {
            senders: 1,
            messages: 3,
            in_flight: 2,
            crashes: 1,
            disk_losses: 0,
            network: NetworkKind::Unordered,
            log: LogMode::Atomic,
            fault: Fault::None,
        }
    }
}

impl ImplAckRetryCfg {
    /// A configuration from plain numbers, each checked against its bound.
    pub fn new(
        senders: u32,
        messages: u32,
        in_flight: u32,
        crashes: u32,
        disk_losses: u32,
    ) -> Result<ImplAckRetryCfg, BoundError> {
        let cfg = ImplAckRetryCfg {
            senders: bounded("senders", senders, 1, SENDERS_MAX)?,
            messages: bounded("messages", messages, 1, MESSAGES_MAX)?,
            in_flight: bounded("in-flight", in_flight, 1, IN_FLIGHT_MAX)?,
            crashes: bounded("crashes", crashes, 0, CRASHES_MAX)?,
            disk_losses: bounded("disk-losses", disk_losses, 0, DISK_LOSSES_MAX)?,
            ..ImplAckRetryCfg::default()
        };
        if senders * messages > MESSAGES_TOTAL_MAX {
            return Err(BoundError::TooLarge(format!(
                "--senders {senders} --messages {messages}: at most {MESSAGES_TOTAL_MAX} messages in all"
            )));
        }
        Ok(cfg)
    }

    /// The receiver's actor index (the senders are `0..senders`).
    pub fn receiver_index(&self) -> usize {
        usize::from(self.senders)
    }

    /// Builds the checked system: senders `0..S`, the receiver `S`, the
    /// network, the crash budget, the log mode and the properties.
    pub fn into_model(self) -> ImplAckRetry {
        let receiver = Id::from(self.receiver_index());
        let mut names: Vec<String> = (0..self.senders).map(|i| format!("sender {i}")).collect();
        names.push("receiver".into());
        let network = match self.network {
            NetworkKind::Unordered => Network::new_unordered_nonduplicating([]),
            NetworkKind::UnorderedDup => Network::new_unordered_duplicating([]),
            NetworkKind::Ordered => Network::new_ordered([]),
        };
        let actors = ActorModel::new(self.clone(), History::default())
            .actors((0..self.senders).map(|_| Node::Sender {
                receiver,
                messages: self.messages,
                in_flight: self.in_flight,
                disk_losses: self.disk_losses,
            }))
            .actor(Node::Receiver { fault: self.fault })
            .init_network(network)
            .lossy_network(LossyNetwork::Yes);
        let mut system = System::new(actors, names, self.crashes);
        system.log = self.log;
        system.records = records;
        #[cfg(test)]
        {
            system.releases_before_sync[self.receiver_index()] =
                self.fault == Fault::ReceiverReleasesBeforeSync;
        }
        properties::add(system)
    }
}

/// The checked system of adapted cores.
pub type ImplAckRetry = Checked<Node, ImplAckRetryCfg>;
/// A state of it.
pub type ImplState = SystemState<Node>;

/// An impl message on the model's network: ordered and hashed by all its fields.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Wire(pub Msg);

type WireKey = (u8, u64, u64, u64, u32, u32, i64);

impl Wire {
    fn key(&self) -> WireKey {
        match self.0 {
            Msg::NewIncarnation { nonce } => (0, nonce, 0, 0, 0, 0, 0),
            Msg::Granted { nonce, incarnation } => (1, nonce, incarnation, 0, 0, 0, 0),
            Msg::Data {
                incarnation,
                seq,
                transfer,
            } => (
                2,
                incarnation,
                seq,
                0,
                transfer.from,
                transfer.to,
                transfer.amount,
            ),
            Msg::Ack {
                incarnation,
                hwm,
                seq,
            } => (3, incarnation, hwm, seq, 0, 0, 0),
            Msg::Expired { incarnation } => (4, incarnation, 0, 0, 0, 0, 0),
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
        match self.0 {
            Msg::NewIncarnation { nonce } => write!(f, "NewIncarnation(nonce {nonce})"),
            Msg::Granted { nonce, incarnation } => {
                write!(f, "Granted(inc {incarnation}, nonce {nonce})")
            }
            Msg::Data {
                incarnation,
                seq,
                transfer,
            } => write!(f, "Data({seq}, inc {incarnation}, msg {})", transfer.amount),
            Msg::Ack {
                incarnation,
                hwm,
                seq,
            } => write!(f, "Ack({seq}, hwm {hwm}, inc {incarnation})"),
            Msg::Expired { incarnation } => write!(f, "Expired(inc {incarnation})"),
        }
    }
}

/// Timers: the application's next submission, the core's deadline, the fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// The sender's application hands over its next message.
    Submit,
    /// The core's `poll_timeout()` deadline (always due, see [`NOW`]).
    Deadline,
    /// The sender loses its disk.
    DiskLoss,
}

/// The sender's application: what it has handed over, which a lost disk does
/// not take with it. The protocol never reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ghost {
    /// Messages handed over and accepted (durably, with their `Submitted`
    /// record), in every incarnation: the next one is `handed + 1`.
    pub handed: u8,
    /// Disks lost so far.
    pub losses: u8,
}

/// An actor: one adapted core.
#[derive(Clone, Debug)]
pub enum Node {
    Sender {
        receiver: Id,
        messages: u8,
        in_flight: u8,
        disk_losses: u8,
    },
    Receiver {
        fault: Fault,
    },
}

/// An actor's volatile state: its core, and its log as appended so far.
#[derive(Clone)]
pub enum NodeState {
    Sender {
        core: Box<Sender>,
        log: Vec<SenderRecord>,
        ghost: Ghost,
    },
    Receiver {
        core: Box<Receiver>,
        log: Vec<ReceiverRecord>,
        /// The core refused a message beyond its window (`SeqBeyondWindow`).
        refused: bool,
    },
    /// The core's `recover` refused the stored log: the actor does nothing more.
    Failed { error: String },
}

/// What identifies a [`NodeState`]: the cores' protocol states, the logs, the
/// ghost (see [`crate::actors`] on what the protocol state leaves out).
#[derive(PartialEq, Eq, Hash)]
enum View<'a> {
    Sender(SenderProtocol, Vec<RecordKey>, &'a Ghost),
    Receiver(ReceiverProtocol, Vec<RecordKey>, bool),
    Failed(&'a str),
}

impl NodeState {
    fn view(&self) -> View<'_> {
        match self {
            NodeState::Sender { core, log, ghost } => {
                View::Sender(core.protocol(), log.iter().map(sender_key).collect(), ghost)
            }
            NodeState::Receiver { core, log, refused } => View::Receiver(
                core.protocol(),
                log.iter().map(receiver_key).collect(),
                *refused,
            ),
            NodeState::Failed { error } => View::Failed(error),
        }
    }
}

super::identity_by_view!(NodeState);

impl fmt::Debug for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeState::Sender { core, ghost, .. } => {
                let p = core.protocol();
                let outbox: Vec<u64> = p.outbox.iter().map(|o| o.0).collect();
                write!(
                    f,
                    "Sender {{ inc {:?}, next {}, outbox {:?}, handed {}{} }}",
                    p.incarnation,
                    p.next_seq,
                    outbox,
                    ghost.handed,
                    if p.requesting { ", requesting" } else { "" }
                )
            }
            NodeState::Receiver { core, refused, .. } => {
                let p = core.protocol();
                write!(f, "Receiver {{ last granted {}", p.last_granted)?;
                for e in &p.senders {
                    write!(
                        f,
                        ", s{}: inc {} hwm {} above {:?}",
                        e.sender, e.incarnation, e.hwm, e.above
                    )?;
                }
                if *refused {
                    write!(f, ", refused")?;
                }
                write!(f, " }}")
            }
            NodeState::Failed { error } => write!(f, "Failed({error})"),
        }
    }
}

/// An actor's storage: its log (every record appended, in order), and for a
/// sender its application's [`Ghost`].
#[derive(Clone, PartialEq, Eq)]
pub enum NodeStorage {
    Sender {
        records: Vec<SenderRecord>,
        ghost: Ghost,
    },
    Receiver {
        records: Vec<ReceiverRecord>,
    },
}

impl Hash for NodeStorage {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self {
            NodeStorage::Sender { records, ghost } => {
                0u8.hash(h);
                records.len().hash(h);
                for r in records {
                    sender_key(r).hash(h);
                }
                ghost.hash(h);
            }
            NodeStorage::Receiver { records } => {
                1u8.hash(h);
                records.len().hash(h);
                for r in records {
                    receiver_key(r).hash(h);
                }
            }
        }
    }
}

impl fmt::Debug for NodeStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeStorage::Sender { records, ghost } => {
                write!(f, "{records:?} (handed {})", ghost.handed)
            }
            NodeStorage::Receiver { records } => write!(f, "{records:?}"),
        }
    }
}

/// A record as a hashable value carrying every field.
type RecordKey = (u8, u64, u64, u64, Vec<(u64, u32, u32, i64)>);

fn sender_key(r: &SenderRecord) -> RecordKey {
    match r {
        SenderRecord::Incarnation { incarnation } => (0, *incarnation, 0, 0, Vec::new()),
        SenderRecord::Submitted { seq, transfer } => (
            1,
            *seq,
            0,
            0,
            vec![(0, transfer.from, transfer.to, transfer.amount)],
        ),
        SenderRecord::Acked { hwm, seq } => (2, *hwm, *seq, 0, Vec::new()),
        SenderRecord::Expired { incarnation } => (3, *incarnation, 0, 0, Vec::new()),
        SenderRecord::Snapshot {
            incarnation,
            next_seq,
            outbox,
        } => (
            4,
            incarnation.map_or(0, |i| i + 1),
            *next_seq,
            0,
            outbox
                .iter()
                .map(|(s, t)| (*s, t.from, t.to, t.amount))
                .collect(),
        ),
    }
}

fn receiver_key(r: &ReceiverRecord) -> RecordKey {
    match r {
        ReceiverRecord::Granted {
            sender,
            incarnation,
            nonce,
        } => (0, u64::from(*sender), *incarnation, *nonce, Vec::new()),
        ReceiverRecord::Applied {
            from,
            incarnation,
            seq,
            transfer,
        } => (
            1,
            u64::from(*from),
            *incarnation,
            *seq,
            vec![(0, transfer.from, transfer.to, transfer.amount)],
        ),
        ReceiverRecord::Retired { sender } => (2, u64::from(*sender), 0, 0, Vec::new()),
        // Adapters never compact; a snapshot is keyed by its whole text.
        ReceiverRecord::Snapshot { .. } => (
            3,
            0,
            0,
            0,
            format!("{r:?}")
                .bytes()
                .map(|b| (u64::from(b), 0, 0, 0))
                .collect(),
        ),
    }
}

/// Under `--log sync`, the appends one save makes: one per record added to the
/// log (the application's ghost goes with the last), or the whole new value
/// when the log was replaced (a lost disk).
fn records(
    _: &ImplAckRetryCfg,
    _: Id,
    before: Option<&NodeStorage>,
    saved: &NodeStorage,
) -> Vec<NodeStorage> {
    match (before, saved) {
        (
            Some(NodeStorage::Sender {
                records: old,
                ghost: old_ghost,
            }),
            NodeStorage::Sender {
                records: new,
                ghost,
            },
        ) if new.starts_with(old) && new.len() > old.len() => (old.len() + 1..=new.len())
            .map(|k| NodeStorage::Sender {
                records: new[..k].to_vec(),
                ghost: if k == new.len() { *ghost } else { *old_ghost },
            })
            .collect(),
        (Some(NodeStorage::Receiver { records: old }), NodeStorage::Receiver { records: new })
            if new.starts_with(old) && new.len() > old.len() =>
        {
            (old.len() + 1..=new.len())
                .map(|k| NodeStorage::Receiver {
                    records: new[..k].to_vec(),
                })
                .collect()
        }
        (None, NodeStorage::Receiver { records: new }) if !new.is_empty() => (1..=new.len())
            .map(|k| NodeStorage::Receiver {
                records: new[..k].to_vec(),
            })
            .collect(),
        (
            None,
            NodeStorage::Sender {
                records: new,
                ghost,
            },
        ) if !new.is_empty() => (1..=new.len())
            .map(|k| NodeStorage::Sender {
                records: new[..k].to_vec(),
                ghost: if k == new.len() {
                    *ghost
                } else {
                    Ghost {
                        handed: 0,
                        ..*ghost
                    }
                },
            })
            .collect(),
        _ => vec![saved.clone()],
    }
}

/// The incarnation sender `index` is installed with.
pub fn installed_incarnation(index: usize) -> u64 {
    index as u64 + 1
}

/// The log a sender is installed with (its storage while it has saved nothing):
/// the incarnation the receiver granted it at install time. As in the model,
/// the first grant happens before the check starts; a sender that loses its
/// disk asks for its next one through the protocol.
fn installed_sender(id: Id) -> Vec<SenderRecord> {
    vec![SenderRecord::Incarnation {
        incarnation: installed_incarnation(usize::from(id)),
    }]
}

/// The log the receiver (actor `senders`) is installed with: one grant per sender.
fn installed_receiver(senders: usize) -> Vec<ReceiverRecord> {
    (0..senders)
        .map(|i| ReceiverRecord::Granted {
            sender: i as NodeId,
            incarnation: installed_incarnation(i),
            nonce: INSTALLED_NONCE,
        })
        .collect()
}

/// The impl node id of actor `id`.
fn node_id(id: Id) -> NodeId {
    usize::from(id) as NodeId
}

/// The transfer carrying sender `sender`'s application message `msg`.
pub fn transfer(sender: NodeId, msg: u8) -> Transfer {
    Transfer {
        from: sender,
        to: RECEIVER_ACCOUNT,
        amount: i64::from(msg),
    }
}

impl Node {
    /// Carries out the sender core's `Ready`, saves and sends, arms the timers.
    fn sender_step(
        &self,
        core: &mut Sender,
        log: &mut Vec<SenderRecord>,
        ghost: Ghost,
        o: &mut Out<Node>,
    ) {
        let carried = carry_out(core);
        if !carried.records.is_empty() {
            log.extend(carried.records);
            o.save(NodeStorage::Sender {
                records: log.clone(),
                ghost,
            });
        }
        for envelope in carried.messages {
            o.send(Id::from(envelope.to as usize), Wire(envelope.msg));
        }
        self.arm_sender(core, ghost, o);
    }

    fn may_submit(&self, core: &Sender, ghost: Ghost) -> bool {
        let Node::Sender {
            messages,
            in_flight,
            ..
        } = self
        else {
            return false;
        };
        let p = core.protocol();
        let base = p.outbox.first().map_or(p.next_seq, |o| o.0);
        p.incarnation.is_some()
            && ghost.handed < *messages
            && p.next_seq - base < u64::from(*in_flight)
    }

    fn arm_sender(&self, core: &Sender, ghost: Ghost, o: &mut Out<Node>) {
        let Node::Sender { disk_losses, .. } = self else {
            return;
        };
        if core.poll_timeout().is_some() {
            o.set_timer(Timer::Deadline, model_timeout());
        } else {
            o.cancel_timer(Timer::Deadline);
        }
        let may_submit = self.may_submit(core, ghost);
        if may_submit {
            o.set_timer(Timer::Submit, model_timeout());
        } else {
            o.cancel_timer(Timer::Submit);
        }
        let has_work = core.in_flight() > 0 || core.incarnation().is_none() || may_submit;
        if ghost.losses < *disk_losses && has_work {
            o.set_timer(Timer::DiskLoss, model_timeout());
        } else {
            o.cancel_timer(Timer::DiskLoss);
        }
    }

    /// Carries out the receiver core's `Ready`, saves and sends.
    fn receiver_step(core: &mut Receiver, log: &mut Vec<ReceiverRecord>, o: &mut Out<Node>) {
        let carried = carry_out(core);
        if !carried.records.is_empty() {
            log.extend(carried.records);
            o.save(NodeStorage::Receiver {
                records: log.clone(),
            });
        }
        for envelope in carried.messages {
            o.send(Id::from(envelope.to as usize), Wire(envelope.msg));
        }
    }

    fn new_receiver(&self, id: Id) -> Receiver {
        #[allow(unused_mut)]
        let mut core = Receiver::new(node_id(id));
        self.plant(&mut core);
        core
    }

    /// Plants the configured fault into a fresh or recovered receiver.
    fn plant(&self, _core: &mut Receiver) {
        #[cfg(test)]
        if let Node::Receiver {
            fault: Fault::ReceiverDedupOff,
        } = self
        {
            _core.set_at_least_once(true);
        }
    }
}

impl Actor for Node {
    type Msg = Wire;
    type Timer = Timer;
    type State = NodeState;
    type Storage = NodeStorage;
    type Random = ();

    fn name(&self) -> String {
        match self {
            Node::Sender { .. } => "sender".into(),
            Node::Receiver { .. } => "receiver".into(),
        }
    }

    fn on_start(&self, id: Id, storage: &Option<NodeStorage>, o: &mut Out<Self>) -> NodeState {
        match (self, storage) {
            (Node::Sender { receiver, .. }, stored) => {
                let (records, ghost) = match stored {
                    Some(NodeStorage::Sender { records, ghost }) => (records.clone(), *ghost),
                    _ => (installed_sender(id), Ghost::default()),
                };
                let nonce = u64::from(ghost.losses) * NONCE_STRIDE;
                let recovered = if records.is_empty() {
                    Ok(Sender::new(node_id(id), node_id(*receiver), NOW, nonce))
                } else {
                    Sender::recover(node_id(id), node_id(*receiver), NOW, nonce, records.clone())
                };
                match recovered {
                    Ok(mut core) => {
                        let mut log = records;
                        self.sender_step(&mut core, &mut log, ghost, o);
                        NodeState::Sender {
                            core: Box::new(core),
                            log,
                            ghost,
                        }
                    }
                    Err(error) => NodeState::Failed {
                        error: error.to_string(),
                    },
                }
            }
            (Node::Receiver { .. }, stored) => {
                let records = match stored {
                    Some(NodeStorage::Receiver { records }) => records.clone(),
                    _ => installed_receiver(usize::from(id)),
                };
                let recovered = if records.is_empty() {
                    Ok(self.new_receiver(id))
                } else {
                    Receiver::recover(node_id(id), NOW, records.clone()).map(|mut core| {
                        self.plant(&mut core);
                        core
                    })
                };
                match recovered {
                    Ok(mut core) => {
                        let mut log = records;
                        Node::receiver_step(&mut core, &mut log, o);
                        NodeState::Receiver {
                            core: Box::new(core),
                            log,
                            refused: false,
                        }
                    }
                    Err(error) => NodeState::Failed {
                        error: error.to_string(),
                    },
                }
            }
        }
    }

    fn on_msg(&self, _: Id, state: &mut Cow<NodeState>, src: Id, msg: Wire, o: &mut Out<Self>) {
        match state.to_mut() {
            NodeState::Sender { core, log, ghost } => {
                // A peer's bad input is a typed error: the message is dropped.
                let _ = core.handle_message(NOW, node_id(src), msg.0);
                self.sender_step(core, log, *ghost, o);
            }
            NodeState::Receiver { core, log, refused } => {
                if let Err(ReceiverError::SeqBeyondWindow { .. }) =
                    core.handle_message(NOW, node_id(src), msg.0)
                {
                    *refused = true;
                }
                Node::receiver_step(core, log, o);
            }
            NodeState::Failed { .. } => {}
        }
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<NodeState>, timer: &Timer, o: &mut Out<Self>) {
        let Node::Sender { receiver, .. } = self else {
            if let NodeState::Receiver { core, log, .. } = state.to_mut() {
                core.handle_timeout(NOW);
                Node::receiver_step(core, log, o);
            }
            return;
        };
        let NodeState::Sender { core, log, ghost } = state.to_mut() else {
            return;
        };
        match timer {
            Timer::Submit => {
                if self.may_submit(core, *ghost) {
                    let msg = ghost.handed + 1;
                    // Backpressure (`WindowFull`, `NoIncarnation`) leaves the
                    // application's message with the application.
                    if core.submit(NOW, transfer(node_id(id), msg)).is_ok() {
                        ghost.handed = msg;
                    }
                }
                self.sender_step(core, log, *ghost, o);
            }
            Timer::Deadline => {
                core.handle_timeout(NOW);
                self.sender_step(core, log, *ghost, o);
            }
            Timer::DiskLoss => {
                // The disk is gone: a new core on an empty log, the
                // application's count kept.
                ghost.losses += 1;
                let nonce = u64::from(ghost.losses) * NONCE_STRIDE;
                **core = Sender::new(node_id(id), node_id(*receiver), NOW, nonce);
                log.clear();
                o.save(NodeStorage::Sender {
                    records: Vec::new(),
                    ghost: *ghost,
                });
                self.sender_step(core, log, *ghost, o);
            }
        }
    }
}

#[cfg(test)]
mod tests;
