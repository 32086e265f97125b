//! Ack-retry: the implementation's [`Sender`] and [`Receiver`] mapped to the
//! model's sender and receiver (`eo_models::ack_retry`).
//!
//! | model | implementation |
//! |---|---|
//! | actor id `i < S` (sender), `S` (receiver) | [`NodeId`] `i`, `S` ([`Layout`]) |
//! | `SenderState.inc` | [`Sender::incarnation`], through [`Layout::model_inc`] |
//! | `SenderState.next` | [`Sender::next_seq`] |
//! | `SenderState.outbox` | the seqs of [`Sender::outbox`] |
//! | `SenderState.ghost` | the caller's [`Ghost`]; checked against the outbox's transfers |
//! | `ReceiverState.ledger` | the [`Bank`] balances of the per-message accounts ([`transfer_of`]) |
//! | `Entry.granted`, `Entry.dedup` | [`Receiver::dedup_snapshots`]: `granted`, `incarnation`, `hwm`, `above` |
//! | `Entry.nonce`, `ReceiverState.refused` | the caller's [`ReceiverGhost`] |
//! | `ReceiverState.last_granted` | [`Receiver::last_granted`] |
//! | storage | the core [`Sender::recover`]/[`Receiver::recover`] rebuilds from the records |
//!
//! **Installation.** The model grants every sender incarnation 0 at install
//! time; the implementation's senders ask for theirs. The conformance drivers
//! install instead: sender `i` starts from the log `[Incarnation(i + 1)]` and
//! the receiver from `[Granted(i, i + 1) for each i]` ([`Layout::install`]), so
//! the implementation's incarnation `i + 1` of sender `i` is the model's 0, and
//! a later grant `k > S` is the model's `k - S` (both count grants from the
//! installation on, across all senders). An installed log that nothing was
//! appended to is the model's empty storage (`None`).
//!
//! **Payload.** The model's ghost application number `msg` of sender `s` travels
//! in the transfer: one unit from account 0 to account `1 + 256·s + msg`
//! ([`transfer_of`]). The receiver's ledger — the model's sorted list of applied
//! message ids, a duplicate being a double application — is then read off the
//! bank: the balance of a message's account is how many times it was applied.

use super::{narrow, AbstractionError, Fields};
use eo_impl::ack_retry::{
    Incarnation, Msg, Receiver, ReceiverRecord, Sender, SenderRecord, Seq, RETENTION_DEFAULT,
};
use eo_impl::bank::{AccountId, Bank, Transfer};
use eo_impl::core::{NodeId, Time};
use eo_models::ack_retry::receiver::{Dedup, Entry, ReceiverState, ReceiverStorage};
use eo_models::ack_retry::sender::{SenderState, SenderStorage};
use eo_models::ack_retry::{self as model, Inc, MsgId, NodeState, NodeStorage, Seqs};

pub use eo_models::ack_retry::sender::Ghost;

/// The account every conformance transfer debits.
pub const SOURCE_ACCOUNT: AccountId = 0;

/// The highest seq (and high-water mark) the model's [`Seqs`] sets hold.
pub const SEQ_ABSTRACT_MAX: u8 = Seqs::CAPACITY - 1;

/// Where the actors are: senders `0..senders`, then the receiver, as in the
/// model (`AckRetryCfg::into_model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub senders: u8,
}

impl Layout {
    pub fn new(senders: u8) -> Layout {
        Layout { senders }
    }

    /// The receiver's node id.
    pub fn receiver(&self) -> NodeId {
        NodeId::from(self.senders)
    }

    /// The sender index of `node`, or [`AbstractionError::UnknownNode`].
    pub fn sender_index(&self, node: NodeId) -> Result<u8, AbstractionError> {
        u8::try_from(node)
            .ok()
            .filter(|s| *s < self.senders)
            .ok_or(AbstractionError::UnknownNode {
                node,
                expected: "a sender",
            })
    }

    /// The incarnation sender `sender` is installed with: the model's 0.
    pub fn installed_incarnation(&self, sender: u8) -> Incarnation {
        u64::from(sender) + 1
    }

    /// The model's incarnation for the implementation's `incarnation` of `sender`.
    pub fn model_inc(&self, sender: u8, incarnation: Incarnation) -> Result<Inc, AbstractionError> {
        if incarnation == self.installed_incarnation(sender) {
            return Ok(0);
        }
        let installed = u64::from(self.senders);
        if incarnation <= installed {
            return Err(AbstractionError::ForeignIncarnation {
                sender: NodeId::from(sender),
                incarnation,
            });
        }
        narrow(
            "incarnation granted after installation",
            incarnation - installed,
            u8::MAX,
        )
    }

    /// The implementation's incarnation for the model's `inc` of `sender`: the
    /// inverse of [`Layout::model_inc`].
    pub fn impl_incarnation(&self, sender: u8, inc: Inc) -> Incarnation {
        if inc == 0 {
            self.installed_incarnation(sender)
        } else {
            u64::from(self.senders) + u64::from(inc)
        }
    }

    /// The installed logs: each sender's (in id order) and the receiver's.
    pub fn install(&self) -> (Vec<Vec<SenderRecord>>, Vec<ReceiverRecord>) {
        let senders = (0..self.senders)
            .map(|s| {
                vec![SenderRecord::Incarnation {
                    incarnation: self.installed_incarnation(s),
                }]
            })
            .collect();
        let receiver = (0..self.senders)
            .map(|s| ReceiverRecord::Granted {
                sender: NodeId::from(s),
                incarnation: self.installed_incarnation(s),
                nonce: crate::actors::ack_retry::INSTALLED_NONCE,
            })
            .collect();
        (senders, receiver)
    }
}

/// The transfer that carries message `id`: one unit from [`SOURCE_ACCOUNT`] to
/// the message's own account.
pub fn transfer_of(id: MsgId) -> Transfer {
    Transfer {
        from: SOURCE_ACCOUNT,
        to: 1 + (AccountId::from(id.sender) << 8) + AccountId::from(id.msg),
        amount: 1,
    }
}

/// The message id a conformance transfer carries.
pub fn msg_id_of(t: &Transfer) -> Result<MsgId, AbstractionError> {
    let foreign = || AbstractionError::ForeignPayload {
        what: format!("{t:?} is not a transfer_of a message id"),
    };
    if t.from != SOURCE_ACCOUNT || t.amount != 1 {
        return Err(foreign());
    }
    let id = account_msg(t.to).ok_or_else(foreign)?;
    if id.msg == 0 {
        return Err(foreign());
    }
    Ok(id)
}

fn account_msg(account: AccountId) -> Option<MsgId> {
    let code = account.checked_sub(1)?;
    Some(MsgId {
        sender: u8::try_from(code >> 8).ok()?,
        msg: (code & 0xff) as u8,
    })
}

/// What the model's receiver keeps and the implementation's does not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiverGhost {
    /// Per sender, the model nonce of the request its last grant answered
    /// (`None`: only the installed incarnation).
    pub nonces: Vec<Option<u8>>,
    /// The model's ghost flag for `within-window`: a data message beyond the
    /// window was refused (the implementation's `SeqBeyondWindow`) since the
    /// receiver last started.
    pub refused: bool,
}

impl ReceiverGhost {
    /// The ghost of a receiver that has only the installed incarnations.
    pub fn installed(layout: Layout) -> ReceiverGhost {
        ReceiverGhost {
            nonces: vec![None; usize::from(layout.senders)],
            refused: false,
        }
    }
}

/// The model nonces of the implementation's requests for an incarnation: the
/// driver draws the implementation's nonce at every boot, the model numbers
/// them by the sender's disk losses, so the driver records each pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Nonces(pub Vec<(u8, u64, u8)>);

impl Nonces {
    /// Records that `sender`'s implementation nonce `nonce` is the model's `model`.
    pub fn insert(&mut self, sender: u8, nonce: u64, model: u8) {
        if !self.0.iter().any(|(s, n, _)| *s == sender && *n == nonce) {
            self.0.push((sender, nonce, model));
        }
    }

    pub fn model(&self, sender: u8, nonce: u64) -> Result<u8, AbstractionError> {
        self.0
            .iter()
            .find(|(s, n, _)| *s == sender && *n == nonce)
            .map(|(_, _, m)| *m)
            .ok_or(AbstractionError::UnknownNonce {
                sender: NodeId::from(sender),
                nonce,
            })
    }
}

fn seq(what: &'static str, value: Seq) -> Result<model::Seq, AbstractionError> {
    narrow(what, value, SEQ_ABSTRACT_MAX)
}

/// The model sender's volatile state for sender `sender`'s core.
pub fn sender_state(
    layout: Layout,
    sender: u8,
    core: &Sender,
    ghost: Ghost,
) -> Result<SenderState, AbstractionError> {
    let inc = core
        .incarnation()
        .map(|i| layout.model_inc(sender, i))
        .transpose()?;
    // `next` may be one past the highest seq.
    let next = narrow("next seq", core.next_seq(), Seqs::CAPACITY)?;
    let mut outbox = Seqs::EMPTY;
    for (s, transfer) in core.outbox() {
        let s = seq("outbox seq", s)?;
        let id = msg_id_of(&transfer)?;
        let expected = MsgId {
            sender,
            msg: u8::try_from(u16::from(ghost.first) + u16::from(s) - 1).unwrap_or(u8::MAX),
        };
        if id != expected {
            return Err(AbstractionError::GhostMismatch {
                what: "the message an outbox seq carries",
                ghost: format!("{expected:?}"),
                actual: format!("{id:?}"),
            });
        }
        outbox.insert(s);
    }
    Ok(SenderState {
        inc,
        next,
        outbox,
        ghost,
    })
}

/// The model sender's storage for sender `sender`'s log: `None` for the
/// installed log with nothing appended (and no disk lost), else the state the
/// records rebuild.
pub fn sender_storage(
    layout: Layout,
    sender: u8,
    records: &[SenderRecord],
    ghost: Ghost,
) -> Result<Option<SenderStorage>, AbstractionError> {
    let (installed, _) = layout.install();
    if ghost.losses == 0 && installed.get(usize::from(sender)).map(Vec::as_slice) == Some(records) {
        return Ok(None);
    }
    let core = Sender::recover(
        NodeId::from(sender),
        layout.receiver(),
        Time::ZERO,
        0,
        records.iter().cloned(),
    )
    .map_err(|e| AbstractionError::Recover(e.to_string()))?;
    let s = sender_state(layout, sender, &core, ghost)?;
    Ok(Some(SenderStorage {
        inc: s.inc,
        next: s.next,
        outbox: s.outbox,
        ghost: s.ghost,
    }))
}

/// The model's ledger (sorted message ids, a duplicate for a double
/// application) read off a bank of conformance transfers.
pub fn ledger(bank: &Bank) -> Result<Vec<MsgId>, AbstractionError> {
    let mut ledger = Vec::new();
    let mut total: i128 = 0;
    for (&account, &balance) in bank.balances() {
        if account == SOURCE_ACCOUNT {
            continue;
        }
        let foreign = || AbstractionError::ForeignPayload {
            what: format!("account {account} with balance {balance} is no message's"),
        };
        let id = account_msg(account).ok_or_else(foreign)?;
        let times = narrow(
            "applications of one message",
            balance.max(0) as u64,
            u8::MAX,
        )?;
        if balance < 0 || id.msg == 0 {
            return Err(foreign());
        }
        total += i128::from(balance);
        ledger.extend(std::iter::repeat_n(id, usize::from(times)));
    }
    if i128::from(bank.balance(SOURCE_ACCOUNT)) != -total {
        return Err(AbstractionError::ForeignPayload {
            what: format!(
                "the source account holds {}, the messages {total}",
                bank.balance(SOURCE_ACCOUNT)
            ),
        });
    }
    // Accounts are ordered as message ids are: the ledger is sorted.
    Ok(ledger)
}

/// The model receiver's volatile state for the receiver core.
pub fn receiver_state(
    layout: Layout,
    core: &Receiver,
    ghost: &ReceiverGhost,
) -> Result<ReceiverState, AbstractionError> {
    let (ledger, senders, last_granted) = receiver_parts(layout, core, ghost)?;
    Ok(ReceiverState {
        ledger,
        senders,
        last_granted,
        pending: Vec::new(),
        pending_seqs: Vec::new(),
        refused: ghost.refused,
    })
}

fn receiver_parts(
    layout: Layout,
    core: &Receiver,
    ghost: &ReceiverGhost,
) -> Result<(Vec<MsgId>, Vec<Entry>, Inc), AbstractionError> {
    let ledger = ledger(core.bank())?;
    let snapshots = core.dedup_snapshots();
    let mut senders = Vec::with_capacity(usize::from(layout.senders));
    for s in 0..layout.senders {
        let node = NodeId::from(s);
        let Some(d) = snapshots.iter().find(|d| d.sender == node) else {
            return Err(AbstractionError::NotModelled {
                what: format!("sender {s} is not tracked (retired, or never installed)"),
            });
        };
        if d.floor != layout.installed_incarnation(s) {
            return Err(AbstractionError::NotModelled {
                what: format!(
                    "sender {s}'s entry starts at incarnation {} (retired and re-created)",
                    d.floor
                ),
            });
        }
        let inc = if d.incarnation == 0 {
            0
        } else {
            layout.model_inc(s, d.incarnation)?
        };
        let mut above = Seqs::EMPTY;
        for &q in &d.above {
            above.insert(seq("seq applied above the high-water mark", q)?);
        }
        senders.push(Entry {
            granted: layout.model_inc(s, d.granted)?,
            nonce: ghost.nonces.get(usize::from(s)).copied().flatten(),
            dedup: Dedup {
                inc,
                hwm: seq("high-water mark", d.hwm)?,
                above,
            },
        });
    }
    if let Some(extra) = snapshots.iter().find(|d| d.sender >= layout.receiver()) {
        return Err(AbstractionError::UnknownNode {
            node: extra.sender,
            expected: "a sender",
        });
    }
    let installed = u64::from(layout.senders);
    let last_granted = match core.last_granted() {
        g if g == installed => 0,
        g if g > installed => narrow("last incarnation granted", g - installed, u8::MAX)?,
        g => {
            return Err(AbstractionError::NotModelled {
                what: format!("last granted {g} below the installed incarnations"),
            })
        }
    };
    Ok((ledger, senders, last_granted))
}

/// The model receiver's storage for the receiver's log: `None` for the
/// installed log with nothing appended, else the state the records rebuild.
pub fn receiver_storage(
    layout: Layout,
    records: &[ReceiverRecord],
    ghost: &ReceiverGhost,
) -> Result<Option<ReceiverStorage>, AbstractionError> {
    if layout.install().1 == records {
        return Ok(None);
    }
    let core = Receiver::recover_with_retention(
        layout.receiver(),
        Time::ZERO,
        RETENTION_DEFAULT,
        records.iter().cloned(),
    )
    .map_err(|e| AbstractionError::Recover(e.to_string()))?;
    let (ledger, senders, last_granted) = receiver_parts(layout, &core, ghost)?;
    Ok(Some(ReceiverStorage {
        ledger,
        senders,
        last_granted,
    }))
}

/// The model's message for the implementation's `msg` from `src` to `dst`.
pub fn msg(
    layout: Layout,
    nonces: &Nonces,
    src: NodeId,
    dst: NodeId,
    msg: &Msg,
) -> Result<model::Msg, AbstractionError> {
    Ok(match *msg {
        Msg::Data {
            incarnation,
            seq: s,
            transfer,
        } => {
            let sender = layout.sender_index(src)?;
            let id = msg_id_of(&transfer)?;
            if id.sender != sender {
                return Err(AbstractionError::ForeignPayload {
                    what: format!("data from sender {sender} carries {id:?}"),
                });
            }
            model::Msg::Data {
                inc: layout.model_inc(sender, incarnation)?,
                seq: seq("data seq", s)?,
                msg: id.msg,
            }
        }
        Msg::Ack {
            incarnation,
            hwm,
            seq: s,
        } => {
            let sender = layout.sender_index(dst)?;
            model::Msg::Ack {
                inc: layout.model_inc(sender, incarnation)?,
                hwm: seq("ack hwm", hwm)?,
                seq: seq("ack seq", s)?,
            }
        }
        Msg::NewIncarnation { nonce } => {
            let sender = layout.sender_index(src)?;
            model::Msg::NewIncarnation {
                nonce: nonces.model(sender, nonce)?,
            }
        }
        Msg::Granted { nonce, incarnation } => {
            let sender = layout.sender_index(dst)?;
            model::Msg::Granted {
                nonce: nonces.model(sender, nonce)?,
                inc: layout.model_inc(sender, incarnation)?,
            }
        }
        Msg::Expired { incarnation } => {
            let sender = layout.sender_index(dst)?;
            model::Msg::Expired {
                inc: layout.model_inc(sender, incarnation)?,
            }
        }
    })
}

impl Fields for SenderState {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("inc", format!("{:?}", self.inc)),
            ("next", format!("{:?}", self.next)),
            ("outbox", format!("{:?}", self.outbox)),
            ("ghost", format!("{:?}", self.ghost)),
        ]
    }
}

impl Fields for SenderStorage {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("inc", format!("{:?}", self.inc)),
            ("next", format!("{:?}", self.next)),
            ("outbox", format!("{:?}", self.outbox)),
            ("ghost", format!("{:?}", self.ghost)),
        ]
    }
}

fn entry_fields(senders: &[Entry], out: &mut Vec<(&'static str, String)>) {
    const NAMES: [&str; 8] = [
        "senders[0]",
        "senders[1]",
        "senders[2]",
        "senders[3]",
        "senders[4]",
        "senders[5]",
        "senders[6]",
        "senders[7]",
    ];
    for (i, e) in senders.iter().enumerate() {
        let name = NAMES.get(i).copied().unwrap_or("senders[…]");
        out.push((name, format!("{e:?} nonce {:?}", e.nonce)));
    }
}

impl Fields for ReceiverState {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![("ledger", format!("{:?}", self.ledger))];
        entry_fields(&self.senders, &mut f);
        f.push(("last_granted", format!("{}", self.last_granted)));
        f.push(("pending", format!("{:?}", self.pending)));
        f.push(("refused", format!("{}", self.refused)));
        f
    }
}

impl Fields for ReceiverStorage {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![("ledger", format!("{:?}", self.ledger))];
        entry_fields(&self.senders, &mut f);
        f.push(("last_granted", format!("{}", self.last_granted)));
        f
    }
}

impl Fields for NodeState {
    fn fields(&self) -> Vec<(&'static str, String)> {
        match self {
            NodeState::Sender(s) => s.fields(),
            NodeState::Receiver(r) => r.fields(),
        }
    }
}

impl Fields for NodeStorage {
    fn fields(&self) -> Vec<(&'static str, String)> {
        match self {
            NodeStorage::Sender(s) => s.fields(),
            NodeStorage::Receiver(r) => r.fields(),
        }
    }
}
