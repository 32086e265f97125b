//! # Ack-retry: exactly-once delivery over a lossy, duplicating, reordering network
//!
//! A [`Sender`] owns a durable *outbox*. Submitting a transfer assigns it the
//! sender's next sequence number and produces a [`SenderRecord::Submitted`]; the
//! first copy of the message leaves only once that record is durable (it is in the
//! same [`Ready`](crate::Ready), after the record). The sender keeps up to
//! [`WINDOW_MAX`] messages in flight and retransmits each one with exponential
//! backoff, from [`RETRY_INTERVAL_MIN`] doubling up to [`RETRY_INTERVAL_MAX`],
//! until it is acknowledged; acknowledged messages leave the outbox through a
//! [`SenderRecord::Acked`].
//!
//! A [`Receiver`] applies each message to its [`Bank`](crate::bank::Bank) exactly
//! once. Its deduplication state is bounded: per sender (and its current
//! incarnation) a *high-water mark* `hwm`
//! (every seq `<= hwm` is applied) and the set of seqs above it that are applied
//! out of order, all within `(hwm, hwm + WINDOW_MAX]`. The bank effect and the
//! dedup update are one [`ReceiverRecord::Applied`], and the [`Msg::Ack`] is
//! released only after it: an acknowledgement states a durable fact. A
//! redelivery (seq `<= hwm` or in the set) is acknowledged again, never applied
//! again. A seq beyond `hwm + WINDOW_MAX` is rejected with a typed error.
//!
//! ## Why the window bounds the receiver
//!
//! The sender admits seq `s` only while `s < base + WINDOW_MAX`, where `base` is
//! the oldest unacknowledged seq (or the next seq if the outbox is empty). Every
//! seq below `base` was acknowledged, hence durably applied, so the receiver's
//! `hwm >= base - 1` and `s <= hwm + WINDOW_MAX`: a correct sender never trips the
//! receiver's window check, and the out-of-order set never holds more than
//! [`DEDUP_ABOVE_MAX`] seqs. Sequence numbers are never reused for a message that
//! left the sender within an incarnation: a message leaves only after its
//! `Submitted` record is durable, and a recovered sender resumes after the highest
//! durable seq.
//!
//! ## Incarnations: a sender that loses its disk
//!
//! A sender's seqs belong to an *incarnation* granted by the receiver. A sender
//! whose log holds none (first boot, a lost disk, or an expired incarnation)
//! sends [`Msg::NewIncarnation`] with a nonce from its driver and submits nothing
//! until the matching [`Msg::Granted`] arrives; it logs the incarnation
//! ([`SenderRecord::Incarnation`]) before its first data. Incarnations are unique
//! across the receiver's senders and only grow, so after a lost disk the new
//! life's seq 1 is a different message from the old life's seq 1. The receiver
//! keeps per sender the dedup state of the newest incarnation that sent data;
//! that incarnation's first message fences the older ones (their data is answered
//! [`Msg::Expired`], not applied). **What a lost disk loses**: the old outbox —
//! the messages accepted but not acknowledged. Copies of them in flight are
//! applied at most once (before the fence) or refused (after it); nobody can tell
//! the application which. Everything accepted after the new grant is exactly once.
//!
//! ## Retention: no lifetime caps
//!
//! The receiver tracks at most [`SENDERS_MAX`] senders at once. A sender idle
//! (no grant, no data) for longer than the retention ([`RETENTION_DEFAULT`], one
//! day, as Kafka's `producer.id.expiration.ms`) is retired: its entry is dropped
//! with a [`ReceiverRecord::Retired`], making room for a new sender. A sender
//! that comes back after retirement gets `Expired`; it gives up its outbox (the
//! application learns [`SenderEvent::OutcomeUnknown`] per message: applied at
//! most once) and asks for a new incarnation. Nothing is applied twice, because a
//! retired incarnation is never granted again.
//!
//! ## Tracing
//!
//! Every protocol step emits one `tracing` event at `debug` (retransmissions at
//! `trace`) under the target [`TRACE_TARGET`], with the fields `node`, `role`,
//! `step` (one of the constants in [`step`]), `peer`, `seq`, `hwm`, `persisted`
//! (the record kind written, or `"none"`) and `sent` (the message kind released,
//! or `"none"`). The set of step kinds is closed so that traces can be checked
//! against the models.

use crate::bank::{Amount, Transfer};
use crate::core::NodeId;
use serde::{Deserialize, Serialize};
use std::time::Duration;

mod receiver;
mod sender;

#[cfg(test)]
mod tests;

pub use receiver::{Receiver, ReceiverStats};
pub use sender::{Sender, SenderStats};

/// A per-sender sequence number. The first message of a sender is seq 1; 0 means
/// "nothing yet" in a high-water mark.
pub type Seq = u64;

/// The most messages a sender has in flight: the span from its oldest
/// unacknowledged seq to its newest seq is below this. It also bounds the
/// receiver's acceptance window above its high-water mark.
pub const WINDOW_MAX: u64 = 64;

/// The highest seq a sender assigns and a receiver applies: every `hwm +
/// WINDOW_MAX` and `next_seq + 1` stays within `u64`. A snapshot, a record or a
/// message beyond it is a typed error, never an overflow.
pub const SEQ_MAX: Seq = u64::MAX - WINDOW_MAX;

/// The most seqs a receiver remembers above one sender's high-water mark.
pub const DEDUP_ABOVE_MAX: usize = (WINDOW_MAX - 1) as usize;

/// The most senders a receiver keeps dedup state for at once. A new sender beyond
/// it is refused ([`ReceiverError::TooManySenders`]) until a tracked sender has been
/// idle for the retention and is retired.
pub const SENDERS_MAX: usize = 16;

/// A sender's dedup state is retired once the sender has been idle (no grant, no
/// data) for this long, by default (Kafka's `producer.id.expiration.ms` default,
/// one day). [`Receiver::with_retention`] configures it.
pub const RETENTION_DEFAULT: Duration = Duration::from_secs(24 * 60 * 60);

/// A sender's life between two empty logs: granted by the receiver, unique across
/// all senders, only growing. 0 means "none".
pub type Incarnation = u64;

/// The first retransmission of a message happens this long after it was sent.
pub const RETRY_INTERVAL_MIN: Duration = Duration::from_millis(50);

/// Backoff doubles the retransmission interval up to this cap.
pub const RETRY_INTERVAL_MAX: Duration = Duration::from_millis(800);

/// Transfers carry at most this amount, so balances cannot overflow within any
/// realistic number of transfers (`i64::MAX / AMOUNT_MAX` is about 9·10⁹).
pub const AMOUNT_MAX: Amount = 1_000_000_000;

/// The `tracing` target of every ack-retry event.
pub const TRACE_TARGET: &str = "eo::ack_retry";

/// The closed set of step kinds in the `step` field of trace events.
pub mod step {
    /// A sender accepted a submission (record `submitted`, first `data` sent).
    pub const SUBMIT: &str = "submit";
    /// A sender re-sent an unacknowledged message after its backoff expired.
    pub const RETRANSMIT: &str = "retransmit";
    /// A sender processed an acknowledgement (record `acked` if anything left the outbox).
    pub const ACKED: &str = "acked";
    /// A receiver applied a message (record `applied`, `ack` sent).
    pub const APPLY: &str = "apply";
    /// A receiver got a message it had already applied (no record, `ack` sent again).
    pub const DUPLICATE: &str = "duplicate";
    /// A receiver refused a message (beyond its window or its sender bound).
    pub const REJECT: &str = "reject";
    /// A core was rebuilt from its log.
    pub const RECOVER: &str = "recover";
    /// A core produced a snapshot record for log compaction.
    pub const SNAPSHOT: &str = "snapshot";
    /// A sender asked for an incarnation (no record, `new-incarnation` sent).
    pub const REQUEST: &str = "request";
    /// A receiver granted an incarnation (record `granted`, `granted` sent).
    pub const GRANT: &str = "grant";
    /// A sender adopted a granted incarnation (record `incarnation`).
    pub const START: &str = "start";
    /// Data of a retired or fenced incarnation (receiver: `expired` sent), or the
    /// sender giving that incarnation up (record `expired`).
    pub const EXPIRE: &str = "expire";
    /// A receiver retired an idle sender's dedup state (record `retired`).
    pub const RETIRE: &str = "retire";
    /// All step kinds, for trace validators.
    pub const ALL: [&str; 13] = [
        SUBMIT, RETRANSMIT, ACKED, APPLY, DUPLICATE, REJECT, RECOVER, SNAPSHOT, REQUEST, GRANT,
        START, EXPIRE, RETIRE,
    ];
}

/// Messages between a sender and a receiver. Integer widths are explicit: this
/// is the wire format (serialised with postcard by real drivers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Sender → receiver: a sender that starts with an empty log asks for a new
    /// incarnation before it sends any data (Kafka's `InitProducerId`). `nonce`
    /// tells this request from those of the sender's earlier lives (the driver
    /// supplies a fresh one at every boot).
    NewIncarnation { nonce: u64 },
    /// Receiver → sender: `incarnation` is granted for the request `nonce` (its
    /// record is durable). A sender adopts only a grant for its own request, so a
    /// stale or duplicated grant meant for an earlier life is ignored.
    Granted {
        nonce: u64,
        incarnation: Incarnation,
    },
    /// Sender → receiver: apply `transfer`, message number `seq` of `incarnation`.
    Data {
        incarnation: Incarnation,
        seq: Seq,
        transfer: Transfer,
    },
    /// Receiver → sender: `seq` of `incarnation` is applied, and so is every seq `<= hwm`.
    Ack {
        incarnation: Incarnation,
        hwm: Seq,
        seq: Seq,
    },
    /// Receiver → sender: the receiver holds no dedup state for `incarnation` (it
    /// was retired after [`Receiver`]'s retention, or a newer incarnation of the
    /// same sender fenced it): the data was not applied. The sender gives up the
    /// incarnation; its unacknowledged messages have an unknown outcome.
    Expired { incarnation: Incarnation },
}

/// The sender's log. Replaying it in order rebuilds the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SenderRecord {
    /// The sender adopted `incarnation`: its first record (or the first after an
    /// `Expired`); seqs restart at 1.
    Incarnation { incarnation: Incarnation },
    /// `transfer` was accepted as message `seq`; seqs are consecutive in the log.
    Submitted { seq: Seq, transfer: Transfer },
    /// Every message `<= hwm`, and message `seq`, were acknowledged.
    Acked { hwm: Seq, seq: Seq },
    /// The receiver no longer knows `incarnation`: the outbox was given up.
    Expired { incarnation: Incarnation },
    /// The whole durable state: compaction replaces the log with this record.
    Snapshot {
        incarnation: Option<Incarnation>,
        next_seq: Seq,
        outbox: Vec<(Seq, Transfer)>,
    },
}

/// The receiver's log. Each record carries the bank effect and the dedup update
/// together, so that one cannot be durable without the other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiverRecord {
    /// `incarnation` (the receiver's next one: they are unique across senders and
    /// only grow) was granted to `sender` for its request `nonce`; a retransmitted
    /// request with the same nonce is answered with this grant again.
    Granted {
        sender: NodeId,
        incarnation: Incarnation,
        nonce: u64,
    },
    /// Message `seq` of `from`'s `incarnation` was applied: `transfer` is in the
    /// bank and `seq` is in the dedup state, which now belongs to `incarnation`
    /// (older incarnations of `from` are fenced).
    Applied {
        from: NodeId,
        incarnation: Incarnation,
        seq: Seq,
        transfer: Transfer,
    },
    /// `sender`'s dedup state was retired after the retention: every incarnation
    /// granted to it so far is refused from now on.
    Retired { sender: NodeId },
    /// The whole durable state: compaction replaces the log with this record.
    Snapshot {
        bank: crate::bank::Bank,
        /// The last incarnation granted to any sender (0: none).
        last_granted: Incarnation,
        senders: Vec<DedupSnapshot>,
    },
}

/// One sender's dedup state as stored in a receiver snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupSnapshot {
    pub sender: NodeId,
    /// The first incarnation granted since the entry was created; lower ones are fenced.
    pub floor: Incarnation,
    /// The last incarnation granted to this sender.
    pub granted: Incarnation,
    /// The nonce of the request `granted` answered.
    pub nonce: u64,
    /// The incarnation the dedup state belongs to (0: no data applied yet).
    pub incarnation: Incarnation,
    /// Every seq `<= hwm` of `incarnation` is applied.
    pub hwm: Seq,
    /// Seqs applied above `hwm`, ascending, all within `(hwm + 1, hwm + WINDOW_MAX]`.
    pub above: Vec<Seq>,
}

/// Application-visible outcomes of a sender, released after their records are
/// durable.
///
/// **Delivery is reported at least once.** `Delivered` and `OutcomeUnknown` are
/// emitted when their record is written *and again at recovery* for every such
/// record since the last compaction: a crash between the sync and the release of
/// an event would otherwise lose it. The application deduplicates them by
/// `(incarnation, seq)`, which is unique for the sender's whole life. `Started`
/// and `Accepted` are emitted once, live (the application already holds the seq
/// from [`Sender::submit`]'s return value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderEvent {
    /// The sender adopted `incarnation`; submissions are accepted from now on.
    Started { incarnation: Incarnation },
    /// The submission `seq` is durable: the sender now owns its delivery.
    Accepted {
        incarnation: Incarnation,
        seq: Seq,
        transfer: Transfer,
    },
    /// Message `seq` was acknowledged, so it is durably applied at the receiver.
    Delivered { incarnation: Incarnation, seq: Seq },
    /// The receiver retired or fenced `incarnation` before acknowledging `seq`:
    /// it was applied at most once, and neither side can tell which.
    OutcomeUnknown {
        incarnation: Incarnation,
        seq: Seq,
        transfer: Transfer,
    },
}

/// Application-visible outcomes of a receiver, released after their records are
/// durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiverEvent {
    /// Message `seq` of `from`'s `incarnation` was applied to the bank.
    Applied {
        from: NodeId,
        incarnation: Incarnation,
        seq: Seq,
        transfer: Transfer,
    },
}

/// Errors of a [`Sender`]: backpressure on `submit`, and bad input from a peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SenderError {
    /// The window is full: `in_flight` messages from seq `oldest` are unacknowledged.
    #[error("window full: {in_flight} messages in flight from seq {oldest} (window {WINDOW_MAX})")]
    WindowFull { in_flight: usize, oldest: Seq },
    /// The sender has no incarnation yet (it started with an empty log, or its
    /// last one expired) and is asking the receiver for one: backpressure.
    #[error("no incarnation yet: waiting for the receiver to grant one")]
    NoIncarnation,
    /// The transfer's amount is negative or above [`AMOUNT_MAX`].
    #[error("amount {0} outside [0, {AMOUNT_MAX}]")]
    AmountOutOfRange(Amount),
    /// A message came from a node that is not this sender's receiver.
    #[error("message from node {from}, expected the receiver {expected}")]
    UnexpectedPeer { from: NodeId, expected: NodeId },
    /// A data message arrived at a sender.
    #[error("unexpected data message at a sender")]
    UnexpectedData,
    /// A receiver-only message (a request for an incarnation) arrived at a sender.
    #[error("unexpected request for an incarnation at a sender")]
    UnexpectedRequest,
    /// An acknowledgement names a seq this sender never assigned.
    #[error("ack for hwm {hwm} / seq {seq}, but the highest seq sent is {highest}")]
    AckBeyondSent { hwm: Seq, seq: Seq, highest: Seq },
    /// The incarnation has used every seq up to [`SEQ_MAX`].
    #[error("seqs exhausted: the next seq {next_seq} is beyond {SEQ_MAX}")]
    SeqsExhausted { next_seq: Seq },
}

/// Errors of a [`Receiver`]: bad input from a peer. The message is dropped: not
/// applied, not acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiverError {
    /// A new sender asked for an incarnation while the receiver tracks
    /// [`SENDERS_MAX`] senders, none idle for the retention yet: refused (not
    /// granted, not answered); the sender's request is retried with backoff and
    /// succeeds once a tracked sender is retired.
    #[error(
        "sender {from} refused: {SENDERS_MAX} senders tracked, none idle beyond the retention"
    )]
    TooManySenders { from: NodeId },
    /// A sender asked for an incarnation, but the receiver has granted the
    /// highest one (`u64::MAX`): refused, not granted, not answered.
    #[error("sender {from} refused: every incarnation up to {last_granted} was granted")]
    IncarnationsExhausted {
        from: NodeId,
        last_granted: Incarnation,
    },
    /// Data for an incarnation this receiver never granted to that sender.
    #[error("data from {from} for incarnation {incarnation}, but only up to {granted} was granted to it")]
    UnknownIncarnation {
        from: NodeId,
        incarnation: Incarnation,
        granted: Incarnation,
    },
    /// A grant arrived at a receiver.
    #[error("unexpected grant from {from} at a receiver")]
    UnexpectedGrant { from: NodeId },
    /// The seq is above the sender's high-water mark plus [`WINDOW_MAX`], or
    /// above [`SEQ_MAX`].
    #[error("seq {seq} from {from} is beyond hwm {hwm} + window {WINDOW_MAX} (or {SEQ_MAX})")]
    SeqBeyondWindow { from: NodeId, seq: Seq, hwm: Seq },
    /// Seq 0 is never assigned.
    #[error("seq 0 from {from}")]
    SeqZero { from: NodeId },
    /// The transfer's amount is negative or above [`AMOUNT_MAX`].
    #[error("amount {amount} from {from} outside [0, {AMOUNT_MAX}]")]
    AmountOutOfRange { from: NodeId, amount: Amount },
    /// Applying the transfer would take a balance beyond
    /// [`BALANCE_MAX`](crate::bank::BALANCE_MAX) (after some 10⁹ transfers of
    /// [`AMOUNT_MAX`] into one account). The bank refuses rather than overflows;
    /// the message is not applied and not acknowledged.
    #[error("seq {seq} from {from} would take a balance beyond BALANCE_MAX")]
    BalanceOutOfRange { from: NodeId, seq: Seq },
    /// An acknowledgement arrived at a receiver.
    #[error("unexpected ack from {from} at a receiver")]
    UnexpectedAck { from: NodeId },
}

/// Errors while rebuilding a core from its log: the log does not describe a state
/// the core could have written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecoverError {
    /// A snapshot record appeared after the first record.
    #[error("snapshot at record {index}; a snapshot may only be the first record")]
    SnapshotNotFirst { index: usize },
    /// A `Submitted` record does not carry the next consecutive seq.
    #[error("record {index}: submitted seq {seq}, expected {expected}")]
    SeqNotConsecutive {
        index: usize,
        seq: Seq,
        expected: Seq,
    },
    /// An `Acked` record names a seq that was never submitted.
    #[error("record {index}: acked hwm {hwm} / seq {seq} beyond the last submitted seq")]
    AckBeyondSubmitted { index: usize, hwm: Seq, seq: Seq },
    /// A record needs an incarnation the log has not adopted (or granted), or adopts
    /// one while another is live.
    #[error("record {index}: {what}")]
    Incarnation { index: usize, what: &'static str },
    /// An `Applied` record applies a seq that is already applied.
    #[error("record {index}: seq {seq} from {from} applied twice")]
    AppliedTwice {
        index: usize,
        from: NodeId,
        seq: Seq,
    },
    /// A record or snapshot violates a bound (window, senders, outbox, amount, seq 0).
    #[error("record {index}: {what}")]
    OutOfBounds { index: usize, what: &'static str },
}

fn amount_in_range(amount: Amount) -> bool {
    (0..=AMOUNT_MAX).contains(&amount)
}

// ---- Added for eo-conformance (issue 12 §1): the cores' protocol states as values ----
pub use receiver::{ReceiverProtocol, SenderEntryProtocol};
pub use sender::SenderProtocol;
