//! The contract every protocol core follows, and the small types it speaks in.
//!
//! A core is a deterministic state machine. One driver step is, in this call order:
//!
//! 1. feed one input: `handle_message(now, from, msg)`, `handle_timeout(now)`, or a
//!    role-specific application command;
//! 2. `poll_ready()` → [`Ready`]; then
//!    - `ready.persist(&mut log)` appends every record and returns a
//!      [`Release`](crate::release::Release) that depends on the log's last
//!      position (this `Ready`'s records **and every earlier `Ready`'s**);
//!    - `log.sync_proof()` syncs and returns a [`Durable`](crate::release::Durable)
//!      proof of the position now durable;
//!    - `release.open(proof)` yields the messages to send and the events to hand to
//!      the application, or refuses with a typed
//!      [`Refused`](crate::release::Refused) if the proof does not
//!      reach the release's position or comes from another life of the log;
//! 3. arm a timer for `poll_timeout()`.
//!
//! ## The ordering contract, enforced by types
//!
//! A message in a `Ready` (an acknowledgement, a yes vote, a decision) may state a
//! fact that is true only once the records are durable; sending it earlier is
//! exactly the `ack-before-persist` bug of the models. Some messages carry no record
//! of their own and are true only because of an earlier one: a receiver's re-ack of
//! a duplicate, a participant's repeated yes vote, the coordinator's outcome for a
//! retried Begin or its answer to a query, the `low` in a client's Begin. So the
//! messages and events of a `Ready` may be released only once the records of that
//! `Ready` and of every earlier `Ready` of the same core are durable.
//!
//! [`crate::release`] turns this into types: a `Ready`'s fields are private, the
//! only way to its messages is a `Release` made by appending its records to a log,
//! and a `Release` opens only with a proof that only a log makes. Sending before
//! appending does not compile; opening with a proof from before the sync is a
//! typed refusal. A `Ready` without records depends on the position of the last
//! record appended before it, so a pipelined driver (group commit, sends
//! overlapping a later sync) that holds each `Release` until a proof covers it
//! meets the contract without further thought.
//!
//! After a crash, a driver rebuilds the core with `recover(records)` from what the
//! log returned, then continues at step 2 (a recovered core may have messages to
//! re-send).
//!
//! In the spirit of raft-rs's `Ready` and quinn-proto's `poll_*` methods, outputs
//! are pulled, never pushed, so the driver alone decides when I/O happens.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Add;
use std::time::Duration;

pub use crate::release::Ready;

/// A node's address in a cluster. Drivers map it to a socket or a simulated link.
pub type NodeId = u32;

/// A point in time, in microseconds since the driver's epoch.
///
/// Cores never read a clock: the driver passes `now` in. The simulator's time is
/// virtual; the real runtime's is the elapsed time since it started.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Time(pub u64);

impl Time {
    pub const ZERO: Time = Time(0);

    pub fn from_millis(ms: u64) -> Time {
        Time(ms * 1_000)
    }

    pub fn as_micros(self) -> u64 {
        self.0
    }

    /// Moves a core's clock forward to `now`.
    ///
    /// # Panics
    /// If `now` is earlier than the clock: the driver must pass times that never
    /// go backwards, so this is caller misuse, not a protocol error.
    pub fn advance_to(&mut self, now: Time) {
        assert!(now >= *self, "time went backwards: {now} < {self}");
        *self = now;
    }

    /// The time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Time(self.0.saturating_add(micros))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// A message addressed to a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<M> {
    pub to: NodeId,
    pub msg: M,
}

/// The driver-facing half of every protocol core. Role-specific inputs (for
/// example a sender's `submit`) are inherent methods of each role.
pub trait Core: Sized {
    /// Wire messages between nodes of this protocol.
    type Msg: Clone + fmt::Debug + Serialize + for<'de> Deserialize<'de>;
    /// Log records of this role; the log stores them serialised.
    type Record: Clone + fmt::Debug + Serialize + for<'de> Deserialize<'de>;
    /// Application-visible outcomes.
    type Event: Clone + fmt::Debug;
    /// Protocol-level errors: bad input from a peer or from the log.
    type Error: std::error::Error;

    /// A message arrived from `from`.
    fn handle_message(
        &mut self,
        now: Time,
        from: NodeId,
        msg: Self::Msg,
    ) -> Result<(), Self::Error>;

    /// The deadline from `poll_timeout` passed. Calling it early is harmless.
    fn handle_timeout(&mut self, now: Time);

    /// The earliest time at which `handle_timeout` has work to do, if any.
    fn poll_timeout(&self) -> Option<Time>;

    /// Takes the outputs accumulated since the last call. A driver reaches the
    /// messages and events only through [`Ready::persist`] and
    /// [`Release::open`](crate::release::Release::open) (see the module docs): even
    /// a `Ready` without records depends on records of an earlier call.
    fn poll_ready(&mut self) -> Ready<Self::Record, Self::Msg, Self::Event>;

    /// One record that stands for the whole durable state, so that the log can be
    /// compacted to it: `recover([snapshot])` rebuilds an equivalent core.
    fn snapshot(&self) -> Self::Record;
}
