//! The correct two-phase commit and its bug variants, each with the property
//! that must catch it and the configuration its `eo check` row runs.

use super::{Tx, BUG_PARTICIPANTS};

/// The correct protocol and its bug variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Correct,
    /// The coordinator sends its decision (to the participants and the client)
    /// before logging it; the log write is a later step (a `Log` timer). A crash
    /// between the two loses the decision: the recovered coordinator presumes
    /// abort for a transaction some participants already committed.
    DecisionNotLogged,
    /// A participant sends `Yes` before durably recording `Prepared`; the save is
    /// a later step (a `Persist` timer). A crash between them forgets the vote
    /// and the staged effect: the coordinator commits, the participant cannot.
    VoteBeforePersist,
    /// A prepared participant whose `Query` timer fires aborts on its own — the
    /// hazard of transaction timeouts in Flink's two-phase-commit sink over
    /// Kafka — while the coordinator commits.
    ParticipantTimeoutAbort,
    /// The coordinator commits on the first `Yes`, without every vote.
    CommitOnFirstYes,
    /// The coordinator treats a client retry of a decided transaction as a new
    /// transaction (a new round, a new id): participants apply the effect again.
    RetryAsNewTransaction,
    /// A participant applies `Commit` every time it arrives; a re-sent decision
    /// applies the effect twice.
    NoDedupOnCommit,
    /// A recovered coordinator decides commit, instead of abort, for the
    /// started transaction it has no logged decision for: the votes it had
    /// counted died with the crash.
    PresumeCommit,
    /// Decisions carry no transaction id; a participant applies one to whatever
    /// it is working on. A late `Commit` or `Abort` of the first transaction
    /// (a re-sent copy still in flight after the acknowledgement) decides the
    /// second — the delayed
    /// end-transaction class of bug found in Kafka's transaction protocol. Runs
    /// two transactions.
    UntaggedDecision,
    /// The coordinator deduplicates a client's retry of a decided transaction
    /// but does not answer it with the outcome (the 2PC twin of ack-retry's
    /// `no-reack`). Nothing unsafe happens, but once the outcome sent at the
    /// decision is lost the client retries forever and the system never comes
    /// to rest. Every terminal state is decided, so an `eventually` checked at
    /// terminal states passes; only `progress` sees it.
    RetryUnanswered,
    /// A participant checks a posting against its balance only, not against
    /// the postings staged by its other prepared, undecided transactions. Each
    /// of two transactions in flight fits alone; both are prepared, both
    /// commit, and together they take the balance beyond its bound. Only
    /// concurrency shows it: one at a time, nothing else is ever staged. Runs
    /// two transactions in flight.
    VoteIgnoresStaged,
    // --- Syncing-log variant (issue 9, "a log that syncs"; docs/system.md):
    // a flag of the System, unsafe only under `--log sync` (its default).
    /// A participant's yes vote leaves at once instead of waiting for the sync
    /// of its prepared record: a crash that loses the record makes it forget
    /// the vote, and it aborts a transaction the coordinator commits.
    VoteBeforeSync,
}

impl Variant {
    pub const ALL: [Variant; 12] = [
        Variant::Correct,
        Variant::DecisionNotLogged,
        Variant::VoteBeforePersist,
        Variant::ParticipantTimeoutAbort,
        Variant::CommitOnFirstYes,
        Variant::RetryAsNewTransaction,
        Variant::NoDedupOnCommit,
        Variant::PresumeCommit,
        Variant::UntaggedDecision,
        Variant::RetryUnanswered,
        Variant::VoteIgnoresStaged,
        Variant::VoteBeforeSync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Correct => "correct",
            Variant::DecisionNotLogged => "decision-not-logged",
            Variant::VoteBeforePersist => "vote-before-persist",
            Variant::ParticipantTimeoutAbort => "participant-timeout-abort",
            Variant::CommitOnFirstYes => "commit-on-first-yes",
            Variant::RetryAsNewTransaction => "retry-as-new-transaction",
            Variant::NoDedupOnCommit => "no-dedup-on-commit",
            Variant::PresumeCommit => "presume-commit",
            Variant::UntaggedDecision => "untagged-decision",
            Variant::RetryUnanswered => "retry-unanswered",
            Variant::VoteIgnoresStaged => "vote-ignores-staged",
            Variant::VoteBeforeSync => "vote-before-sync",
        }
    }

    /// The property the checker must find violated.
    pub fn expected_violation(self) -> Option<&'static str> {
        match self {
            Variant::Correct => None,
            Variant::DecisionNotLogged
            | Variant::VoteBeforePersist
            | Variant::ParticipantTimeoutAbort
            | Variant::PresumeCommit
            | Variant::VoteBeforeSync => Some("atomicity"),
            // With two participants a late untagged Commit of the first
            // transaction commits the second at one participant while the other
            // voted no and aborted it.
            Variant::UntaggedDecision => Some("atomicity"),
            Variant::CommitOnFirstYes => Some("validity"),
            Variant::RetryAsNewTransaction | Variant::NoDedupOnCommit => Some("exactly-once"),
            Variant::RetryUnanswered => Some("eventually-decided"),
            Variant::VoteIgnoresStaged => Some("balance-bound"),
        }
    }

    /// The configuration this variant is checked in unless a flag says
    /// otherwise — its row of the `eo check` table. The correct protocol runs
    /// the full default (three participants); a bug needs less to show, and two
    /// participants keep each row to seconds. The variants that run a second
    /// round or transaction multiply the state space, so they trim what their
    /// bug does not need: `retry-as-new-transaction` runs one participant (the
    /// second application needs no other), `untagged-decision` runs no crash
    /// (a late decision needs only loss, retransmission and reordering).
    /// `vote-ignores-staged` runs two transactions in flight at one participant
    /// with no crash: two prepared postings at one account are all it needs.
    pub fn defaults(self) -> VariantDefaults {
        let base = VariantDefaults {
            participants: BUG_PARTICIPANTS,
            transactions: 1,
            crashes: 1,
            in_flight: 1,
        };
        match self {
            Variant::Correct => VariantDefaults {
                participants: 3,
                ..base
            },
            Variant::RetryAsNewTransaction => VariantDefaults {
                participants: 1,
                ..base
            },
            Variant::UntaggedDecision => VariantDefaults {
                transactions: 2,
                crashes: 0,
                ..base
            },
            Variant::VoteIgnoresStaged => VariantDefaults {
                participants: 1,
                transactions: 2,
                crashes: 0,
                in_flight: 2,
            },
            _ => base,
        }
    }

    pub fn about(self) -> &'static str {
        match self {
            Variant::Correct => {
                "log before send, presumed abort, dedup by transaction id, query while prepared"
            }
            Variant::DecisionNotLogged => "the coordinator sends its decision before logging it",
            Variant::VoteBeforePersist => {
                "a participant votes yes before durably recording prepared"
            }
            Variant::ParticipantTimeoutAbort => {
                "a prepared participant aborts on its own after a timeout"
            }
            Variant::CommitOnFirstYes => "the coordinator commits without every vote",
            Variant::RetryAsNewTransaction => {
                "the coordinator runs a client retry as a new transaction"
            }
            Variant::NoDedupOnCommit => "a participant applies Commit every time it arrives",
            Variant::PresumeCommit => {
                "a recovered coordinator commits a started transaction it has no decision for"
            }
            Variant::UntaggedDecision => {
                "decisions carry no transaction id; a late one decides the next transaction"
            }
            Variant::RetryUnanswered => {
                "a client's retry of a decided transaction is not answered; it retries forever"
            }
            Variant::VoteIgnoresStaged => {
                "a participant votes on a posting without counting the other staged postings"
            }
            Variant::VoteBeforeSync => {
                "a participant's yes vote leaves before its prepared record is synced (--log sync)"
            }
        }
    }

    pub fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The log a variant is checked with unless `--log` says otherwise.
    pub fn default_log(self) -> crate::system::LogMode {
        match self {
            Variant::VoteBeforeSync => crate::system::LogMode::Sync,
            _ => crate::system::LogMode::Atomic,
        }
    }
}

/// A variant's default `--participants`, `--transactions`, `--crashes` and
/// `--in-flight`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VariantDefaults {
    pub participants: u8,
    pub transactions: Tx,
    pub crashes: u8,
    pub in_flight: Tx,
}
