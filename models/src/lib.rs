//! # eo-models — exactly-once protocols, model-checked
//!
//! Stateright actor models of the mechanisms that make message processing
//! exactly-once under loss, duplication, reordering and crash-recovery, each with
//! named bug variants that the checker must catch:
//!
//! - [`ack_retry`]: a durable outbox retransmitted until acknowledged, and a
//!   receiver that saves the effect and its dedup record in one step.
//! - [`two_phase_spec`]: Gray and Lamport's TwoPhase, the abstract two-phase
//!   commit, and [`two_phase_commit`]: an actor model of 2PC with crash recovery,
//!   presumed abort and client retries that refines it.
//!
//! [`system`] adds what every model shares (a total crash budget, readable
//! steps, exact fingerprints), [`graph`] builds the explicit state graph that
//! the default check and `progress` properties use, [`check`] runs the
//! checker and reports, and [`catalog`] is what the
//! `eo` command line lists, checks and explores.

pub mod ack_retry;
pub mod catalog;
pub mod check;
pub mod graph;
#[cfg(test)]
mod sync_log_tests;
pub mod system;
pub mod two_phase_commit;
pub mod two_phase_spec;
#[cfg(test)]
mod walk;
