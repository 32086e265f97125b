//! The correct ack-retry protocol and its bug variants: each breaks one
//! mechanism and names the property that must catch it.

use super::Seq;
use crate::system::LogMode;

/// Messages per sender `ack-before-sync` is checked with by default (see
/// [`Variant::default_messages`]).
pub const SYNC_BUG_MESSAGES: Seq = 2;

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
    /// The sender's outbox is volatile (only the next seq is saved): a sender
    /// crash forgets unacknowledged messages, and nobody retransmits them.
    VolatileOutbox,
    /// No retransmission timer: one lost message is lost for good.
    NoRetry,
    /// The sender sends on submission and saves the submission in a later step (a
    /// `Persist` timer): the receiver can apply a message its sender has no
    /// durable record of having submitted — a dirty write that escaped. If the
    /// sender crashes before saving, its application was never told the message
    /// was accepted and is free to abandon it, yet its effect exists.
    SendBeforePersist,
    /// Dedup by a per-sender high-water mark alone (no window of seqs above it):
    /// a message overtaken by a later one counts as a duplicate, is silently
    /// dropped, and is acknowledged — so its sender stops retrying a message
    /// that was never applied.
    HighWaterMarkDedup,
    /// A duplicate is dropped without being acknowledged again. Every safety
    /// property holds — nothing is applied twice or lost — but once the first
    /// acknowledgement of a message is lost its sender retransmits forever and
    /// the system never settles: only `progress` sees it.
    NoReack,
    /// The sender keeps one message more in flight than the receiver's window
    /// (Kafka's `max.in.flight.requests.per.connection` above the broker's five
    /// cached batches): its newest message can lie beyond the receiver's window,
    /// where the receiver refuses it.
    InFlightBeyondWindow,
    /// The durable dedup record is one number per sender, the highest seq
    /// applied; the window of seqs applied out of order lives in memory. A
    /// recovered receiver takes that number as its high-water mark — past a gap
    /// of seqs never applied — and acknowledges them as duplicates.
    HwmPastGap,
    /// The high-water mark is durable but the window of seqs applied above it is
    /// not: a recovered receiver applies a seq of its forgotten window again.
    VolatileWindow,
    /// A sender that lost its disk restarts at seq 1 under its old identity
    /// instead of asking for a new incarnation (the review finding of issue 9):
    /// its new messages reuse the old messages' seqs and are acknowledged as
    /// duplicates, never applied.
    NoEpoch,
    /// The receiver starts afresh for any incarnation other than the one its
    /// dedup state belongs to — older ones included — instead of fencing the
    /// older ones: a zombie of the old incarnation (a retransmission still in
    /// flight) is applied again.
    StaleEpochAccepted,
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
    pub const ALL: [Variant; 17] = [
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
        Variant::InFlightBeyondWindow,
        Variant::HwmPastGap,
        Variant::VolatileWindow,
        Variant::NoEpoch,
        Variant::StaleEpochAccepted,
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
            Variant::InFlightBeyondWindow => "in-flight-beyond-window",
            Variant::HwmPastGap => "hwm-past-gap",
            Variant::VolatileWindow => "volatile-window",
            Variant::NoEpoch => "no-epoch",
            Variant::StaleEpochAccepted => "stale-epoch-accepted",
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
            | Variant::VolatileWindow
            | Variant::StaleEpochAccepted
            | Variant::TornApply => Some("exactly-once"),
            Variant::AckBeforePersist
            | Variant::VolatileOutbox
            | Variant::HighWaterMarkDedup
            | Variant::HwmPastGap
            | Variant::NoEpoch
            | Variant::AckBeforeSync => Some("no-loss"),
            Variant::NoRetry | Variant::NoReack => Some("eventually-delivered"),
            Variant::SendBeforePersist => Some("no-phantom"),
            Variant::InFlightBeyondWindow => Some("within-window"),
        }
    }

    pub fn about(self) -> &'static str {
        match self {
            Variant::Correct => {
                "durable outbox, retransmission, dedup window saved atomically with the effect"
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
            Variant::InFlightBeyondWindow => {
                "the sender keeps one message more in flight than the receiver's window"
            }
            Variant::HwmPastGap => {
                "the durable dedup record is the highest seq applied; recovery skips a gap"
            }
            Variant::VolatileWindow => {
                "the high-water mark is durable, the window of seqs above it is not"
            }
            Variant::NoEpoch => {
                "after a disk loss the sender restarts at seq 1 under its old identity"
            }
            Variant::StaleEpochAccepted => {
                "the receiver applies data of an older, fenced incarnation"
            }
            Variant::AckBeforeSync => {
                "the receiver's ack leaves before its application is synced (--log sync)"
            }
            Variant::TornApply => {
                "effect and dedup record are two appends; a crash may keep the first only (--log sync)"
            }
        }
    }

    /// Whether the variant's bug shows only when a sender loses its disk: its
    /// row runs the `disk-loss` configuration.
    pub fn needs_disk_loss(self) -> bool {
        matches!(self, Variant::NoEpoch | Variant::StaleEpochAccepted)
    }

    /// Messages per sender a variant is checked with unless `--messages` says
    /// otherwise: `default` (the model's), except `ack-before-sync`, whose
    /// counterexample needs one message and which at three messages under the
    /// syncing log was the table's largest ack-retry row (333,729 states,
    /// against 10,160 at two, where `no-loss` fails the same way).
    pub fn default_messages(self, default: Seq) -> Seq {
        match self {
            Variant::AckBeforeSync => SYNC_BUG_MESSAGES,
            _ => default,
        }
    }

    /// The log a variant is checked with unless `--log` says otherwise: the
    /// syncing-log variants need `sync`.
    pub fn default_log(self) -> LogMode {
        match self {
            Variant::AckBeforeSync | Variant::TornApply => LogMode::Sync,
            _ => LogMode::Atomic,
        }
    }

    pub fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }
}
