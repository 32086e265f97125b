//! Benchmarks of eo: what exactly-once costs, measured beside the limit it is
//! held against, in the same run.
//!
//! The criterion benchmarks (`cargo bench -p eo-benches`) live in `benches/`;
//! this library holds what they share, so that the peer script's `eo-bench-ours`
//! binary measures exactly what the criterion benchmarks measure:
//!
//! - [`place`]: where a benchmark keeps its logs (a real disk, or memory for
//!   the runs without durability);
//! - [`limits`]: the disk's own limits — `write` + `fdatasync` per record, and
//!   batched `write`s + one `fdatasync`;
//! - [`ack_retry`]: a running ack-retry cluster over loopback TCP (1 receiver,
//!   N senders) in three modes: exactly-once, the at-least-once baseline
//!   (receiver dedup off), and no durability (logs in memory);
//! - [`two_phase`]: a running two-phase-commit cluster (a coordinator, P
//!   participants, clients with concurrent transactions);
//! - [`reference`]: Stateright's own example models, built and run as the
//!   checker's reference;
//! - [`latency`]: per-message latencies, their percentiles, and the JSON file
//!   `docs/benchmarks.md` cites.

pub mod ack_retry;
pub mod latency;
pub mod limits;
pub mod place;
pub mod reference;
pub mod two_phase;

/// The criterion settings every benchmark of this crate shares: 10 samples,
/// 1 s of warm-up and 3 s of measurement per benchmark (the rigs start whole
/// clusters, so more samples would not fit), then whatever the command line
/// says (`--quick`, `--profile-time`, …). With `--quick`, criterion doubles the
/// iterations until two runs agree or the measurement time is spent; that time
/// is [`QUICK_MEASUREMENT`] here, so the whole quick run stays under 10 minutes.
pub fn criterion_config() -> criterion::Criterion {
    let measurement = if quick() {
        QUICK_MEASUREMENT
    } else {
        std::time::Duration::from_secs(3)
    };
    criterion::Criterion::default()
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(measurement)
        .configure_from_args()
}

/// The longest criterion's quick mode doubles iterations for one benchmark
/// (its last doubling may run up to twice as long again).
pub const QUICK_MEASUREMENT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the benchmark runs in criterion's quick mode (`-- --quick`).
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
}

/// Why a benchmark rig could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A node did not start.
    #[error("a node did not start: {0}")]
    Start(#[from] eo_impl::runtime::node::StartError),
    /// A node stopped with an error.
    #[error("a node stopped with an error: {0}")]
    Node(#[from] eo_impl::runtime::node::NodeError),
    /// A submission was refused for a reason other than backpressure.
    #[error("a submission was refused: {0}")]
    Submit(#[from] eo_impl::runtime::node::SubmitError),
    /// No outcome arrived within [`OUTCOME_WAIT_MAX`].
    #[error("no outcome within {OUTCOME_WAIT_MAX:?}: {in_flight} still in flight")]
    Stalled {
        /// Submissions without an outcome.
        in_flight: usize,
    },
    /// A node's outcome channel was already taken or closed.
    #[error("a node's outcomes are gone")]
    OutcomesGone,
    /// A check after the run failed (e.g. a message applied twice).
    #[error("check after the run failed: {0}")]
    Check(String),
    /// File-system work of the benchmark itself failed.
    #[error("benchmark I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The log failed.
    #[error("log: {0}")]
    Wal(#[from] eo_impl::wal::WalError),
}

/// The longest a rig waits for the next outcome before it gives up.
pub const OUTCOME_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(30);
