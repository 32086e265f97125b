//! # eo-impl — the reference implementation of exactly-once processing
//!
//! The protocol logic lives in *sans-IO cores*: deterministic state machines that
//! never touch a socket, a file, a clock or a random number generator. A driver
//! feeds them inputs and carries out their outputs:
//!
//! - inputs: [`Core::handle_message`], [`Core::handle_timeout`] and the role's own
//!   application commands, each given the current [`Time`];
//! - outputs: [`Core::poll_ready`] returns a [`Ready`] — records to persist,
//!   messages that may leave only once those records are durable, and application
//!   events — and [`Core::poll_timeout`] the next deadline. The order is enforced
//!   by types ([`release`]): `ready.persist(&mut log)` → `log.sync_proof()` →
//!   `release.open(proof)`.
//!
//! Two drivers run the same cores: the deterministic simulator (one thread, virtual
//! time, one `u64` seed) and the real runtime (files with fsync, TCP). This crate
//! never depends on `eo-models`: the implementation is checked against the models,
//! never generated from them.

pub mod ack_retry;
pub mod bank;
pub mod core;
pub mod disk;
pub mod release;
pub mod runtime;
pub mod sim;
#[cfg(test)]
mod trace_capture;
pub mod two_phase_commit;
pub mod wal;

pub use crate::core::{Core, Envelope, NodeId, Ready, Time};
