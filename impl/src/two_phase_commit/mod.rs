//! # Two-phase commit with presumed abort: sans-IO cores for every role
//!
//! A [`Client`] submits a [`Txn`]: one [`Posting`] per [`Participant`] (a bank),
//! for example a debit at one bank and the matching credit at another. Money is
//! conserved across the banks only if every participant commits or none does. The
//! [`Coordinator`] runs the two phases:
//!
//! ```text
//! Client            Coordinator                         Participant (each)
//!   | [Submitted]      |                                     |
//!   |--- Begin ------->| [Started]                           |
//!   |                  |--- Prepare ------------------------>| [Prepared] (yes only)
//!   |                  |<-- Vote(yes|no) --------------------|
//!   |                  | [Decided]                           |
//!   |<-- Outcome ------|--- Decision(commit|abort) --------->| [Committed|Aborted]
//!   | [Learned]        |<-- Ack -----------------------------|
//! ```
//!
//! `[X]` is a record the node appends to its log; the messages to its right leave
//! only once it is durable (see [`crate::core`]): "started" states "if I crash
//! before deciding, I will abort this", a yes vote states "I can commit no matter
//! what", a decision states "this is final", an outcome tells the client something
//! it must be able to rely on after any crash.
//!
//! ## Presumed abort
//!
//! A transaction without a logged decision is aborted. The coordinator records
//! each transaction as **started** (`Started`: its id and participants) before it
//! sends Prepare, in the same `Ready`, so no Prepare leaves before the record is
//! durable. The votes are kept in memory only. A recovered coordinator therefore
//! knows every transaction it may have asked anyone to prepare, and aborts each
//! started one it holds no decision for **at once**: it logs `Decided(Abort)`
//! (the *presumption*, made durable like every decision), sends Abort to the
//! participants until they acknowledge, and tells the client. A client retry of
//! the same id then finds the logged Abort and is answered with it: a transaction
//! is never run twice, and "abort" is only ever said from a logged decision (or,
//! below the cleanup floor, to a participant that cannot be waiting for a commit —
//! see cleanup), so the coordinator never commits an id for which it said
//! "abort". The price is one more record per transaction and a sync before its
//! Prepares leave (a new round used to write nothing); a driver with group commit
//! shares that sync among the Begins that arrive together.
//!
//! A Begin for an id the coordinator does not hold (and that is not below the
//! floor) starts a round. An id begun before a crash is held again after it
//! (started, hence decided by recovery, or decided) unless the crash lost its
//! `Started` record; then its Prepares never left and nobody heard of it, so the
//! new round is its first. Within one incarnation an id in progress is never
//! restarted.
//!
//! A participant that voted yes never decides alone: it asks the coordinator
//! (`Query`) on a timer with bounded backoff until it gets the decision.
//!
//! ## Cleanup and why duplicates cannot apply twice
//!
//! Transaction ids are `(client, seq)` with `seq` counting up from 0 per client,
//! and a client keeps at most [`CLIENT_PENDING_TXNS_MAX`] consecutive ids
//! outstanding. Every `Begin` carries the client's `low`: the smallest `seq` whose
//! outcome the client has not yet durably learned.
//!
//! - The **coordinator** keeps, per client, a `floor`: every transaction of that
//!   client with `seq < floor` is decided, acknowledged by all its participants,
//!   and known to the client. It forgets a transaction only when the floor passes
//!   it; it raises the floor to the smallest `seq` that is below the client's
//!   `low` and not yet fully acknowledged (or to `low`). A finished transaction at
//!   or above the floor stays as a small tombstone (id, participants, decision)
//!   that answers late retries and queries. Below the floor: a `Begin` is a
//!   network duplicate (the client never retries what it has learned) and is
//!   dropped; a `Query` can only come from a participant that already finished the
//!   transaction (it ignores any answer) or that re-prepared a late duplicate
//!   `Prepare` of an *aborted* one (a committed one is never re-prepared, below),
//!   so the answer Abort is safe. A committed transaction is therefore never
//!   forgotten while anyone could still need "commit", which is exactly the unsafe
//!   case of presumed abort.
//! - Each `Prepare` carries the coordinator's floor for the transaction's client.
//!   A **participant** keeps every transaction it finished (committed, aborted,
//!   refused) until that floor passes it, and drops any `Prepare` below the floor:
//!   so a late duplicate `Prepare` of a finished transaction never re-prepares it,
//!   and a late duplicate `Commit` finds it committed (or below the floor) and is
//!   only acknowledged. Committing is one record holding both the posting and the
//!   "committed" mark, so a crash cannot split them.
//! - An `Ack` carries the decision the participant *holds* (`None` below its
//!   floor), not the one it received: after a coordinator crash rolls its floor
//!   back to its snapshot, a stale below-floor "abort" may reach a participant that
//!   committed; it acknowledges `Commit`, which the recovered coordinator (holding
//!   the logged Commit again) counts. An ack holding the other decision than the
//!   logged one is [`Error::AckMismatch`]: atomicity broken.
//! - Every floor raise is logged as a small `Floor { client, floor }` record
//!   (coordinator and participant) that needs no sync of its own: it rides with
//!   the next `Ready`. Replay drops every record below a logged floor (the
//!   coordinator's `Started` and `Decided` alike), so recovery rebuilds exactly
//!   the bounded state the live core had when it wrote the log, however long the
//!   log grew without compaction. A floor record lost in a crash
//!   only rolls the floor back to an earlier logged one (or the snapshot's): the
//!   node then holds, and re-sends, a few more finished transactions, which is
//!   never less safe than forgetting them.
//!
//! State is bounded: the coordinator by [`COORDINATOR_TXNS_MAX`] and
//! [`COORDINATOR_CLIENTS_MAX`] (a `Begin` beyond them is dropped; the client
//! retries), a participant by [`PARTICIPANT_TXNS_MAX`] and
//! [`PARTICIPANT_CLIENTS_MAX`] (it votes no), a client by
//! [`CLIENT_PENDING_TXNS_MAX`], a transaction by [`TXN_PARTICIPANTS_MAX`].
//!
//! ## Tracing
//!
//! Every protocol step emits one `tracing` event at debug level under the target
//! [`TRACE_TARGET`] with the fields `node`, `role` (`"client"`, `"coordinator"`,
//! `"participant"`), `step` (one of [`step::ALL`]), `txn` (`client:seq`, or `"-"`
//! for a whole-node step), `persisted` (the record kind appended, or `"none"`) and
//! `sent` (the message kind sent, or `"none"`), plus step-specific fields.
//!
//! ## Driving the cores
//!
//! Each role is a [`Core`](crate::core::Core); [`Node`] wraps the three so a
//! driver can hold a whole cluster in one map. All roles speak [`Msg`] and emit
//! [`Event`]; each has its own record type. Build a node with `new`, or after a
//! crash with `recover(…, now, records)` from exactly the records it persisted
//! (a snapshot first, if any). Compact a log by replacing it with `snapshot()`,
//! taken only after the last `poll_ready` has been carried out.

use crate::bank::{AccountId, Amount, Posting};
use crate::core::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

mod client;
mod coordinator;
mod node;
mod participant;
#[cfg(test)]
mod tests;

pub use client::{Client, ClientProtocol, ClientRecord, ClientSnapshot};
pub use coordinator::{
    Coordinator, CoordinatorProtocol, CoordinatorRecord, CoordinatorSnapshot, DecidedTxn,
    PhaseView, StartedTxn,
};
pub use node::{Node, NodeRecord, Role};
pub use participant::{
    FinishedTxn, Participant, ParticipantProtocol, ParticipantRecord, ParticipantSnapshot,
    PreparedTxn, TxnView,
};

/// Most participants one transaction may span.
pub const TXN_PARTICIPANTS_MAX: usize = 8;
/// Largest magnitude of one posting's `delta` (as ack-retry's `AMOUNT_MAX`). With
/// [`crate::bank::BALANCE_MAX`] it keeps every sum a participant computes far
/// from overflow; a participant refuses a Prepare beyond it with a typed error.
pub const POSTING_DELTA_MAX: Amount = 1_000_000_000;
/// Most consecutive transaction ids a client keeps outstanding: it submits `seq`
/// only if `seq < low + CLIENT_PENDING_TXNS_MAX`.
pub const CLIENT_PENDING_TXNS_MAX: u64 = 64;
/// Most clients a coordinator keeps a floor for.
pub const COORDINATOR_CLIENTS_MAX: usize = 256;
/// Most transactions (in progress, decided or tombstones) a coordinator holds:
/// one full window per client (16,384).
///
/// Why idle clients cannot fill it: once every transaction of a client below its
/// reported `low` is acknowledged by all participants, the last acknowledgement
/// raises the floor to `low`, and every entry the coordinator holds for that
/// client is then at or above `low` and below `low + CLIENT_PENDING_TXNS_MAX` (a
/// Begin outside that window is refused). So an idle client holds at most one
/// window of tombstones, and all clients together at most this. Only
/// transactions still waiting for acknowledgements (a participant down or slow)
/// can hold a floor back and make a client exceed its window; reaching the bound
/// then drops new Begins (the clients retry): 2PC blocks, it does not break.
pub const COORDINATOR_TXNS_MAX: usize = COORDINATOR_CLIENTS_MAX * CLIENT_PENDING_TXNS_MAX as usize;
const _: () = assert!(
    COORDINATOR_TXNS_MAX >= COORDINATOR_CLIENTS_MAX * CLIENT_PENDING_TXNS_MAX as usize,
    "every client must be able to leave a full window of tombstones"
);
/// Most clients a participant keeps a floor for.
pub const PARTICIPANT_CLIENTS_MAX: usize = 256;
/// Most transactions (prepared or finished) a participant holds: one full window
/// per client, as for the coordinator (16,384). A participant's floor for a client
/// moves only with that client's next `Prepare`, and carries the coordinator's
/// floor at the time it was sent, which may lag the client's `low` by the
/// transactions whose acknowledgements were still in flight; so an idle client can
/// leave somewhat more than one window here. Reaching the bound only makes the
/// participant vote no (safe; the client sees aborts until the floors move).
pub const PARTICIPANT_TXNS_MAX: usize = PARTICIPANT_CLIENTS_MAX * CLIENT_PENDING_TXNS_MAX as usize;
const _: () = assert!(
    PARTICIPANT_TXNS_MAX >= PARTICIPANT_CLIENTS_MAX * CLIENT_PENDING_TXNS_MAX as usize,
    "every client must be able to leave a full window of finished transactions"
);

/// First interval between a client's Begin retries; doubles per retry.
pub const CLIENT_RETRY_INTERVAL_MIN: Duration = Duration::from_millis(200);
/// Longest interval between a client's Begin retries.
pub const CLIENT_RETRY_INTERVAL_MAX: Duration = Duration::from_millis(3_200);
/// Interval between re-sends of Prepare to participants that have not voted.
pub const PREPARE_RETRY_INTERVAL: Duration = Duration::from_millis(50);
/// How long the coordinator waits for all votes before aborting unilaterally.
pub const VOTE_TIMEOUT: Duration = Duration::from_millis(400);
/// First interval between re-sends of a decision to unacknowledged participants.
pub const DECISION_RETRY_INTERVAL_MIN: Duration = Duration::from_millis(50);
/// Longest interval between re-sends of a decision.
pub const DECISION_RETRY_INTERVAL_MAX: Duration = Duration::from_millis(1_600);
/// First interval before a prepared participant queries the coordinator.
pub const QUERY_INTERVAL_MIN: Duration = Duration::from_millis(500);
/// Longest interval between a prepared participant's queries.
pub const QUERY_INTERVAL_MAX: Duration = Duration::from_millis(3_200);

/// A transaction's id, chosen by its client: `seq` counts up from 0 per client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxnId {
    pub client: NodeId,
    pub seq: u64,
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.client, self.seq)
    }
}

/// One participant's share of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Leg {
    pub participant: NodeId,
    pub posting: Posting,
}

/// A transaction: one posting per participant, all applied or none.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Txn {
    pub id: TxnId,
    pub legs: Vec<Leg>,
}

impl Txn {
    /// The participants, in the order of the legs.
    pub fn participants(&self) -> Vec<NodeId> {
        self.legs.iter().map(|l| l.participant).collect()
    }
}

/// Checks a participant list: 1..=[`TXN_PARTICIPANTS_MAX`] distinct nodes.
pub(crate) fn check_participants(participants: &[NodeId]) -> Result<(), &'static str> {
    if participants.is_empty() {
        return Err("no participant");
    }
    if participants.len() > TXN_PARTICIPANTS_MAX {
        return Err("too many participants");
    }
    let distinct: BTreeSet<NodeId> = participants.iter().copied().collect();
    if distinct.len() != participants.len() {
        return Err("a participant appears twice");
    }
    Ok(())
}

/// Checks a posting: `|delta| <= POSTING_DELTA_MAX`.
pub(crate) fn check_posting(posting: &Posting) -> Result<(), &'static str> {
    if posting.delta.unsigned_abs() > POSTING_DELTA_MAX.unsigned_abs() {
        return Err("posting beyond POSTING_DELTA_MAX");
    }
    Ok(())
}

/// Checks a transaction's legs: a valid participant list, every posting within
/// [`POSTING_DELTA_MAX`], and postings that sum to zero (money is moved, never
/// created or destroyed).
pub(crate) fn check_legs(legs: &[Leg]) -> Result<(), &'static str> {
    let participants: Vec<NodeId> = legs.iter().map(|l| l.participant).collect();
    check_participants(&participants)?;
    for leg in legs {
        check_posting(&leg.posting)?;
    }
    let sum: i128 = legs.iter().map(|l| i128::from(l.posting.delta)).sum();
    if sum != 0 {
        return Err("postings do not sum to zero");
    }
    Ok(())
}

/// Builds the legs of a transfer of `amount` from an account at one participant
/// to an account at another. `|amount|` must be at most [`POSTING_DELTA_MAX`] for
/// the transaction to be accepted.
pub fn transfer_legs(
    from: (NodeId, AccountId),
    to: (NodeId, AccountId),
    amount: Amount,
) -> Vec<Leg> {
    vec![
        Leg {
            participant: from.0,
            posting: Posting {
                account: from.1,
                // Saturating: `i64::MIN` gives legs that do not sum to zero, which
                // `Client::submit` refuses, instead of overflowing here.
                delta: amount.saturating_neg(),
            },
        },
        Leg {
            participant: to.0,
            posting: Posting {
                account: to.1,
                delta: amount,
            },
        },
    ]
}

/// The coordinator's decision for a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Decision {
    Commit,
    Abort,
}

/// A participant's answer to Prepare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Vote {
    Yes,
    No,
}

/// How a participant votes, decided by the application and deterministic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VotePolicy {
    /// Always yes.
    Yes,
    /// Always no (a participant that refuses everything).
    No,
    /// No if a debit could take the account below `min`, counting the debits
    /// already prepared on it (credits are not counted until committed).
    MinBalance(Amount),
}

/// Wire messages of two-phase commit, shared by all roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Client → coordinator: run `txn` (first send or a retry of the same id).
    /// `low` is the client's smallest seq whose outcome it has not learned.
    Begin { txn: Txn, low: u64 },
    /// Coordinator → client: the decision for `txn`, logged before it is sent.
    Outcome { txn: TxnId, decision: Decision },
    /// Coordinator → participant: stage `posting` and vote. `floor`: every
    /// transaction of `txn.client` below it is finished everywhere.
    Prepare {
        txn: TxnId,
        posting: Posting,
        participants: Vec<NodeId>,
        floor: u64,
    },
    /// Participant → coordinator; a yes vote is sent only once "prepared" is durable.
    Vote { txn: TxnId, vote: Vote },
    /// Coordinator → participant: the logged decision (also the answer to Query).
    Decision { txn: TxnId, decision: Decision },
    /// Participant → coordinator: acknowledges a decision for `txn`. `held` is the
    /// decision this participant holds (durable if it had prepared), or `None` if
    /// `txn` is below its floor: finished long ago and forgotten. A stale presumed
    /// abort reaching a participant that committed is acknowledged as `Commit`.
    Ack { txn: TxnId, held: Option<Decision> },
    /// Participant → coordinator: "I am prepared; what was decided?"
    Query {
        txn: TxnId,
        participants: Vec<NodeId>,
    },
    /// Coordinator → client: `txn` was not started because the coordinator is at
    /// a bound (`reason`); nothing was recorded. The client tells its application
    /// and retries later with a longer backoff.
    Busy { txn: TxnId, reason: Busy },
}

/// Which bound made a coordinator answer [`Msg::Busy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Busy {
    /// [`COORDINATOR_TXNS_MAX`] transactions are held.
    Transactions,
    /// [`COORDINATOR_CLIENTS_MAX`] clients are tracked.
    Clients,
}

impl Msg {
    /// The message kind, as traced in the `sent` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Begin { .. } => "begin",
            Msg::Outcome { .. } => "outcome",
            Msg::Prepare { .. } => "prepare",
            Msg::Vote { .. } => "vote",
            Msg::Decision { .. } => "decision",
            Msg::Ack { .. } => "ack",
            Msg::Query { .. } => "query",
            Msg::Busy { .. } => "busy",
        }
    }
}

/// Application-visible outcomes, released once the records behind them are durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Client: the outcome of one of its transactions, learned for good.
    Outcome { txn: TxnId, decision: Decision },
    /// Coordinator: a decision was logged.
    Decided { txn: TxnId, decision: Decision },
    /// Participant: a posting was applied to the bank (exactly once per txn).
    Committed { txn: TxnId, posting: Posting },
    /// Participant: a prepared posting was discarded.
    Aborted { txn: TxnId },
    /// Client: the coordinator is at a bound and did not start `txn` yet; the
    /// client keeps it pending and retries after `retry_in` (backpressure, not an
    /// outcome).
    Busy {
        txn: TxnId,
        reason: Busy,
        retry_in: Duration,
    },
}

/// A client command that cannot be accepted; nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// [`CLIENT_PENDING_TXNS_MAX`] consecutive ids are outstanding; wait for an outcome.
    #[error("window full: {pending} transactions pending from seq {low}")]
    WindowFull { low: u64, pending: usize },
    /// The legs do not form a valid transaction: participants, a posting beyond
    /// [`POSTING_DELTA_MAX`], or postings that do not sum to zero.
    #[error("invalid transaction: {0}")]
    Invalid(&'static str),
}

/// Protocol-level errors: a peer or the log said something impossible. The core's
/// state is unchanged by the input that caused one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A message this role never receives, or from a node that may not send it.
    #[error("unexpected {kind} from node {from}")]
    UnexpectedMessage { from: NodeId, kind: &'static str },
    /// A vote, acknowledgement or query from a node that is not a participant of the transaction.
    #[error("node {from} is not a participant of {txn}")]
    NotAParticipant { txn: TxnId, from: NodeId },
    /// A transaction (or participant list) that is empty, too large, repeats a node
    /// or names an unknown one; or a posting beyond [`POSTING_DELTA_MAX`], or
    /// postings that do not sum to zero.
    #[error("invalid transaction {txn}: {reason}")]
    InvalidTxn { txn: TxnId, reason: &'static str },
    /// A Begin whose `low` does not fit its id (`low <= seq < low + window`).
    #[error("begin for {txn} with low {low} outside the client window")]
    OutsideWindow { txn: TxnId, low: u64 },
    /// A Prepare whose posting differs from the one already prepared under the same id.
    #[error("conflicting prepare for {txn}")]
    ConflictingPrepare { txn: TxnId },
    /// A Commit for a transaction this participant never prepared: the coordinator committed without its yes vote.
    #[error("commit for {txn}, which was never prepared here")]
    CommitNeverPrepared { txn: TxnId },
    /// A Commit for a transaction this participant aborted or voted no on: atomicity is broken.
    #[error("commit for {txn}, which was aborted here")]
    CommitAfterAbort { txn: TxnId },
    /// A Commit whose posting the bank refuses ([`crate::bank::BALANCE_MAX`]). A
    /// participant votes yes only if every staged posting fits, so this means its
    /// own bookkeeping is broken; the transaction stays prepared.
    #[error("commit for {txn} would take a balance beyond BALANCE_MAX")]
    BalanceOutOfRange { txn: TxnId },
    /// An acknowledgement for a transaction still collecting votes: nobody was told a decision.
    #[error("ack from {from} for {txn} before any decision")]
    AckBeforeDecision { txn: TxnId, from: NodeId },
    /// An acknowledgement holding a decision other than the logged one: atomicity is broken.
    #[error("ack from {from} for {txn} disagrees with the logged decision")]
    AckMismatch { txn: TxnId, from: NodeId },
    /// An outcome for a transaction this client never submitted.
    #[error("outcome for {txn}, which this client never submitted")]
    OutcomeForUnknown { txn: TxnId },
    /// Recovery: a snapshot record after the first record.
    #[error("recovery: snapshot at record {index}, not first")]
    SnapshotNotFirst { index: usize },
    /// Recovery: a record that contradicts the records before it.
    #[error("recovery: record {index} for {txn}: {reason}")]
    CorruptLog {
        index: usize,
        txn: TxnId,
        reason: &'static str,
    },
    /// Recovery: a record that takes the rebuilt state beyond a bound the live
    /// core enforces (`bound` names the constant: more transactions or clients
    /// than it ever holds), so the role could not have written this log.
    #[error("recovery: record {index} for {txn} goes beyond {bound}")]
    LogBeyondBound {
        index: usize,
        txn: TxnId,
        bound: &'static str,
    },
    /// Recovery: a record written by another role.
    #[error("recovery: record {index} belongs to another role")]
    WrongRole { index: usize },
}

/// The `tracing` target of every two-phase-commit event.
pub const TRACE_TARGET: &str = "eo::two_phase_commit";

/// The fixed set of `step` values in trace events.
pub mod step {
    /// Client: a new transaction was recorded and its Begin sent.
    pub const BEGIN: &str = "begin";
    /// Coordinator: Prepare sent to every participant (first round or a re-send).
    pub const PREPARE: &str = "prepare";
    /// Participant: voted; coordinator: counted a vote.
    pub const VOTE: &str = "vote";
    /// Coordinator: logged a decision and sent it.
    pub const DECIDE: &str = "decide";
    /// Participant: applied a posting (or acknowledged a duplicate Commit).
    pub const COMMIT: &str = "commit";
    /// Participant: discarded a prepared posting (or acknowledged an Abort).
    pub const ABORT: &str = "abort";
    /// Coordinator: counted an acknowledgement.
    pub const ACK: &str = "ack";
    /// Participant: asked for a decision; coordinator: answered a query.
    pub const QUERY: &str = "query";
    /// Client: re-sent a Begin; coordinator: re-sent a decision or answered a retried Begin.
    pub const RETRY: &str = "retry";
    /// Client: durably learned an outcome.
    pub const OUTCOME: &str = "outcome";
    /// Coordinator or participant: dropped finished transactions below a raised floor.
    pub const FORGET: &str = "forget";
    /// Any role: rebuilt from its log.
    pub const RECOVER: &str = "recover";
    /// Any role: a message with no effect (stale, duplicate, in progress, or over a bound).
    pub const IGNORE: &str = "ignore";
    /// Coordinator: a Begin refused at a bound (`busy` sent); client: the refusal
    /// reported to the application, the retry pushed back.
    pub const BUSY: &str = "busy";

    /// Every step, for validators.
    pub const ALL: [&str; 14] = [
        BEGIN, PREPARE, VOTE, DECIDE, COMMIT, ABORT, ACK, QUERY, RETRY, OUTCOME, FORGET, RECOVER,
        IGNORE, BUSY,
    ];
}

/// Role names, as traced in the `role` field.
pub(crate) mod role {
    pub const CLIENT: &str = "client";
    pub const COORDINATOR: &str = "coordinator";
    pub const PARTICIPANT: &str = "participant";
}

/// `min`, doubled `attempt` times, at most `max`.
pub(crate) fn backoff(min: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.min(16);
    min.saturating_mul(factor).min(max)
}
