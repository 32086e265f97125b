//! Abstraction functions: an implementation core's state mapped to the model's state.
//!
//! For each protocol ([`ack_retry`], [`two_phase_commit`]) a pure function maps
//! a core (sender, receiver; client, coordinator, participant) to the model
//! actor's volatile state, the core's log records to the model actor's storage,
//! and a wire message to the model's message. The functions are **partial**:
//! where the implementation goes beyond what the model can represent (a seq
//! beyond the model's set capacity, a transaction the client never numbered
//! in the model's range, a retired sender, a message kind the model lacks) they
//! return an [`AbstractionError`] naming what is out of bounds; they never
//! panic.
//!
//! What the model keeps that the implementation does not (the application's
//! ghost counts, the model's nonces) is passed in by the caller, who drives both
//! and knows it: see each module's `Ghost` types.
//!
//! [`Diff`] is a field-by-field difference between two abstract states, what
//! refinement and driving print when the implementation and the model part.

pub mod ack_retry;
pub mod diff;
pub mod two_phase_commit;

pub use diff::{diff_system, flight_view, Diff, FieldDiff, Fields};

use eo_impl::core::NodeId;

/// Why an implementation state, record or message has no model counterpart.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AbstractionError {
    /// A number is beyond what the model's type holds (a seq beyond the
    /// model's set capacity, a count beyond `u8`).
    #[error("{what} {value} is beyond the model's bound {max}")]
    BeyondBound {
        what: &'static str,
        value: u64,
        max: u64,
    },
    /// A node id that is no actor of the model's layout.
    #[error("node {node} is not {expected} in the model's layout")]
    UnknownNode {
        node: NodeId,
        expected: &'static str,
    },
    /// An incarnation that is neither the sender's installed one nor one granted
    /// after installation.
    #[error("incarnation {incarnation} of sender {sender} has no model counterpart")]
    ForeignIncarnation { sender: NodeId, incarnation: u64 },
    /// An application payload (transfer, posting, transaction) that does not
    /// follow the encoding the conformance drivers use for the model's ghost
    /// identities.
    #[error("payload not in the conformance encoding: {what}")]
    ForeignPayload { what: String },
    /// A nonce no ghost map entry explains.
    #[error("nonce {nonce} of sender {sender} has no model nonce")]
    UnknownNonce { sender: NodeId, nonce: u64 },
    /// The implementation's state contradicts the ghost the caller passed in.
    #[error("{what}: the ghost says {ghost}, the implementation {actual}")]
    GhostMismatch {
        what: &'static str,
        ghost: String,
        actual: String,
    },
    /// State the implementation has and the model does not represent (a
    /// retired sender, a busy answer, a forgotten transaction …).
    #[error("not modelled: {what}")]
    NotModelled { what: String },
    /// The records do not rebuild a core: they are no storage the core wrote.
    #[error("the log does not recover: {0}")]
    Recover(String),
}

/// A number narrowed to the model's type, or [`AbstractionError::BeyondBound`].
pub(crate) fn narrow(what: &'static str, value: u64, max: u8) -> Result<u8, AbstractionError> {
    u8::try_from(value)
        .ok()
        .filter(|v| *v <= max)
        .ok_or(AbstractionError::BeyondBound {
            what,
            value,
            max: u64::from(max),
        })
}
