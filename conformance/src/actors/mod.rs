//! The implementation's sans-IO cores as Stateright actors inside the models' system.
//!
//! Each adapter wraps the cores of one protocol (`eo_impl::ack_retry`,
//! `eo_impl::two_phase_commit`) in a Stateright [`Actor`](stateright::actor::Actor)
//! and runs it inside `eo_models::system::System`, so that the implementation
//! meets the very network (lossy, reordering, optionally duplicating or FIFO),
//! crash budget, disk losses and syncing log the models are checked under.
//!
//! ## One step of a core, as the adapter drives it
//!
//! A delivery or a timer firing feeds the core one input (`handle_message`,
//! `handle_timeout`, a role's application command), then the adapter carries out
//! the core's [`Ready`](eo_impl::Ready) exactly as `eo_impl::core` prescribes,
//! with the implementation's own types ([`release`]): `persist` into a fresh
//! `MemLog`, `sync` it for the [`Durable`](eo_impl::release::Durable) proof,
//! `open` the release with it. The records become the actor's storage — its log,
//! the records appended so far — in one `save`; the released messages are sent.
//! What "durable" means is then the system's log mode: under `atomic` the save
//! is durable and the sends leave in the same step; under `sync` the save is a
//! run of appends (one per record, see each adapter's `records`) to the actor's
//! unsynced tail, and the sends are held until a `Sync` step makes the tail
//! durable, so a message never leaves before the records it rests on — of this
//! step and of every earlier one. A crash keeps any prefix of the tail.
//!
//! Recovery (Stateright's `on_start` with the stored log) replays the records
//! through the core's `recover`; an empty disk starts the core with `new`.
//!
//! ## Time
//!
//! Cores take `now` and arm deadlines. The adapters' clock stands still at
//! [`NOW`], past every deadline a core can arm (deadlines saturate there), so a
//! core's armed deadline is always due: a Stateright timer is armed exactly while
//! `poll_timeout()` is `Some`, and its firing is `handle_timeout(NOW)`, which
//! fires everything armed. Retransmission deadlines and backoff intervals
//! then never decide anything, and they are left out of a state's hash and
//! equality (the cores' `protocol()` views); so are the clock and the counters.
//! What a standing clock does not check: timing itself — backoff growth, the
//! receiver's retention (a sender never looks idle), the participants' vote
//! timeouts measured against real time. Everything else (every interleaving of
//! deliveries, losses, retransmissions and faults) is checked.

pub mod ack_retry;
pub mod checked;
pub mod release;
pub mod two_phase_commit;

use eo_impl::Time;

/// The adapters' clock: every input is fed at this instant. It is past every
/// deadline a core arms (`Time + Duration` saturates at it), so a core's armed
/// deadline is always due. See the module docs.
pub const NOW: Time = Time(u64::MAX);

/// A configuration number outside the range an adapter can check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BoundError {
    /// `name` is `value`, outside `min..=max`.
    #[error("{name} {value} is out of range: it must be between {min} and {max}")]
    OutOfRange {
        name: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
    /// The configuration as a whole is too large to check exhaustively.
    #[error("{0}")]
    TooLarge(String),
}

/// `value` if it lies in `min..=max`, else a [`BoundError::OutOfRange`].
pub fn bounded(name: &'static str, value: u32, min: u32, max: u32) -> Result<u8, BoundError> {
    if value < min || value > max || max > u32::from(u8::MAX) {
        return Err(BoundError::OutOfRange {
            name,
            value,
            min,
            max,
        });
    }
    Ok(value as u8)
}

/// Equality and hashing of a checked actor's state through its `view()`: the
/// protocol-relevant part, without deadlines, counters or the clock, so that
/// the checker identifies states the protocol cannot tell apart.
macro_rules! identity_by_view {
    ($state:ty) => {
        impl PartialEq for $state {
            fn eq(&self, other: &Self) -> bool {
                self.view() == other.view()
            }
        }

        impl Eq for $state {}

        impl std::hash::Hash for $state {
            fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
                self.view().hash(h);
            }
        }
    };
}
pub(crate) use identity_by_view;
