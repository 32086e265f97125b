//! # The deterministic simulator
//!
//! One thread, virtual time, one `u64` seed. The simulator runs a cluster of
//! protocol cores (see [`crate::core`]) over a simulated network and simulated
//! disks, injects faults, keeps a *ghost history* of what the application was
//! promised, and checks end-to-end invariants against it. Everything random —
//! fault options left unspecified, the workload, network delays, losses,
//! duplicates, crash points, torn writes — is drawn from one
//! [`ChaCha8Rng`] seeded with the run's seed, so a run is a pure function of
//! `(seed, fault options, scenario config)` and a failure replays exactly.
//!
//! ## A node
//!
//! A node is a core plus a [`Wal`] over a [`SimDisk`]. Every driver step is:
//!
//! 1. one input: a delivered message, an expired timer, or a workload command;
//! 2. `poll_ready` → `persist` (append every record) → *[crash point
//!    "after-append"]* → `sync_proof` → *[crash point "after-sync"]* → `open` the
//!    release with the proof, send the messages and release the events (to the
//!    scenario's ghost history);
//! 3. maybe compact the log to `snapshot()` (every `compact_every` records);
//! 4. re-arm the node's timer from `poll_timeout`.
//!
//! A crash drops the core and the log's memory and calls [`SimDisk::crash`]: the
//! disk loses unsynced writes (a random prefix may survive) and may tear the
//! last one. After a restart delay the node reopens its log with [`Wal::open`],
//! decodes the records and rebuilds its core through [`Scenario::recover`], then
//! continues at step 2. Messages addressed to a node that is down are lost.
//!
//! A *disk loss* (`disk_losses` per run, at random points of the workload's
//! progress) crashes a node that the scenario allows ([`Scenario::may_lose_disk`])
//! and replaces its disk with an empty one: the node restarts as if new, and the
//! scenario is told ([`Scenario::on_disk_lost`]) so that its ghost history drops
//! what a lost disk loses.
//!
//! ## Phases
//!
//! - **Fault phase**: the network loses (`loss`), duplicates (`dup`) and delays
//!   a fraction of messages by up to [`REORDER_DELAY_MAX`] on top of the normal
//!   jitter (`reorder`); `crashes` crashes are triggered at random points of
//!   the workload's progress, each at a random node and a random crash point, and
//!   `disk_losses` disk losses likewise. The
//!   phase ends when the scenario reports all its work done and every crash has
//!   happened, or when nothing progressed for [`STALL_MAX`].
//! - **Healed phase**: no loss, no duplication, no extra delay, no crashes; every
//!   node that is down restarts at once. The cluster must then converge without
//!   ever going [`CONVERGE_WITHIN`] without progress (when the fault phase ended
//!   with the work done, that is: converge within `CONVERGE_WITHIN` of healing).
//!   Failing to is a `convergence` violation.
//! - **Drain**: once converged, messages still in flight (late duplicates) are
//!   delivered, then the scenario checks its final invariants.
//!
//! ## Adding a protocol: the [`Scenario`] extension point
//!
//! A scenario (`sim/ack_retry.rs`; `sim/two_phase_commit.rs` next to it) owns
//! the workload and the ghost history and is driven through callbacks:
//! `boot`/`recover` build cores, `workload` issues application commands,
//! `on_polled`/`on_released` observe a node's outputs before and after they are
//! durable, `on_crash`/`on_recovered` reconcile the ghost history with what a
//! crash legitimately undid (and flag what it must not have), `progress` and
//! `converged` drive the phases, `check_final` checks the end-to-end invariants.
//! A cluster whose roles are different core types uses [`Either`], which is a
//! [`Core`] whenever both roles speak the same message type. Then:
//!
//! ```
//! use eo_impl::sim::{self, two_phase_commit::{Config, TwoPhaseCommit}, FaultSpec, Options};
//!
//! let config = Config { transactions: 50, participants: 3 };
//! let faults = FaultSpec { loss: Some(0.2), crashes: Some(2), ..FaultSpec::default() };
//! let report = sim::run::<TwoPhaseCommit>(&config, &Options::new(7, faults));
//! assert!(report.ok(), "{}", report.replay_command());
//! ```

pub mod ack_retry;
pub mod two_phase_commit;

use crate::core::{Core, Envelope, NodeId, Ready, Time};
use crate::disk::SimDisk;
use crate::runtime::trace::Tracer;
use crate::wal::Wal;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

/// The simulator's only source of randomness.
pub type SimRng = ChaCha8Rng;

/// The outputs of a core `C`.
pub type ReadyOf<C> = Ready<<C as Core>::Record, <C as Core>::Msg, <C as Core>::Event>;

/// One-way network delay without faults: uniform in `[DELAY_MIN, DELAY_MAX]`.
pub const DELAY_MIN: Duration = Duration::from_millis(1);
pub const DELAY_MAX: Duration = Duration::from_millis(10);
/// A reordered message is delayed by up to this much more.
pub const REORDER_DELAY_MAX: Duration = Duration::from_millis(200);
/// A crashed node is down for a time uniform in `[RESTART_DELAY_MIN, RESTART_DELAY_MAX]`.
pub const RESTART_DELAY_MIN: Duration = Duration::from_millis(1);
pub const RESTART_DELAY_MAX: Duration = Duration::from_millis(300);
/// An armed crash that found no step with records to interrupt within this time
/// crashes the node between steps.
pub const ARMED_CRASH_WAIT: Duration = Duration::from_millis(20);
/// The workload is offered commands this often.
pub const WORKLOAD_TICK: Duration = Duration::from_millis(1);
/// The fault phase ends early if nothing progressed for this long.
pub const STALL_MAX: Duration = Duration::from_secs(120);
/// After healing, the cluster never goes this long without progress, and
/// converges within it once the work is done.
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(5);
/// Logs are compacted every `compact_every` records, drawn per run in this range.
pub const COMPACT_EVERY_MIN: u64 = 16;
pub const COMPACT_EVERY_MAX: u64 = 512;
/// Fault options left unspecified are drawn below these bounds.
pub const LOSS_DRAW_MAX: f64 = 0.3;
pub const DUP_DRAW_MAX: f64 = 0.3;
pub const REORDER_DRAW_MAX: f64 = 0.3;
pub const CRASHES_DRAW_MAX: u32 = 6;
/// At most this many crashes per run.
pub const CRASHES_MAX: u32 = 10_000;
/// Disk losses left unspecified are drawn in `0..=DISK_LOSSES_DRAW_MAX`.
pub const DISK_LOSSES_DRAW_MAX: u32 = 2;
/// At most this many disk losses per run.
pub const DISK_LOSSES_MAX: u32 = 1_000;
/// A run stops with a violation after this many violations (the first is what matters).
const VIOLATIONS_MAX: usize = 16;

// ---------------------------------------------------------------------------------
// Fault options
// ---------------------------------------------------------------------------------

/// Fault options as given by a user: `None` is drawn from the seed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultSpec {
    pub loss: Option<f64>,
    pub dup: Option<f64>,
    pub reorder: Option<f64>,
    pub crashes: Option<u32>,
    pub disk_losses: Option<u32>,
}

/// The fault options of one run, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Probability that a message is lost, in `[0, 1)`.
    pub loss: f64,
    /// Probability that a message is delivered twice, in `[0, 1]`.
    pub dup: f64,
    /// Probability that a message is delayed by up to [`REORDER_DELAY_MAX`] extra, in `[0, 1]`.
    pub reorder: f64,
    /// Crashes during the fault phase, at most [`CRASHES_MAX`].
    pub crashes: u32,
    /// Disk losses during the fault phase, at most [`DISK_LOSSES_MAX`]: a node
    /// the scenario allows ([`Scenario::may_lose_disk`]) crashes and restarts with
    /// an empty disk.
    #[serde(default)]
    pub disk_losses: u32,
}

/// Fault options a run cannot use.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FaultError {
    /// Loss must leave some chance of delivery.
    #[error("loss must be in [0, 1), got {0}")]
    Loss(f64),
    /// Duplication is a probability.
    #[error("dup must be in [0, 1], got {0}")]
    Dup(f64),
    /// Reordering is a probability.
    #[error("reorder must be in [0, 1], got {0}")]
    Reorder(f64),
    /// Crashes are bounded.
    #[error("crashes must be at most {CRASHES_MAX}, got {0}")]
    Crashes(u32),
    /// Disk losses are bounded.
    #[error("disk losses must be at most {DISK_LOSSES_MAX}, got {0}")]
    DiskLosses(u32),
    /// Disk losses were asked of a scenario where no node may lose its disk.
    #[error("{scenario}: no node may lose its disk, so --disk-losses must be 0, got {count}")]
    NoDiskToLose { scenario: &'static str, count: u32 },
}

impl FaultSpec {
    /// [`FaultSpec::validate`], and refuses disk losses for a scenario where no
    /// node may lose its disk (they would be silently ignored).
    pub fn validate_for<S: Scenario>(&self) -> Result<(), FaultError> {
        self.validate()?;
        match self.disk_losses {
            Some(count) if count > 0 && !S::LOSES_DISKS => Err(FaultError::NoDiskToLose {
                scenario: S::NAME,
                count,
            }),
            _ => Ok(()),
        }
    }

    pub fn validate(&self) -> Result<(), FaultError> {
        let unit = |p: f64| (0.0..=1.0).contains(&p);
        if let Some(p) = self.loss.filter(|&p| !(unit(p) && p < 1.0)) {
            return Err(FaultError::Loss(p));
        }
        if let Some(p) = self.dup.filter(|&p| !unit(p)) {
            return Err(FaultError::Dup(p));
        }
        if let Some(p) = self.reorder.filter(|&p| !unit(p)) {
            return Err(FaultError::Reorder(p));
        }
        if let Some(n) = self.crashes.filter(|&n| n > CRASHES_MAX) {
            return Err(FaultError::Crashes(n));
        }
        if let Some(n) = self.disk_losses.filter(|&n| n > DISK_LOSSES_MAX) {
            return Err(FaultError::DiskLosses(n));
        }
        Ok(())
    }

    /// Draws every option (so the random stream does not depend on which were
    /// given), then keeps the given ones. A scenario where no node may lose its
    /// disk gets 0 disk losses, so its report states the count actually used.
    fn resolve(&self, rng: &mut SimRng, seed: u64, loses_disks: bool) -> Faults {
        let drawn = Faults {
            loss: rng.random_range(0.0..LOSS_DRAW_MAX),
            dup: rng.random_range(0.0..DUP_DRAW_MAX),
            reorder: rng.random_range(0.0..REORDER_DRAW_MAX),
            crashes: rng.random_range(0..=CRASHES_DRAW_MAX),
            disk_losses: 0,
        };
        // Drawn from a stream of its own, so that runs without disk losses replay
        // exactly as before the fault existed.
        let drawn_disk_losses = disk_rng(seed).random_range(0..=DISK_LOSSES_DRAW_MAX);
        Faults {
            loss: self.loss.unwrap_or(drawn.loss),
            dup: self.dup.unwrap_or(drawn.dup),
            reorder: self.reorder.unwrap_or(drawn.reorder),
            crashes: self.crashes.unwrap_or(drawn.crashes),
            disk_losses: if loses_disks {
                self.disk_losses.unwrap_or(drawn_disk_losses)
            } else {
                0
            },
        }
    }
}

/// The random stream of the disk-loss fault: its count, when, and which node.
fn disk_rng(seed: u64) -> SimRng {
    const DISK_LOSS_STREAM: u64 = 0xd15c_1055;
    SimRng::seed_from_u64(seed ^ DISK_LOSS_STREAM)
}

/// A deliberately broken driver, to show that the checks catch real bugs. Never
/// used outside tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriverBug {
    /// Sends messages and releases events after appending the records but
    /// *before* syncing them, through [`Release::open_before_durable`] (the only
    /// way the types allow it): the `ack-before-persist` bug of the models.
    ///
    /// [`Release::open_before_durable`]: crate::release::Release::open_before_durable
    SendBeforeSync,
    /// Never fires timers: a lost message is never retransmitted, so the
    /// cluster cannot converge.
    IgnoreTimers,
    /// Panics at the [`PANIC_AT_EVENT`]th event, standing in for a core's
    /// `assert!` firing: the run must still report its seed.
    Panic,
    /// After a disk loss, writes the node's old identity
    /// ([`Scenario::identity_records`]) onto the new disk, as an operator who
    /// restores a node's configuration would: the node resumes under an
    /// incarnation that an earlier life already used.
    RestoreIdentity,
}

/// The event at which [`DriverBug::Panic`] panics.
pub const PANIC_AT_EVENT: u64 = 100;

/// How to run one simulation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    pub seed: u64,
    pub faults: FaultSpec,
    pub bug: Option<DriverBug>,
}

impl Options {
    pub fn new(seed: u64, faults: FaultSpec) -> Options {
        Options {
            seed,
            faults,
            bug: None,
        }
    }
}

// ---------------------------------------------------------------------------------
// The scenario extension point
// ---------------------------------------------------------------------------------

/// A broken invariant, found during or after a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Virtual time, in microseconds, at which it was found.
    pub at_us: u64,
    /// Short kebab-case name of what must hold: `exactly-once`, `no-loss`, …
    pub property: String,
    pub detail: String,
}

/// Where scenarios put the violations they find.
#[derive(Debug, Default)]
pub struct Violations {
    now: Time,
    found: Vec<Violation>,
}

impl Violations {
    pub fn push(&mut self, property: &str, detail: impl Into<String>) {
        if self.found.len() < VIOLATIONS_MAX {
            let detail = detail.into();
            tracing::debug!(target: "eo::sim", at = %self.now, property, %detail, "violation");
            self.found.push(Violation {
                at_us: self.now.as_micros(),
                property: property.to_owned(),
                detail,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }
}

/// Read access to the cluster's cores, for a scenario's checks.
pub struct Cluster<'a, C> {
    nodes: &'a [Node<C>],
}

impl<'a, C: Core> Cluster<'a, C> {
    /// The core of node `id`, or `None` while it is down.
    pub fn core(&self, id: NodeId) -> Option<&'a C> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .and_then(|n| n.core.as_ref())
    }

    pub fn all_up(&self) -> bool {
        self.nodes.iter().all(|n| n.core.is_some())
    }

    /// Every node's id and core (`None` while down).
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, Option<&'a C>)> + 'a {
        self.nodes.iter().map(|n| (n.id, n.core.as_ref()))
    }
}

/// How far a scenario's work has come: `done` of `total` units (messages
/// acknowledged, transactions decided). Crashes are spread over this progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// A protocol under simulation: its workload, its ghost history and its
/// invariants. See the module docs for how a scenario plugs in.
pub trait Scenario: Sized {
    /// The cluster's core type: one role, or an [`Either`] of two roles.
    type Core: Core;
    /// What the user chooses (sizes of the workload and of the cluster).
    type Config: Clone + fmt::Debug;
    /// The CLI subcommand that replays a run: `eo sim <NAME> …`.
    const NAME: &'static str;

    /// Builds the scenario; draw any random workload from `rng`.
    fn new(config: &Self::Config, rng: &mut SimRng) -> Self;
    /// The config as CLI flags, for the replay line (`--messages 100`).
    fn replay_args(&self) -> String;
    /// The cluster's nodes, fixed for the run.
    fn node_ids(&self) -> Vec<NodeId>;
    /// A node's core on first boot.
    fn boot(&mut self, id: NodeId) -> Self::Core;
    /// A node's core rebuilt from its recovered log (snapshot first).
    fn recover(
        &mut self,
        id: NodeId,
        now: Time,
        records: Vec<<Self::Core as Core>::Record>,
    ) -> Result<Self::Core, String>;
    /// Right after a restart: reconcile the ghost history with the recovered
    /// core (drop what the crash legitimately undid) and flag lost promises.
    fn on_recovered(
        &mut self,
        id: NodeId,
        now: Time,
        core: &Self::Core,
        violations: &mut Violations,
    );
    /// Right before a core is dropped at a crash (harvest its counters).
    fn on_crash(&mut self, id: NodeId, core: &Self::Core);
    /// Whether some node of this scenario may lose its disk
    /// ([`Scenario::may_lose_disk`] is true for one). If not, a run asked for disk
    /// losses is refused ([`FaultSpec::validate_for`]) and a drawn count is 0.
    const LOSES_DISKS: bool = false;
    /// Whether node `id` may lose its disk (the disk-loss fault picks among
    /// these). By default none may.
    fn may_lose_disk(&self, _id: NodeId) -> bool {
        false
    }
    /// Node `id` crashed and lost its disk (after `on_crash`): reconcile the ghost
    /// history with what a lost disk loses.
    fn on_disk_lost(&mut self, _id: NodeId, _now: Time) {}
    /// The records that restore node `id`'s identity on a new disk: used only by
    /// the planted [`DriverBug::RestoreIdentity`].
    fn identity_records(&self, _id: NodeId) -> Vec<<Self::Core as Core>::Record> {
        Vec::new()
    }
    /// A node's outputs as polled, before anything is durable.
    fn on_polled(
        &mut self,
        id: NodeId,
        now: Time,
        ready: &ReadyOf<Self::Core>,
        violations: &mut Violations,
    );
    /// A node's messages and events as released, after its records are durable.
    fn on_released(
        &mut self,
        id: NodeId,
        now: Time,
        messages: &[Envelope<<Self::Core as Core>::Msg>],
        events: &[<Self::Core as Core>::Event],
        violations: &mut Violations,
    );
    /// A core refused a message. By default any protocol error is a violation.
    fn on_error(
        &mut self,
        id: NodeId,
        error: &<Self::Core as Core>::Error,
        violations: &mut Violations,
    ) {
        violations.push("protocol-error", format!("node {id}: {error}"));
    }
    /// Offers node `id` (which is up) the chance to issue application commands;
    /// returns whether it did (then the driver flushes the node).
    fn workload(
        &mut self,
        now: Time,
        id: NodeId,
        core: &mut Self::Core,
        violations: &mut Violations,
    ) -> bool;
    /// Whether the workload still has commands to issue.
    fn workload_pending(&self) -> bool;
    /// The submissions `workload` made at node `id` since the last call, as
    /// `submit` trace fields (`{"transfer": …, "result": {"Ok": seq}}`): the
    /// simulator's trace ([`run_traced`]) writes one line each.
    fn take_submissions(&mut self, _id: NodeId) -> Vec<serde_json::Value> {
        Vec::new()
    }
    fn progress(&self) -> Progress;
    /// Whether every piece of work is complete and the cluster is at rest.
    fn converged(&self, cluster: &Cluster<'_, Self::Core>) -> bool;
    /// End-to-end invariants, after convergence.
    fn check_final(&mut self, cluster: &Cluster<'_, Self::Core>, violations: &mut Violations);
    /// Scenario-specific counters for the summary (`retransmissions`, …).
    fn counters(&self, cluster: &Cluster<'_, Self::Core>) -> BTreeMap<String, u64>;
    /// The fault phase ended at `now`: from here on the network is clean and no
    /// node crashes. A scenario with its own bound on the healed phase starts
    /// its clock here.
    fn on_healed(&mut self, _now: Time) {}
}

// ---------------------------------------------------------------------------------
// Either: two roles as one core type
// ---------------------------------------------------------------------------------

/// One of two roles (sender/receiver, coordinator/participant) as one type, so a
/// cluster of mixed roles is a `Vec` of one core type. Also used for the roles'
/// records, events and errors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Either<L, R> {
    Left(L),
    Right(R),
}

impl<L: fmt::Display, R: fmt::Display> fmt::Display for Either<L, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Either::Left(l) => l.fmt(f),
            Either::Right(r) => r.fmt(f),
        }
    }
}

impl<L: std::error::Error, R: std::error::Error> std::error::Error for Either<L, R> {}

fn map_ready<R, M, E, R2, E2>(
    ready: Ready<R, M, E>,
    r: impl Fn(R) -> R2,
    e: impl Fn(E) -> E2,
) -> Ready<R2, M, E2> {
    ready.map(r, e)
}

impl<L: Core, R: Core<Msg = L::Msg>> Core for Either<L, R> {
    type Msg = L::Msg;
    type Record = Either<L::Record, R::Record>;
    type Event = Either<L::Event, R::Event>;
    type Error = Either<L::Error, R::Error>;

    fn handle_message(
        &mut self,
        now: Time,
        from: NodeId,
        msg: Self::Msg,
    ) -> Result<(), Self::Error> {
        match self {
            Either::Left(l) => l.handle_message(now, from, msg).map_err(Either::Left),
            Either::Right(r) => r.handle_message(now, from, msg).map_err(Either::Right),
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        match self {
            Either::Left(l) => l.handle_timeout(now),
            Either::Right(r) => r.handle_timeout(now),
        }
    }

    fn poll_timeout(&self) -> Option<Time> {
        match self {
            Either::Left(l) => l.poll_timeout(),
            Either::Right(r) => r.poll_timeout(),
        }
    }

    fn poll_ready(&mut self) -> ReadyOf<Self> {
        match self {
            Either::Left(l) => map_ready(l.poll_ready(), Either::Left, Either::Left),
            Either::Right(r) => map_ready(r.poll_ready(), Either::Right, Either::Right),
        }
    }

    fn snapshot(&self) -> Self::Record {
        match self {
            Either::Left(l) => Either::Left(l.snapshot()),
            Either::Right(r) => Either::Right(r.snapshot()),
        }
    }
}

impl<L, R> Either<L, R> {
    pub fn left(&self) -> Option<&L> {
        match self {
            Either::Left(l) => Some(l),
            Either::Right(_) => None,
        }
    }

    pub fn right(&self) -> Option<&R> {
        match self {
            Either::Left(_) => None,
            Either::Right(r) => Some(r),
        }
    }

    pub fn left_mut(&mut self) -> Option<&mut L> {
        match self {
            Either::Left(l) => Some(l),
            Either::Right(_) => None,
        }
    }

    pub fn right_mut(&mut self) -> Option<&mut R> {
        match self {
            Either::Left(_) => None,
            Either::Right(r) => Some(r),
        }
    }
}

// ---------------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------------

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    /// Events processed (deliveries, timers, workload ticks, restarts).
    pub events: u64,
    pub messages_sent: u64,
    pub messages_lost: u64,
    pub messages_duplicated: u64,
    pub messages_reordered: u64,
    /// Messages that arrived at a node that was down.
    pub messages_to_down_nodes: u64,
    pub crashes: u64,
    pub crashes_after_append: u64,
    pub crashes_after_sync: u64,
    /// Crashes that also lost the node's disk.
    #[serde(default)]
    pub disk_losses: u64,
    pub restarts: u64,
    pub compactions: u64,
    pub syncs: u64,
    /// Virtual time at which the cluster healed.
    pub healed_at_us: u64,
    /// Virtual time at the end of the run.
    pub virtual_time_us: u64,
    /// Scenario counters (ack-retry: `retransmissions`, `duplicates_suppressed`, …).
    pub counters: BTreeMap<String, u64>,
}

/// The outcome of one run, with everything needed to replay it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub scenario: String,
    pub seed: u64,
    pub faults: Faults,
    pub bug: Option<DriverBug>,
    /// The scenario's config as CLI flags.
    pub config: String,
    /// Units of work (messages, transactions).
    pub work: u64,
    pub stats: RunStats,
    pub violations: Vec<Violation>,
}

impl RunReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// The command line that replays this run exactly.
    pub fn replay_command(&self) -> String {
        let f = &self.faults;
        format!(
            "eo sim {} --seed {} --runs 1 {} --loss {} --dup {} --reorder {} --crashes {} --disk-losses {}",
            self.scenario, self.seed, self.config, f.loss, f.dup, f.reorder, f.crashes, f.disk_losses
        )
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = &self.faults;
        write!(
            f,
            "seed={} loss={} dup={} reorder={} crashes={} disk_losses={} scenario={} {}",
            self.seed,
            x.loss,
            x.dup,
            x.reorder,
            x.crashes,
            x.disk_losses,
            self.scenario,
            self.config
        )?;
        if let Some(bug) = self.bug {
            write!(f, " bug={bug:?}")?;
        }
        writeln!(f)?;
        writeln!(f, "replay: {}", self.replay_command())?;
        for v in &self.violations {
            writeln!(
                f,
                "violation at {}: {}: {}",
                Time(v.at_us),
                v.property,
                v.detail
            )?;
        }
        Ok(())
    }
}

/// Totals over many runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub scenario: String,
    pub runs: u64,
    /// Units of work over all runs (messages for ack-retry).
    pub messages: u64,
    pub crashes: u64,
    #[serde(default)]
    pub disk_losses: u64,
    pub virtual_time_us: u64,
    pub events: u64,
    pub messages_sent: u64,
    pub messages_lost: u64,
    pub messages_duplicated: u64,
    pub compactions: u64,
    /// Scenario counters, summed (`retransmissions`, `duplicates_suppressed`, …);
    /// those named `*_max` (largest table sizes) are the maximum over runs.
    #[serde(flatten)]
    pub counters: BTreeMap<String, u64>,
    /// Runs with at least one violation.
    pub violations: u64,
    /// The reports of the failed runs (at most [`Summary::FAILURES_KEPT`]).
    pub failures: Vec<RunReport>,
}

impl Summary {
    pub const FAILURES_KEPT: usize = 10;

    pub fn add(&mut self, report: &RunReport) {
        self.scenario.clone_from(&report.scenario);
        self.runs += 1;
        self.messages += report.work;
        let s = &report.stats;
        self.crashes += s.crashes;
        self.disk_losses += s.disk_losses;
        self.virtual_time_us += s.virtual_time_us;
        self.events += s.events;
        self.messages_sent += s.messages_sent;
        self.messages_lost += s.messages_lost;
        self.messages_duplicated += s.messages_duplicated;
        self.compactions += s.compactions;
        for (k, v) in &s.counters {
            let total = self.counters.entry(k.clone()).or_default();
            if k.ends_with("_max") {
                *total = (*total).max(*v);
            } else {
                *total += v;
            }
        }
        if !report.ok() {
            self.violations += 1;
            if self.failures.len() < Self::FAILURES_KEPT {
                self.failures.push(report.clone());
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------------

/// The property of the violation that stands for a panic inside a run.
pub const PANIC_PROPERTY: &str = "panic";

/// Runs one simulation of scenario `S`. Never panics: a protocol failure is a
/// violation in the report, and so is a panic inside the run (a core's `assert!`
/// firing, a bug in the core or the driver), named [`PANIC_PROPERTY`] with the
/// panic's message and the virtual time it happened at, so the report still
/// names the seed and fault options that replay it. (The default panic hook
/// still prints the panic and its location to stderr.)
pub fn run<S: Scenario>(config: &S::Config, options: &Options) -> RunReport {
    run_with::<S>(config, options, false).0
}

/// Runs one simulation like [`run`] and also returns each node's protocol trace:
/// `(node, JSON lines)`, in the format of [`crate::runtime::trace`] (the one
/// real nodes write), for `eo validate`.
pub fn run_traced<S: Scenario>(
    config: &S::Config,
    options: &Options,
) -> (RunReport, Vec<(NodeId, Vec<u8>)>) {
    run_with::<S>(config, options, true)
}

fn run_with<S: Scenario>(
    config: &S::Config,
    options: &Options,
    traced: bool,
) -> (RunReport, Vec<(NodeId, Vec<u8>)>) {
    let mut slot: Option<Sim<S>> = None;
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let sim = slot.insert(Sim::<S>::new(config, options));
        sim.traced = traced;
        sim.execute();
    }));
    let traces = slot.as_mut().map_or_else(Vec::new, |sim| {
        sim.nodes
            .iter_mut()
            .map(|node| (node.id, node.tracer.take_lines()))
            .collect()
    });
    (run_report(options, outcome, slot), traces)
}

fn run_report<S: Scenario>(
    options: &Options,
    outcome: std::thread::Result<()>,
    slot: Option<Sim<S>>,
) -> RunReport {
    match (outcome, slot) {
        (Ok(()), Some(sim)) => sim.report(),
        (Err(payload), Some(sim)) => sim.panic_report(panic_message(payload.as_ref())),
        (outcome, None) => {
            // `Sim::new` itself panicked (building the scenario): report what the
            // options alone determine.
            let message = match outcome {
                Err(payload) => panic_message(payload.as_ref()),
                Ok(()) => "the simulator was not built".to_owned(),
            };
            let mut rng = SimRng::seed_from_u64(options.seed);
            RunReport {
                scenario: S::NAME.to_owned(),
                seed: options.seed,
                faults: options
                    .faults
                    .resolve(&mut rng, options.seed, S::LOSES_DISKS),
                bug: options.bug,
                config: String::new(),
                work: 0,
                stats: RunStats::default(),
                violations: vec![Violation {
                    at_us: 0,
                    property: PANIC_PROPERTY.to_owned(),
                    detail: message,
                }],
            }
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Runs `runs` simulations with seeds `seed, seed + 1, …`, calling `progress`
/// after each.
pub fn run_many<S: Scenario>(
    config: &S::Config,
    options: &Options,
    runs: u64,
    mut progress: impl FnMut(&RunReport, &Summary),
) -> Summary {
    let mut summary = Summary::default();
    for i in 0..runs {
        let report = run::<S>(
            config,
            &Options {
                seed: options.seed.wrapping_add(i),
                ..*options
            },
        );
        summary.add(&report);
        progress(&report, &summary);
    }
    summary
}

enum Event<M> {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: M,
        /// The sender's Lamport stamp (see [`crate::runtime::trace`]).
        stamp: u64,
    },
    Timer {
        node: usize,
        token: u64,
    },
    Workload,
    Restart {
        node: usize,
    },
    CrashIdle {
        node: usize,
        token: u64,
    },
}

struct Scheduled<M> {
    at: Time,
    /// Insertion order: ties in time are processed first-scheduled first.
    order: u64,
    event: Event<M>,
}

impl<M> PartialEq for Scheduled<M> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl<M> Eq for Scheduled<M> {}
impl<M> PartialOrd for Scheduled<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for Scheduled<M> {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest event.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CrashPoint {
    /// Between steps.
    Idle,
    /// After appending a step's records, before syncing them.
    AfterAppend,
    /// After syncing, before sending the step's messages.
    AfterSync,
}

struct Node<C> {
    id: NodeId,
    /// The node's trace (lines kept only by [`run_traced`]); its clock survives
    /// crashes, its incarnation counts the node's lives from 1.
    tracer: Tracer,
    /// `None` while the node is down.
    core: Option<C>,
    wal: Option<Wal<SimDisk>>,
    /// Survives crashes; the log is reopened on it.
    disk: SimDisk,
    /// The pending timer: its deadline and token.
    timer: Option<(Time, u64)>,
    /// A crash waiting for its point, with the token of its idle fallback.
    armed: Option<(CrashPoint, u64)>,
}

struct Sim<S: Scenario> {
    scenario: S,
    options: Options,
    faults: Faults,
    rng: SimRng,
    now: Time,
    queue: BinaryHeap<Scheduled<<S::Core as Core>::Msg>>,
    order: u64,
    token: u64,
    nodes: Vec<Node<S::Core>>,
    violations: Violations,
    stats: RunStats,
    /// Progress points at which a crash is armed, descending (the next is last).
    crash_at: Vec<u64>,
    crashes_armed: u32,
    /// Progress points at which a disk is lost, descending (the next is last).
    disk_loss_at: Vec<u64>,
    /// Chooses which node loses its disk.
    disk_rng: SimRng,
    compact_every: u64,
    healed: bool,
    last_progress: (u64, Time),
    /// The run ends once this is set and no message is in flight.
    converged: bool,
    /// Whether a workload tick is in the queue.
    workload_scheduled: bool,
    /// Whether the nodes' traces keep their lines ([`run_traced`]).
    traced: bool,
}

impl<S: Scenario> Sim<S> {
    fn new(config: &S::Config, options: &Options) -> Sim<S> {
        let mut rng = SimRng::seed_from_u64(options.seed);
        let faults = options
            .faults
            .resolve(&mut rng, options.seed, S::LOSES_DISKS);
        let scenario = S::new(config, &mut rng);
        let total = scenario.progress().total.max(1);
        let mut crash_at: Vec<u64> = (0..faults.crashes)
            .map(|_| rng.random_range(0..total))
            .collect();
        crash_at.sort_unstable_by(|a, b| b.cmp(a));
        let mut disk_rng = disk_rng(options.seed);
        let _count = disk_rng.random_range(0..=DISK_LOSSES_DRAW_MAX); // as in `resolve`
        let mut disk_loss_at: Vec<u64> = (0..faults.disk_losses)
            .map(|_| disk_rng.random_range(0..total))
            .collect();
        disk_loss_at.sort_unstable_by(|a, b| b.cmp(a));
        if !scenario
            .node_ids()
            .into_iter()
            .any(|id| scenario.may_lose_disk(id))
        {
            disk_loss_at.clear(); // no node of this scenario can lose its disk
        }
        let compact_every = rng.random_range(COMPACT_EVERY_MIN..=COMPACT_EVERY_MAX);
        Sim {
            scenario,
            options: *options,
            faults,
            rng,
            now: Time::ZERO,
            queue: BinaryHeap::new(),
            order: 0,
            token: 0,
            nodes: Vec::new(),
            violations: Violations::default(),
            stats: RunStats::default(),
            crash_at,
            crashes_armed: 0,
            disk_loss_at,
            disk_rng,
            compact_every,
            healed: false,
            last_progress: (0, Time::ZERO),
            converged: false,
            workload_scheduled: false,
            traced: false,
        }
    }

    fn schedule(&mut self, at: Time, event: Event<<S::Core as Core>::Msg>) {
        debug_assert!(at >= self.now);
        self.order += 1;
        self.queue.push(Scheduled {
            at,
            order: self.order,
            event,
        });
    }

    fn cluster(&self) -> Cluster<'_, S::Core> {
        Cluster { nodes: &self.nodes }
    }

    /// Runs to the end; the caller then takes [`Sim::report`].
    fn execute(&mut self) {
        tracing::debug!(target: "eo::sim", seed = self.options.seed, faults = ?self.faults, "run starts");
        for id in self.scenario.node_ids() {
            let disk = SimDisk::new();
            let core = self.scenario.boot(id);
            let wal = match Wal::open(disk.clone()) {
                Ok((wal, _)) => wal,
                Err(e) => {
                    self.violations
                        .push("wal", format!("node {id}: open of a new log failed: {e}"));
                    return;
                }
            };
            let mut tracer = if self.traced {
                Tracer::in_memory(id, 1)
            } else {
                Tracer::clock_only(id, 1)
            };
            tracer.local("start", serde_json::json!({"records": 0, "lsn": 0}));
            self.nodes.push(Node {
                id,
                tracer,
                core: Some(core),
                wal: Some(wal),
                disk,
                timer: None,
                armed: None,
            });
        }
        for i in 0..self.nodes.len() {
            self.flush(i);
        }
        self.schedule_workload();

        while self.violations.is_empty() {
            self.check_phase();
            if !self.violations.is_empty() {
                break;
            }
            let Some(next) = self.queue.pop() else {
                if !self.converged {
                    self.violations.push(
                        "convergence",
                        "nothing left to do, but the cluster has not converged",
                    );
                }
                break;
            };
            if self.healed
                && !self.converged
                && next.at.saturating_since(self.last_progress.1) > CONVERGE_WITHIN
            {
                self.now = self.last_progress.1 + CONVERGE_WITHIN;
                self.violations.now = self.now;
                let p = self.scenario.progress();
                self.violations.push(
                    "convergence",
                    format!(
                        "healed, but no progress for {CONVERGE_WITHIN:?}: {} of {} done",
                        p.done, p.total
                    ),
                );
                break;
            }
            self.now = next.at;
            self.violations.now = self.now;
            self.stats.events += 1;
            if self.options.bug == Some(DriverBug::Panic) && self.stats.events == PANIC_AT_EVENT {
                panic!("planted panic (DriverBug::Panic) at event {PANIC_AT_EVENT}");
            }
            self.dispatch(next.event);
        }
        if self.violations.is_empty() {
            let cluster = Cluster { nodes: &self.nodes };
            self.scenario.check_final(&cluster, &mut self.violations);
        }
    }

    /// The report of a run that panicked at `self.now`: the violations found so
    /// far plus one named `panic`. Reads only plain fields, since the scenario's
    /// state may be half-updated.
    fn panic_report(mut self, message: String) -> RunReport {
        self.stats.virtual_time_us = self.now.as_micros();
        self.violations.found.push(Violation {
            at_us: self.now.as_micros(),
            property: PANIC_PROPERTY.to_owned(),
            detail: message,
        });
        self.into_report()
    }

    /// The report as it stands: identity, replay arguments, statistics and
    /// violations.
    fn into_report(self) -> RunReport {
        RunReport {
            scenario: S::NAME.to_owned(),
            seed: self.options.seed,
            faults: self.faults,
            bug: self.options.bug,
            config: self.scenario.replay_args(),
            work: self.scenario.progress().total,
            stats: self.stats,
            violations: self.violations.found,
        }
    }

    fn report(mut self) -> RunReport {
        self.stats.virtual_time_us = self.now.as_micros();
        self.stats.syncs += self
            .nodes
            .iter()
            .filter_map(|n| n.wal.as_ref())
            .map(|w| w.sync_count())
            .sum::<u64>();
        self.stats.counters = self.scenario.counters(&Cluster { nodes: &self.nodes });
        self.into_report()
    }

    /// Phase changes and crash triggers, between events.
    fn check_phase(&mut self) {
        let progress = self.scenario.progress();
        if progress.done != self.last_progress.0 {
            self.last_progress = (progress.done, self.now);
        }
        if self.healed {
            return self.check_converged();
        }
        while self.crash_at.last().is_some_and(|&at| at <= progress.done) {
            let up: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].core.is_some() && self.nodes[i].armed.is_none())
                .collect();
            if up.is_empty() {
                break;
            }
            self.crash_at.pop();
            let node = up[self.rng.random_range(0..up.len())];
            self.arm_crash(node);
        }
        while self
            .disk_loss_at
            .last()
            .is_some_and(|&at| at <= progress.done)
        {
            let eligible: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| {
                    let n = &self.nodes[i];
                    n.core.is_some() && n.armed.is_none() && self.scenario.may_lose_disk(n.id)
                })
                .collect();
            if eligible.is_empty() {
                break;
            }
            self.disk_loss_at.pop();
            let node = eligible[self.disk_rng.random_range(0..eligible.len())];
            self.lose_disk(node);
        }
        let crashes_done = self.crash_at.is_empty()
            && self.disk_loss_at.is_empty()
            && self.nodes.iter().all(|n| n.armed.is_none());
        let work_done = progress.done >= progress.total && !self.scenario.workload_pending();
        let stalled = self.now.saturating_since(self.last_progress.1) > STALL_MAX;
        if (work_done && crashes_done) || stalled {
            self.heal();
            // The cluster may be at rest already, with nothing left in the
            // queue (say, the last event restarted a node that has nothing to
            // re-send): check now, or the run would end unconverged.
            self.check_converged();
        }
    }

    fn check_converged(&mut self) {
        if !self.converged && self.scenario.converged(&self.cluster()) {
            self.converged = true;
            tracing::debug!(target: "eo::sim", at = %self.now, "converged");
            // Drain: late copies still in flight must be harmless.
            self.queue
                .retain(|s| matches!(s.event, Event::Deliver { .. }));
        }
    }

    /// Ticks run while the workload has commands; a crash that undoes a
    /// submission gives it commands again.
    fn schedule_workload(&mut self) {
        if !self.workload_scheduled && self.scenario.workload_pending() {
            self.workload_scheduled = true;
            let at = if self.stats.events == 0 {
                self.now
            } else {
                self.now + WORKLOAD_TICK
            };
            self.schedule(at, Event::Workload);
        }
    }

    fn arm_crash(&mut self, node: usize) {
        let point = match self.rng.random_range(0..3) {
            0 => CrashPoint::Idle,
            1 => CrashPoint::AfterAppend,
            _ => CrashPoint::AfterSync,
        };
        self.crashes_armed += 1;
        if point == CrashPoint::Idle {
            self.crash(node, point);
            return;
        }
        self.token += 1;
        let token = self.token;
        self.nodes[node].armed = Some((point, token));
        self.schedule(
            self.now + ARMED_CRASH_WAIT,
            Event::CrashIdle { node, token },
        );
    }

    fn heal(&mut self) {
        self.healed = true;
        self.stats.healed_at_us = self.now.as_micros();
        self.last_progress.1 = self.now;
        self.scenario.on_healed(self.now);
        tracing::debug!(target: "eo::sim", at = %self.now, "healed");
        for i in 0..self.nodes.len() {
            self.nodes[i].armed = None;
            if self.nodes[i].core.is_none() {
                self.schedule(self.now, Event::Restart { node: i });
            }
        }
    }

    fn dispatch(&mut self, event: Event<<S::Core as Core>::Msg>) {
        match event {
            Event::Deliver {
                from,
                to,
                msg,
                stamp,
            } => {
                let Some(i) = self.nodes.iter().position(|n| n.id == to) else {
                    self.violations
                        .push("network", format!("message to unknown node {to}"));
                    return;
                };
                let node = &mut self.nodes[i];
                let Some(core) = node.core.as_mut() else {
                    self.stats.messages_to_down_nodes += 1;
                    return;
                };
                node.tracer.recv(from, stamp, &msg);
                if let Err(e) = core.handle_message(self.now, from, msg) {
                    self.scenario.on_error(to, &e, &mut self.violations);
                }
                self.flush(i);
            }
            Event::Timer { node, token } => {
                if self.options.bug == Some(DriverBug::IgnoreTimers) {
                    return;
                }
                if self.nodes[node].timer.is_none_or(|(_, t)| t != token) {
                    return; // superseded, or the node crashed since
                }
                self.nodes[node].timer = None;
                if let Some(core) = self.nodes[node].core.as_mut() {
                    core.handle_timeout(self.now);
                    self.nodes[node]
                        .tracer
                        .local("timeout", serde_json::json!({}));
                    self.flush(node);
                }
            }
            Event::Workload => {
                for i in 0..self.nodes.len() {
                    let id = self.nodes[i].id;
                    let Some(core) = self.nodes[i].core.as_mut() else {
                        continue;
                    };
                    let issued = self
                        .scenario
                        .workload(self.now, id, core, &mut self.violations);
                    for submission in self.scenario.take_submissions(id) {
                        self.nodes[i].tracer.local("submit", submission);
                    }
                    if issued {
                        self.flush(i);
                    }
                }
                self.workload_scheduled = false;
                self.schedule_workload();
            }
            Event::Restart { node } => self.restart(node),
            Event::CrashIdle { node, token } => {
                if let Some((_, t)) = self.nodes[node].armed {
                    if t == token && self.nodes[node].core.is_some() {
                        self.crash(node, CrashPoint::Idle);
                    }
                }
            }
        }
    }

    /// Step 2 of the module docs: persist, then send; with crash points. The
    /// order is the one the types of [`crate::release`] allow: `persist` (append),
    /// `sync_proof`, `open`. [`DriverBug::SendBeforeSync`] opens the release
    /// without a proof, through the one method that says so.
    fn flush(&mut self, i: usize) {
        let id = self.nodes[i].id;
        let Some(core) = self.nodes[i].core.as_mut() else {
            return;
        };
        let ready = core.poll_ready();
        self.scenario
            .on_polled(id, self.now, &ready, &mut self.violations);
        let has_records = !ready.records().is_empty();
        let records = if self.traced {
            ready.records().to_vec()
        } else {
            Vec::new()
        };
        let wal = self.nodes[i].wal.as_mut().expect("an up node has a log");
        let release = match ready.persist(wal) {
            Ok(release) => release,
            Err(e) => {
                self.violations
                    .push("wal", format!("node {id}: append failed: {e}"));
                return;
            }
        };
        self.nodes[i].tracer.append(release.needs().0, &records);
        let release = if self.options.bug == Some(DriverBug::SendBeforeSync) {
            let released = release.open_before_durable();
            self.release(i, released.messages, &released.events);
            None
        } else {
            Some(release)
        };
        if has_records && self.crash_armed_at(i, CrashPoint::AfterAppend) {
            return;
        }
        let wal = self.nodes[i].wal.as_mut().expect("an up node has a log");
        let proof = match wal.sync_proof() {
            Ok(proof) => proof,
            Err(e) => {
                self.violations
                    .push("wal", format!("node {id}: sync failed: {e}"));
                return;
            }
        };
        if has_records {
            self.nodes[i].tracer.durable(proof.lsn().0);
        }
        if has_records && self.crash_armed_at(i, CrashPoint::AfterSync) {
            return;
        }
        if let Some(release) = release {
            match release.open(proof) {
                Ok(released) => self.release(i, released.messages, &released.events),
                Err(e) => {
                    self.violations
                        .push("persist-then-send", format!("node {id}: {e}"));
                    return;
                }
            }
        }
        self.maybe_compact(i);
        self.arm_timer(i);
    }

    fn crash_armed_at(&mut self, i: usize, point: CrashPoint) -> bool {
        if self.nodes[i].armed.is_some_and(|(p, _)| p == point) {
            self.crash(i, point);
            return true;
        }
        false
    }

    fn release(
        &mut self,
        i: usize,
        messages: Vec<Envelope<<S::Core as Core>::Msg>>,
        events: &[<S::Core as Core>::Event],
    ) {
        let id = self.nodes[i].id;
        self.scenario
            .on_released(id, self.now, &messages, events, &mut self.violations);
        for event in events {
            self.nodes[i].tracer.outcome(event);
        }
        for env in messages {
            let stamp = self.nodes[i].tracer.send(env.to, &env.msg);
            self.send(id, env, stamp);
        }
    }

    fn send(&mut self, from: NodeId, env: Envelope<<S::Core as Core>::Msg>, stamp: u64) {
        self.stats.messages_sent += 1;
        let mut copies = 1;
        if !self.healed {
            if self.rng.random_bool(self.faults.loss) {
                self.stats.messages_lost += 1;
                return;
            }
            if self.rng.random_bool(self.faults.dup) {
                self.stats.messages_duplicated += 1;
                copies = 2;
            }
        }
        for _ in 0..copies {
            let jitter = self
                .rng
                .random_range(DELAY_MIN.as_micros() as u64..=DELAY_MAX.as_micros() as u64);
            let mut delay = Duration::from_micros(jitter);
            if !self.healed && self.rng.random_bool(self.faults.reorder) {
                self.stats.messages_reordered += 1;
                delay += Duration::from_micros(
                    self.rng
                        .random_range(0..=REORDER_DELAY_MAX.as_micros() as u64),
                );
            }
            self.schedule(
                self.now + delay,
                Event::Deliver {
                    from,
                    to: env.to,
                    msg: env.msg.clone(),
                    stamp,
                },
            );
        }
    }

    fn maybe_compact(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let (Some(core), Some(wal)) = (node.core.as_ref(), node.wal.as_mut()) else {
            return;
        };
        if wal.records_since_snapshot() < self.compact_every {
            return;
        }
        let snapshot = core.snapshot();
        match wal.compact_record(&snapshot) {
            Ok(()) => {
                self.stats.compactions += 1;
                let lsn = wal.lsn_last().0;
                node.tracer
                    .local("compact", serde_json::json!({ "lsn": lsn }));
            }
            Err(e) => self
                .violations
                .push("wal", format!("node {}: compaction failed: {e}", node.id)),
        }
    }

    fn arm_timer(&mut self, i: usize) {
        let Some(core) = self.nodes[i].core.as_ref() else {
            return;
        };
        let Some(deadline) = core.poll_timeout() else {
            self.nodes[i].timer = None;
            return;
        };
        if self.nodes[i].timer.is_some_and(|(at, _)| at == deadline) {
            return;
        }
        self.token += 1;
        let token = self.token;
        self.nodes[i].timer = Some((deadline, token));
        let at = deadline.max(self.now);
        self.schedule(at, Event::Timer { node: i, token });
    }

    fn crash(&mut self, i: usize, point: CrashPoint) {
        let node = &mut self.nodes[i];
        let core = node.core.take().expect("only an up node crashes");
        self.scenario.on_crash(node.id, &core);
        if let Some(wal) = node.wal.take() {
            self.stats.syncs += wal.sync_count();
        }
        node.timer = None;
        node.armed = None;
        node.disk.crash(&mut self.rng);
        self.stats.crashes += 1;
        match point {
            CrashPoint::Idle => {}
            CrashPoint::AfterAppend => self.stats.crashes_after_append += 1,
            CrashPoint::AfterSync => self.stats.crashes_after_sync += 1,
        }
        tracing::debug!(target: "eo::sim", at = %self.now, node = node.id, ?point, "crash");
        let down = self.rng.random_range(
            RESTART_DELAY_MIN.as_micros() as u64..=RESTART_DELAY_MAX.as_micros() as u64,
        );
        let at = if self.healed {
            self.now
        } else {
            self.now + Duration::from_micros(down)
        };
        self.schedule(at, Event::Restart { node: i });
    }

    /// The disk-loss fault: node `i` crashes and restarts with an empty disk
    /// (or, under [`DriverBug::RestoreIdentity`], a disk holding only its old
    /// identity).
    fn lose_disk(&mut self, i: usize) {
        let id = self.nodes[i].id;
        let identity = if self.options.bug == Some(DriverBug::RestoreIdentity) {
            self.scenario.identity_records(id)
        } else {
            Vec::new()
        };
        self.crash(i, CrashPoint::Idle);
        self.stats.disk_losses += 1;
        self.nodes[i]
            .tracer
            .local("disk_lost", serde_json::json!({}));
        let disk = SimDisk::new();
        if !identity.is_empty() {
            let restored = Wal::open(disk.clone()).and_then(|(mut wal, _)| {
                for record in &identity {
                    wal.append_record(record)?;
                }
                wal.sync()
            });
            if let Err(e) = restored {
                self.violations.push(
                    "wal",
                    format!("node {id}: restoring an identity failed: {e}"),
                );
            }
        }
        self.nodes[i].disk = disk;
        tracing::debug!(target: "eo::sim", at = %self.now, node = id, "disk lost");
        self.scenario.on_disk_lost(id, self.now);
    }

    fn restart(&mut self, i: usize) {
        if self.nodes[i].core.is_some() {
            return; // healing already restarted it
        }
        let id = self.nodes[i].id;
        let (wal, recovered) = match Wal::open(self.nodes[i].disk.clone()) {
            Ok(opened) => opened,
            Err(e) => {
                return self
                    .violations
                    .push("recovery", format!("node {id}: the log does not open: {e}"))
            }
        };
        let records = match recovered.decode::<<S::Core as Core>::Record>() {
            Ok(records) => records,
            Err(e) => return self.violations.push("recovery", format!("node {id}: {e}")),
        };
        let records_count = records.len();
        let core = match self.scenario.recover(id, self.now, records) {
            Ok(core) => core,
            Err(e) => return self.violations.push("recovery", format!("node {id}: {e}")),
        };
        self.stats.restarts += 1;
        let lives = self.stats.restarts; // any increasing number tells the lives apart
        let tracer = &mut self.nodes[i].tracer;
        tracer.set_incarnation(lives + 1);
        tracer.local(
            "start",
            serde_json::json!({"records": records_count, "lsn": wal.lsn_last().0}),
        );
        tracing::debug!(target: "eo::sim", at = %self.now, node = id, truncated = recovered.truncated.is_some(), "restart");
        self.scenario
            .on_recovered(id, self.now, &core, &mut self.violations);
        self.nodes[i].core = Some(core);
        self.nodes[i].wal = Some(wal);
        self.flush(i);
        self.schedule_workload();
    }
}
