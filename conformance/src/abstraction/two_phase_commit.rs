//! Two-phase commit: the implementation's [`Client`], [`Coordinator`] and
//! [`Participant`] mapped to the model's actors (`eo_models::two_phase_commit`).
//!
//! | model | implementation |
//! |---|---|
//! | actor id 0 (coordinator), `1..=P` (participants), `P + 1` (client) | the same [`NodeId`]s ([`Layout`]) |
//! | `TxId { tx, round: 0 }` | `TxnId { client: P + 1, seq: tx }` |
//! | `ClientState.submitted` | [`Client::next_seq`] |
//! | `ClientState.outcomes` | the `Learned` records of the client's log, by tx |
//! | `CoordinatorState.started` | `Started` records without a `Decided` one, in log order |
//! | `CoordinatorState.log` | `Decided` records, in log order |
//! | `CoordinatorState.voting` | [`Coordinator::phases`] `Preparing { yes }` (yes as a mask), in start order |
//! | `CoordinatorState.unacked` | [`Coordinator::phases`] `Deciding { acked }` (the rest as a mask), in decision order |
//! | `ParticipantState.log` | `Prepared`/`Committed`/`Aborted` records in log order |
//! | `ParticipantState.refused`, `.aborted` | [`Participant::txn_views`] `Refused`, and `Finished(Abort)` with no record (in memory only) |
//! | `ParticipantState.ledger` | the [`Bank`] balances of the per-transaction accounts ([`legs_of`]) |
//! | storage | the same read off the records alone |
//!
//! The coordinator and the client keep history the implementation forgets
//! (decisions below a client's floor) or never holds in memory (learned
//! outcomes): the functions read it from the log, which holds every record
//! since the start unless it was compacted — a snapshot record is
//! [`AbstractionError::NotModelled`].
//!
//! **Payload.** Transaction `tx` has one leg per participant on account
//! `1 + tx`: `-(P - 1)` at participant 1, `+1` at every other one (the legs sum
//! to zero, as the implementation requires). A participant's ledger — the
//! model's sorted list of the transactions it applied, a duplicate being a
//! double application — is its balance on each account divided by its delta.

use super::{narrow, AbstractionError, Fields};
use eo_impl::bank::{AccountId, Bank, Posting};
use eo_impl::core::NodeId;
use eo_impl::two_phase_commit::{
    Client, ClientRecord, Coordinator, CoordinatorRecord, Decision, Leg, Msg, Participant,
    ParticipantRecord, PhaseView, TxnId, TxnView, Vote,
};
use eo_models::two_phase_commit::client::{ClientState, ClientStorage};
use eo_models::two_phase_commit::coordinator::{
    CoordinatorState, CoordinatorStorage, Unacked, Voting,
};
use eo_models::two_phase_commit::participant::{ParticipantState, ParticipantStorage, Record};
use eo_models::two_phase_commit::{self as model, Mask, NodeState, NodeStorage, Tx, TxId};

/// The highest transaction number the model's types hold.
pub const TX_ABSTRACT_MAX: u8 = u8::MAX - 1;

/// The most participants a model [`Mask`] holds.
pub const PARTICIPANTS_ABSTRACT_MAX: u8 = Mask::BITS as u8;

/// Where the actors are, as in the model (`TwoPhaseCfg::into_model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub participants: u8,
}

impl Layout {
    /// A layout of `participants` participants: at least two (a transaction's
    /// legs must sum to zero and still tell who applied it) and at most
    /// [`PARTICIPANTS_ABSTRACT_MAX`].
    pub fn new(participants: u8) -> Result<Layout, AbstractionError> {
        if !(2..=PARTICIPANTS_ABSTRACT_MAX).contains(&participants) {
            return Err(AbstractionError::BeyondBound {
                what: "participants (at least 2)",
                value: u64::from(participants),
                max: u64::from(PARTICIPANTS_ABSTRACT_MAX),
            });
        }
        Ok(Layout { participants })
    }

    pub const COORDINATOR: NodeId = 0;

    pub fn participant(&self, index: u8) -> NodeId {
        NodeId::from(index) + 1
    }

    pub fn participant_ids(&self) -> Vec<NodeId> {
        (0..self.participants)
            .map(|i| self.participant(i))
            .collect()
    }

    pub fn client(&self) -> NodeId {
        NodeId::from(self.participants) + 1
    }

    /// The participant index (0-based) of `node`.
    pub fn participant_index(&self, node: NodeId) -> Result<u8, AbstractionError> {
        node.checked_sub(1)
            .and_then(|i| u8::try_from(i).ok())
            .filter(|i| *i < self.participants)
            .ok_or(AbstractionError::UnknownNode {
                node,
                expected: "a participant",
            })
    }

    fn mask(&self, nodes: &[NodeId]) -> Result<Mask, AbstractionError> {
        let mut mask: Mask = 0;
        for &n in nodes {
            mask |= 1 << self.participant_index(n)?;
        }
        Ok(mask)
    }

    fn all(&self) -> Mask {
        ((1u16 << self.participants) - 1) as Mask
    }

    /// The model's id of the implementation's transaction.
    pub fn tx_id(&self, txn: TxnId) -> Result<TxId, AbstractionError> {
        if txn.client != self.client() {
            return Err(AbstractionError::UnknownNode {
                node: txn.client,
                expected: "the client",
            });
        }
        Ok(TxId {
            tx: narrow("transaction seq", txn.seq, TX_ABSTRACT_MAX)?,
            round: 0,
        })
    }

    /// The implementation's id of the model's transaction `tx`.
    pub fn txn_id(&self, tx: Tx) -> TxnId {
        TxnId {
            client: self.client(),
            seq: u64::from(tx),
        }
    }

    /// The delta transaction legs post at participant `index`.
    fn delta(&self, index: u8) -> i64 {
        if index == 0 {
            -(i64::from(self.participants) - 1)
        } else {
            1
        }
    }
}

/// The legs of the model's transaction `tx` (see the module docs).
pub fn legs_of(layout: Layout, tx: Tx) -> Vec<Leg> {
    (0..layout.participants)
        .map(|i| Leg {
            participant: layout.participant(i),
            posting: Posting {
                account: 1 + AccountId::from(tx),
                delta: layout.delta(i),
            },
        })
        .collect()
}

/// Participant `index`'s ledger: the transactions applied to `bank`, sorted, a
/// duplicate for each double application.
pub fn ledger(layout: Layout, index: u8, bank: &Bank) -> Result<Vec<Tx>, AbstractionError> {
    let delta = layout.delta(index);
    let mut ledger = Vec::new();
    for (&account, &balance) in bank.balances() {
        let foreign = || AbstractionError::ForeignPayload {
            what: format!("participant {index}: account {account} holds {balance}"),
        };
        let tx = account
            .checked_sub(1)
            .and_then(|t| u8::try_from(t).ok())
            .filter(|t| *t <= TX_ABSTRACT_MAX)
            .ok_or_else(foreign)?;
        if balance % delta != 0 || balance / delta < 0 {
            return Err(foreign());
        }
        let times = narrow(
            "applications of one transaction",
            (balance / delta) as u64,
            u8::MAX,
        )?;
        ledger.extend(std::iter::repeat_n(tx, usize::from(times)));
    }
    Ok(ledger)
}

fn decision(d: Decision) -> model::Decision {
    match d {
        Decision::Commit => model::Decision::Commit,
        Decision::Abort => model::Decision::Abort,
    }
}

fn compacted(role: &str) -> AbstractionError {
    AbstractionError::NotModelled {
        what: format!("a compacted {role} log: the model keeps the history a snapshot forgets"),
    }
}

/// The client's model storage for its log (`None`: nothing logged).
pub fn client_storage(
    layout: Layout,
    records: &[ClientRecord],
) -> Result<Option<ClientStorage>, AbstractionError> {
    if records.is_empty() {
        return Ok(None);
    }
    let mut submitted: u64 = 0;
    let mut outcomes = Vec::new();
    for r in records {
        match r {
            ClientRecord::Submitted(txn) => {
                layout.tx_id(txn.id)?;
                submitted = submitted.max(txn.id.seq + 1);
            }
            ClientRecord::Learned { txn, decision: d } => {
                outcomes.push((layout.tx_id(*txn)?, decision(*d)));
            }
            ClientRecord::Snapshot(_) => return Err(compacted("client")),
        }
    }
    outcomes.sort_by_key(|(t, _)| t.tx);
    Ok(Some(ClientStorage {
        submitted: narrow("transactions submitted", submitted, TX_ABSTRACT_MAX)?,
        outcomes,
    }))
}

/// The client's model state: its core, and its log for the outcomes it learned.
pub fn client_state(
    layout: Layout,
    core: &Client,
    records: &[ClientRecord],
) -> Result<ClientState, AbstractionError> {
    let stored = client_storage(layout, records)?;
    let outcomes = stored.map(|s| s.outcomes).unwrap_or_default();
    let submitted = narrow("transactions submitted", core.next_seq(), TX_ABSTRACT_MAX)?;
    for (t, _) in &outcomes {
        if core.pending().contains(&layout.txn_id(t.tx)) {
            return Err(AbstractionError::GhostMismatch {
                what: "a learned transaction",
                ghost: format!("{t:?} learned in the log"),
                actual: "still pending in the core".into(),
            });
        }
    }
    Ok(ClientState {
        submitted,
        outcomes,
        retries: 0,
    })
}

/// The coordinator's model storage for its log (`None`: nothing logged).
pub fn coordinator_storage(
    layout: Layout,
    records: &[CoordinatorRecord],
) -> Result<Option<CoordinatorStorage>, AbstractionError> {
    if records.is_empty() {
        return Ok(None);
    }
    let mut started = Vec::new();
    let mut log: Vec<(TxId, model::Decision)> = Vec::new();
    for r in records {
        match r {
            CoordinatorRecord::Started(s) => started.push(layout.tx_id(s.txn)?),
            CoordinatorRecord::Decided(d) => {
                let t = layout.tx_id(d.txn)?;
                if !log.iter().any(|(u, _)| *u == t) {
                    log.push((t, decision(d.decision)));
                }
                started.retain(|u| *u != t);
            }
            // Forgetting finished transactions is not modelled: the model
            // keeps every decision, and so does the log.
            CoordinatorRecord::Floor { .. } => {}
            CoordinatorRecord::Snapshot(_) => return Err(compacted("coordinator")),
        }
    }
    Ok(Some(CoordinatorStorage { started, log }))
}

/// The coordinator's model state: its core, and its log for the history.
pub fn coordinator_state(
    layout: Layout,
    core: &Coordinator,
    records: &[CoordinatorRecord],
) -> Result<CoordinatorState, AbstractionError> {
    let stored = coordinator_storage(layout, records)?.unwrap_or(CoordinatorStorage {
        started: Vec::new(),
        log: Vec::new(),
    });
    let phases = core.phases();
    let mut voting = Vec::new();
    let mut unacked = Vec::new();
    for (txn, participants, phase) in &phases {
        let tx = layout.tx_id(*txn)?;
        let everyone = layout.mask(participants)?;
        if everyone != layout.all() {
            return Err(AbstractionError::NotModelled {
                what: format!("{txn} spans only some participants"),
            });
        }
        match phase {
            PhaseView::Preparing { yes } => voting.push(Voting {
                tx,
                yes: layout.mask(yes)?,
            }),
            PhaseView::Deciding { decision: d, acked } => unacked.push(Unacked {
                tx,
                decision: decision(*d),
                waiting: everyone & !layout.mask(acked)?,
            }),
            PhaseView::Done { .. } => {}
        }
    }
    // The model lists votes in start order and decisions in decision order.
    let position = |log: &[TxId], t: TxId| log.iter().position(|u| *u == t);
    let started_order: Vec<TxId> = records
        .iter()
        .filter_map(|r| match r {
            CoordinatorRecord::Started(s) => layout.tx_id(s.txn).ok(),
            _ => None,
        })
        .collect();
    voting.sort_by_key(|v| position(&started_order, v.tx));
    let decided: Vec<TxId> = stored.log.iter().map(|(t, _)| *t).collect();
    unacked.sort_by_key(|u| position(&decided, u.tx));
    // A decision held in memory but not in the log, or the reverse, has no
    // model state.
    for u in &unacked {
        if position(&decided, u.tx).is_none() {
            return Err(AbstractionError::GhostMismatch {
                what: "a decision being re-sent",
                ghost: "not in the log".into(),
                actual: format!("{:?} deciding", u.tx),
            });
        }
    }
    Ok(CoordinatorState {
        started: stored.started,
        log: stored.log,
        voting,
        unacked,
        unlogged: Vec::new(),
    })
}

fn participant_log(
    layout: Layout,
    records: &[ParticipantRecord],
) -> Result<Vec<Record>, AbstractionError> {
    let mut log = Vec::new();
    for r in records {
        match r {
            ParticipantRecord::Prepared(p) => log.push(Record::Prepared(layout.tx_id(p.txn)?)),
            ParticipantRecord::Committed { txn, .. } => {
                log.push(Record::Committed(layout.tx_id(*txn)?))
            }
            ParticipantRecord::Aborted { txn } => log.push(Record::Aborted(layout.tx_id(*txn)?)),
            ParticipantRecord::Floor { .. } => {}
            ParticipantRecord::Snapshot(_) => return Err(compacted("participant")),
        }
    }
    Ok(log)
}

/// Participant `index`'s model storage for its log (`None`: nothing logged).
pub fn participant_storage(
    layout: Layout,
    index: u8,
    records: &[ParticipantRecord],
) -> Result<Option<ParticipantStorage>, AbstractionError> {
    if records.is_empty() {
        return Ok(None);
    }
    let log = participant_log(layout, records)?;
    let mut bank = Bank::new();
    for r in records {
        if let ParticipantRecord::Committed { posting, .. } = r {
            bank.post(posting)
                .map_err(|e| AbstractionError::Recover(e.to_string()))?;
        }
    }
    Ok(Some(ParticipantStorage {
        log,
        ledger: ledger(layout, index, &bank)?,
    }))
}

/// Participant `index`'s model state: its core, and its log for the order of
/// its records. A refusal (a no vote, in memory only) is the model's
/// `refused`; a transaction finished aborted with no record in the log (the
/// abort of a transaction never prepared here, in memory only) its `aborted`.
pub fn participant_state(
    layout: Layout,
    index: u8,
    core: &Participant,
    records: &[ParticipantRecord],
) -> Result<ParticipantState, AbstractionError> {
    let log = participant_log(layout, records)?;
    let mut refused = Vec::new();
    let mut aborted = Vec::new();
    for (txn, view) in core.txn_views() {
        let t = layout.tx_id(txn)?;
        let logged = log.iter().any(|r| r.tx() == t);
        match view {
            TxnView::Refused => refused.push(t),
            TxnView::Finished(Decision::Abort) if !logged => aborted.push(t),
            _ => {}
        }
    }
    refused.sort();
    aborted.sort();
    Ok(ParticipantState {
        log,
        ledger: ledger(layout, index, core.bank())?,
        queries: 0,
        unpersisted: None,
        refused,
        aborted,
    })
}

/// The model's message for the implementation's `msg`. A participant's query
/// is the model's repeated `Yes` (the model's participants query by voting
/// again); `Busy` has no model counterpart.
pub fn msg(layout: Layout, msg: &Msg) -> Result<model::Msg, AbstractionError> {
    Ok(match msg {
        Msg::Begin { txn, .. } => model::Msg::Begin(layout.tx_id(txn.id)?.tx),
        Msg::Outcome { txn, decision } => match decision {
            Decision::Commit => model::Msg::Committed(layout.tx_id(*txn)?),
            Decision::Abort => model::Msg::Aborted(layout.tx_id(*txn)?),
        },
        Msg::Prepare { txn, .. } => model::Msg::Prepare(layout.tx_id(*txn)?),
        Msg::Vote { txn, vote } => match vote {
            Vote::Yes => model::Msg::Yes(layout.tx_id(*txn)?),
            Vote::No => model::Msg::No(layout.tx_id(*txn)?),
        },
        Msg::Decision { txn, decision } => match decision {
            Decision::Commit => model::Msg::Commit(layout.tx_id(*txn)?),
            Decision::Abort => model::Msg::Abort(layout.tx_id(*txn)?),
        },
        Msg::Ack { txn, .. } => model::Msg::Ack(layout.tx_id(*txn)?),
        Msg::Query { txn, .. } => model::Msg::Yes(layout.tx_id(*txn)?),
        Msg::Busy { txn, reason } => {
            return Err(AbstractionError::NotModelled {
                what: format!("busy answer for {txn} ({reason:?})"),
            })
        }
    })
}

impl Fields for ClientState {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("submitted", format!("{}", self.submitted)),
            ("outcomes", format!("{:?}", self.outcomes)),
            ("retries", format!("{}", self.retries)),
        ]
    }
}

impl Fields for ClientStorage {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("submitted", format!("{}", self.submitted)),
            ("outcomes", format!("{:?}", self.outcomes)),
        ]
    }
}

impl Fields for CoordinatorState {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("started", format!("{:?}", self.started)),
            ("log", format!("{:?}", self.log)),
            ("voting", format!("{:?}", self.voting)),
            ("unacked", format!("{:?}", self.unacked)),
            ("unlogged", format!("{:?}", self.unlogged)),
        ]
    }
}

impl Fields for CoordinatorStorage {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("started", format!("{:?}", self.started)),
            ("log", format!("{:?}", self.log)),
        ]
    }
}

impl Fields for ParticipantState {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("log", format!("{:?}", self.log)),
            ("ledger", format!("{:?}", self.ledger)),
            ("queries", format!("{}", self.queries)),
            ("unpersisted", format!("{:?}", self.unpersisted)),
            ("refused", format!("{:?}", self.refused)),
            ("aborted", format!("{:?}", self.aborted)),
        ]
    }
}

impl Fields for ParticipantStorage {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("log", format!("{:?}", self.log)),
            ("ledger", format!("{:?}", self.ledger)),
        ]
    }
}

impl Fields for NodeState {
    fn fields(&self) -> Vec<(&'static str, String)> {
        match self {
            NodeState::Coordinator(s) => s.fields(),
            NodeState::Participant(s) => s.fields(),
            NodeState::Client(s) => s.fields(),
        }
    }
}

impl Fields for NodeStorage {
    fn fields(&self) -> Vec<(&'static str, String)> {
        match self {
            NodeStorage::Coordinator(s) => s.fields(),
            NodeStorage::Participant(s) => s.fields(),
            NodeStorage::Client(s) => s.fields(),
        }
    }
}
