//! The built-in load generator's content: what item `number` of a node's workload
//! is, as a pure function of `(node id, number, seed)`, so that a verifier
//! recomputes the expected effect of a run from the command lines alone.
//!
//! Items are numbered `1..=n`. The item's number is its amount, so a verifier finds
//! each item in a receiver's `Applied` records (or a participant's committed
//! postings) without knowing seqs, incarnations or transaction ids:
//!
//! - ack-retry, sender `s`: item `k` is `Transfer { from: s, to: 1000 + h % 16,
//!   amount: k }`, `h` a hash of `(s, k, seed)`; its seq is `k` in the sender's
//!   first incarnation.
//! - two-phase commit, client `c`, participants `P` (sorted): item `k` is the
//!   transaction `(c, k - 1)` moving `k` from account `c` at participant `P[i]` to
//!   account `c` at participant `P[j]`, `i != j` picked by hash (with one
//!   participant, a zero-sum pair of postings at that one is impossible, so one
//!   participant is refused).
//!
//! [`run_sender`] and [`run_client`] drive a node's workload through its
//! [`Handle`]: they resume from what the node's recovered state says was submitted
//! (a sender's next seq, a client's next transaction seq), submit until the
//! window is full, wait for outcomes, and return once every item has a final
//! outcome (delivered or unknown; committed or aborted).

use super::node::{Handle, Outcome, RoleStatus, Status, SubmitError};
use crate::ack_retry::AMOUNT_MAX;
use crate::bank::{AccountId, Amount, Transfer};
use crate::core::NodeId;
use crate::two_phase_commit::{transfer_legs, Leg, POSTING_DELTA_MAX};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// Progress is reported at most this often.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// When the window is full, the generator waits this long for an outcome before
/// it asks again.
pub const BUSY_WAIT: Duration = Duration::from_millis(5);

/// The most items a workload may have: an item's amount is its number, and both
/// protocols bound amounts (ack-retry by [`AMOUNT_MAX`], two-phase commit by
/// [`POSTING_DELTA_MAX`]).
pub const WORKLOAD_ITEMS_MAX: u64 = if (AMOUNT_MAX as u64) < (POSTING_DELTA_MAX as u64) {
    AMOUNT_MAX as u64
} else {
    POSTING_DELTA_MAX as u64
};

/// The first receiver account an ack-retry workload credits.
pub const RECEIVER_ACCOUNT_BASE: AccountId = 1000;

/// How many receiver accounts an ack-retry workload spreads its credits over.
pub const RECEIVER_ACCOUNTS: u64 = 16;

/// Why a workload cannot be generated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// Item numbers run from 1 to [`WORKLOAD_ITEMS_MAX`].
    #[error("workload item {number} outside 1..={WORKLOAD_ITEMS_MAX}")]
    NumberOutOfRange {
        /// The number asked for.
        number: u64,
    },
    /// A two-phase-commit workload needs two distinct participants per transaction.
    #[error("a two-phase-commit workload needs at least 2 participants, got {count}")]
    TooFewParticipants {
        /// Participants configured.
        count: usize,
    },
    /// The node refused a submission for another reason than backpressure.
    #[error("submission of item {number} refused: {source}")]
    Submit {
        /// The item.
        number: u64,
        /// The node's answer.
        #[source]
        source: SubmitError,
    },
    /// The node stopped before the workload finished.
    #[error("the node stopped")]
    Stopped,
    /// The node is not of the role this generator drives.
    #[error("the node's role has no such workload")]
    WrongRole,
    /// Item `number` got another seq (or transaction seq) than its number says:
    /// the item numbering would no longer match the log.
    #[error("item {number} was given seq {seq}")]
    SeqMismatch {
        /// The item.
        number: u64,
        /// The seq it got.
        seq: u64,
    },
}

/// What a workload's progress callback sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Items with a final outcome.
    pub done: u64,
    /// Items submitted (durably in the node's log, or about to be).
    pub submitted: u64,
    /// The node's status when this was taken.
    pub status: Status,
}

/// Where a workload stands, from the node's status: `(submitted, done)`, or
/// `None` for a role without a workload.
fn position(status: &Status) -> Option<(u64, u64)> {
    match &status.role {
        RoleStatus::Sender {
            next_seq,
            in_flight,
            ..
        } => {
            let submitted = next_seq - 1;
            Some((submitted, submitted - *in_flight as u64))
        }
        RoleStatus::Client { next_seq, pending } => Some((*next_seq, next_seq - *pending as u64)),
        _ => None,
    }
}

/// Drives items `1..=n` of a workload through `handle` (see the module docs).
/// Returns the final progress, or `Ok(None)` if `stop` was set first.
fn run(
    handle: &Handle,
    outcomes: Option<&Receiver<Outcome>>,
    n: u64,
    stop: &AtomicBool,
    mut submit: impl FnMut(u64) -> Result<u64, WorkloadError>,
    mut progress: impl FnMut(&Progress),
) -> Result<Option<Progress>, WorkloadError> {
    let mut reported: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let status = handle.status().ok_or(WorkloadError::Stopped)?;
        let (submitted, done) = position(&status).ok_or(WorkloadError::WrongRole)?;
        let finished = submitted >= n && done == submitted;
        let current = Progress {
            done,
            submitted,
            status,
        };
        if finished {
            progress(&current);
            return Ok(Some(current));
        }
        if reported.is_none_or(|at| at.elapsed() >= PROGRESS_INTERVAL) {
            progress(&current);
            reported = Some(Instant::now());
        }
        let mut number = submitted + 1;
        while number <= n {
            match submit(number) {
                Ok(seq) if seq == number => number += 1,
                Ok(seq) => return Err(WorkloadError::SeqMismatch { number, seq }),
                Err(WorkloadError::Submit { source, .. }) if source.is_busy() => break,
                Err(error) => return Err(error),
            }
        }
        match outcomes {
            Some(outcomes) => {
                if outcomes.recv_timeout(BUSY_WAIT).is_ok() {
                    while outcomes.try_recv().is_ok() {}
                }
            }
            None => std::thread::sleep(BUSY_WAIT),
        }
    }
}

/// Runs an ack-retry sender's workload of `n` transfers (see the module docs).
/// `outcomes` (the node's, if the caller does not need them) wakes the generator
/// when the window frees up.
pub fn run_sender(
    handle: &Handle,
    outcomes: Option<&Receiver<Outcome>>,
    sender: NodeId,
    n: u64,
    seed: u64,
    stop: &AtomicBool,
    progress: impl FnMut(&Progress),
) -> Result<Option<Progress>, WorkloadError> {
    let submit = |number| {
        let transfer = ack_retry_transfer(sender, number, seed)?;
        handle
            .submit_transfer(transfer)
            .map_err(|source| WorkloadError::Submit { number, source })
    };
    run(handle, outcomes, n, stop, submit, progress)
}

/// Runs a two-phase-commit client's workload of `n` transactions over
/// `participants` (see the module docs).
#[allow(clippy::too_many_arguments)]
pub fn run_client(
    handle: &Handle,
    outcomes: Option<&Receiver<Outcome>>,
    client: NodeId,
    participants: &[NodeId],
    n: u64,
    seed: u64,
    stop: &AtomicBool,
    progress: impl FnMut(&Progress),
) -> Result<Option<Progress>, WorkloadError> {
    let submit = |number| {
        let legs = two_phase_commit_legs(client, number, seed, participants)?;
        handle
            .submit_transaction(legs)
            // Transaction seqs count from 0: item k is seq k - 1.
            .map(|txn| txn.seq + 1)
            .map_err(|source| WorkloadError::Submit { number, source })
    };
    run(handle, outcomes, n, stop, submit, progress)
}

/// splitmix64 of the three inputs: a fixed, documented hash (not `std`'s, whose
/// output may change between Rust versions).
fn mix(node: NodeId, number: u64, seed: u64) -> u64 {
    let mut z = seed
        ^ u64::from(node).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ number.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn check_number(number: u64) -> Result<Amount, WorkloadError> {
    if !(1..=WORKLOAD_ITEMS_MAX).contains(&number) {
        return Err(WorkloadError::NumberOutOfRange { number });
    }
    // At most WORKLOAD_ITEMS_MAX, which fits in an i64.
    Ok(number as Amount)
}

/// Item `number` of ack-retry sender `sender`'s workload (see the module docs).
pub fn ack_retry_transfer(
    sender: NodeId,
    number: u64,
    seed: u64,
) -> Result<Transfer, WorkloadError> {
    let amount = check_number(number)?;
    let account = mix(sender, number, seed) % RECEIVER_ACCOUNTS;
    Ok(Transfer {
        from: sender,
        // account < RECEIVER_ACCOUNTS = 16.
        to: RECEIVER_ACCOUNT_BASE + account as AccountId,
        amount,
    })
}

/// Item `number` of two-phase-commit client `client`'s workload, over
/// `participants` (any order; at least two): the legs of transaction
/// `(client, number - 1)`.
pub fn two_phase_commit_legs(
    client: NodeId,
    number: u64,
    seed: u64,
    participants: &[NodeId],
) -> Result<Vec<Leg>, WorkloadError> {
    let amount = check_number(number)?;
    let mut sorted = participants.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let count = sorted.len();
    if count < 2 {
        return Err(WorkloadError::TooFewParticipants { count });
    }
    let h = mix(client, number, seed);
    let from = (h % count as u64) as usize;
    // A distinct second index: from + 1 + (0..count-1), wrapped.
    let to = (from + 1 + ((h >> 32) % (count as u64 - 1)) as usize) % count;
    Ok(transfer_legs(
        (sorted[from], client),
        (sorted[to], client),
        amount,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_deterministic_and_carry_their_number() {
        let a = ack_retry_transfer(3, 17, 9).unwrap();
        assert_eq!(a, ack_retry_transfer(3, 17, 9).unwrap());
        assert_eq!((a.from, a.amount), (3, 17));
        assert!((RECEIVER_ACCOUNT_BASE..RECEIVER_ACCOUNT_BASE + 16).contains(&a.to));
        let spread: std::collections::BTreeSet<_> = (1..=200)
            .map(|k| ack_retry_transfer(3, k, 9).unwrap().to)
            .collect();
        assert!(spread.len() > 8, "the hash spreads items over accounts");
    }

    #[test]
    fn transactions_use_two_distinct_participants_and_sum_to_zero() {
        for k in 1..=500 {
            let legs = two_phase_commit_legs(7, k, 1, &[12, 10, 11]).unwrap();
            assert_eq!(legs.len(), 2);
            assert_ne!(legs[0].participant, legs[1].participant);
            assert_eq!(legs[0].posting.delta + legs[1].posting.delta, 0);
            assert_eq!(legs[1].posting.delta, k as i64);
        }
    }

    #[test]
    fn bounds_are_typed_errors() {
        assert_eq!(
            ack_retry_transfer(1, 0, 0),
            Err(WorkloadError::NumberOutOfRange { number: 0 })
        );
        assert!(ack_retry_transfer(1, WORKLOAD_ITEMS_MAX, 0).is_ok());
        assert!(ack_retry_transfer(1, WORKLOAD_ITEMS_MAX + 1, 0).is_err());
        assert_eq!(
            two_phase_commit_legs(1, 1, 0, &[4, 4]),
            Err(WorkloadError::TooFewParticipants { count: 1 })
        );
    }
}
