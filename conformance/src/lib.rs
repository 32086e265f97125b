//! # eo-conformance — the reference implementation held to the models
//!
//! `eo-models` and `eo-impl` never depend on each other: the implementation is
//! checked against the models, never generated from them. This crate is where
//! the two meet, along three paths:
//!
//! - [`actors`]: the implementation's sans-IO cores run as Stateright actors
//!   inside the models' fault-injecting system, checked exhaustively against
//!   the models' named properties (`eo check impl-ack-retry`,
//!   `eo check impl-two-phase-commit`); [`catalog`] lists them beside the
//!   models for `eo list` and `eo check`;
//! - [`abstraction`]: functions from an implementation core's state to the
//!   model's state, used for refinement (every implementation step is a model
//!   step or a stutter) and by [`drive`];
//! - [`drive`]: model behaviours (bounded paths, seeded random walks) replayed
//!   against the cores, comparing abstract states after every step, with the
//!   coverage of the model's reachable states;
//! - [`validate`]: JSON-lines traces of the simulator or of real `eo node`
//!   processes checked to be behaviours of the model (`eo validate`).

pub mod abstraction;
pub mod actors;
pub mod catalog;
pub mod drive;
pub mod refinement;
pub mod validate;
