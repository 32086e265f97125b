//! Refinement: every step of the implementation's system is a step of the
//! model's system, or a stutter.
//!
//! For an adapted system (the cores as actors, [`crate::actors`]) and the
//! model it claims to implement, an abstraction `A` maps each reachable state
//! of the implementation's system — every actor's core and log, the network,
//! the timers, the unsynced tails, the crash count — to a state of the model's
//! [`System`](eo_models::system::System). [`check`] walks the implementation's
//! whole reachable graph (breadth first, within its boundary, the graph
//! `eo check impl-*` searches) and holds every transition `s → s'` to
//!
//! - `A(s') = A(s)`: a **stutter** (the implementation did something the model
//!   does not see, such as retransmitting a copy already in flight), or
//! - `A(s')` is a successor of `A(s)` computed by the model's own code
//!   (`Model::actions` and `Model::next_state` of the model's system): a
//!   **model step**, or
//! - where the protocol names a **compound** rule ([`Abstraction::follows`]):
//!   `A(s')` is reached from `A(s)` by a model step and then the one follow-up
//!   step the rule allows (the ack-retry sender's recovery re-sends its outbox
//!   at once; the model's re-sends at its next `Retry` timeout).
//! - a crash the model's system leaves out of a **settled** state (it offers
//!   crashes only while work is in flight, see `eo_models::system`), computed
//!   by its own `next_state` ([`check::settled_crashes`]).
//!
//! Expected states are never written by hand: they are the model's successors.
//! The first transition that is none of these fails the check, reported with
//! the implementation's path to it, its action, the abstract state before it
//! and a field-by-field [`Diff`](crate::abstraction::Diff) between `A(s')` and
//! the nearest model successor ([`Failure`]).
//!
//! The abstraction may need **history** the implementation's state does not
//! keep (Abadi and Lamport's history variables): the ack-retry receiver grants
//! a fresh incarnation to every request, retransmissions included, where the
//! model answers a repeated request alike, so which implementation incarnation
//! is which model incarnation depends on the requests that led to it. Such a
//! history is the abstraction's [`Abstraction::Ghost`], carried along the
//! search; a state reached with two histories is explored with each.

pub mod ack_retry;
pub mod check;
pub mod describe;
pub mod report;

pub use check::{check, Abstraction, Failure, Outcome, RefinementError, Summary};
pub use report::property_report;
