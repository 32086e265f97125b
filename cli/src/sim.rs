//! `eo sim <scenario>`: run the deterministic simulator.
//!
//! Each scenario is a subcommand with the common flags ([`CommonArgs`]) and its
//! own sizes: `ack-retry --messages N`, `two-phase-commit --transactions N
//! --participants N`. To add one, add a variant to [`Scenario`] and one arm in
//! [`run`] that calls [`simulate`] with the scenario type and its config. A
//! size flag of another scenario is accepted by the parser (hidden) only to be
//! refused with a one-line error naming the right scenario.

use crate::args;
use crate::UsageError;
use clap::{Args, Subcommand};
use eo_impl::sim::{
    self, ack_retry, two_phase_commit, FaultSpec, Options, RunReport, Scenario as SimScenario,
    Summary,
};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct SimArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// Senders push transfers through durable outboxes to a receiver that
    /// applies each exactly once; faults, then healing, then invariant checks.
    #[command(after_help = drawn_faults_help())]
    AckRetry {
        #[command(flatten)]
        common: CommonArgs,
        /// Transfers per run, over all senders (1 to 10000000).
        #[arg(long, default_value_t = 1_000, allow_negative_numbers = true, value_parser = messages)]
        messages: u64,
        /// Not an ack-retry flag (two-phase-commit takes it); refused with a one-line error.
        #[arg(long, hide = true)]
        transactions: Option<u64>,
        /// Not an ack-retry flag (two-phase-commit takes it); refused with a one-line error.
        #[arg(long, hide = true)]
        participants: Option<u32>,
    },
    /// Clients run transfers between banks as two-phase-commit transactions
    /// (a debit at one participant, credits at others) through a coordinator;
    /// some participants vote no; faults, then healing, then invariant checks.
    #[command(after_help = drawn_faults_help())]
    TwoPhaseCommit {
        #[command(flatten)]
        common: CommonArgs,
        /// Transactions per run, over all clients (1 to 1000000).
        #[arg(long, default_value_t = 1_000, allow_negative_numbers = true, value_parser = transactions)]
        transactions: u64,
        /// Participants (banks) in the cluster (2 to 16).
        #[arg(long, default_value_t = 3, allow_negative_numbers = true, value_parser = participants)]
        participants: u32,
        /// Not a two-phase-commit flag (ack-retry takes it); refused with a one-line error.
        #[arg(long, hide = true)]
        messages: Option<u64>,
    },
}

/// Flags every scenario takes. Fault options left out are drawn from the seed.
#[derive(Args, Debug)]
pub struct CommonArgs {
    /// The first run's seed (run i uses seed + i, wrapping after
    /// 18446744073709551615); random if omitted, and printed.
    #[arg(long, allow_negative_numbers = true, value_parser = args::seed)]
    seed: Option<u64>,
    /// Number of runs (1 to 1000000).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = runs)]
    runs: u64,
    /// Probability that a message is lost during the fault phase, at least 0
    /// and below 1; drawn from each run's seed if omitted.
    #[arg(long, allow_negative_numbers = true, value_parser = loss)]
    loss: Option<f64>,
    /// Probability that a message is duplicated during the fault phase, 0 to
    /// 1; drawn from each run's seed if omitted.
    #[arg(long, allow_negative_numbers = true, value_parser = unit_probability)]
    dup: Option<f64>,
    /// Probability that a message is delayed by up to 200 ms extra (reordered)
    /// during the fault phase, 0 to 1; drawn from each run's seed if omitted.
    #[arg(long, allow_negative_numbers = true, value_parser = unit_probability)]
    reorder: Option<f64>,
    /// Crashes per run during the fault phase (any node, any point of a step),
    /// 0 to 10000; drawn from each run's seed if omitted.
    #[arg(long, allow_negative_numbers = true, value_parser = crashes)]
    crashes: Option<u32>,
    /// Disk losses per run during the fault phase: a node that may lose its disk
    /// (an ack-retry sender) crashes and restarts with an empty disk; 0 to 1000;
    /// drawn from each run's seed if omitted.
    #[arg(long, allow_negative_numbers = true, value_parser = disk_losses)]
    disk_losses: Option<u32>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// Write each node's protocol trace to DIR/node-ID.jsonl (the format of
    /// `eo node --trace`, for `eo validate`); one run only.
    #[arg(long, value_name = "DIR")]
    trace: Option<std::path::PathBuf>,
}

/// Runs at most this many simulations per invocation.
const RUNS_MAX: u64 = 1_000_000;
/// The parsers of the scenario flags: every bound here is the one the
/// simulator enforces, worded as every range is (see [`crate::args`]).
fn messages(text: &str) -> Result<u64, String> {
    args::whole(text, 1, ack_retry::MESSAGES_MAX)
}

fn transactions(text: &str) -> Result<u64, String> {
    args::whole(text, 1, two_phase_commit::TRANSACTIONS_MAX)
}

fn participants(text: &str) -> Result<u32, String> {
    let (min, max) = (
        two_phase_commit::PARTICIPANTS_MIN,
        two_phase_commit::PARTICIPANTS_MAX,
    );
    args::whole(text, u64::from(min), u64::from(max))
        .map(|n| u32::try_from(n).expect("PARTICIPANTS_MAX fits u32"))
}

fn runs(text: &str) -> Result<u64, String> {
    args::whole(text, 1, RUNS_MAX)
}

fn crashes(text: &str) -> Result<u32, String> {
    args::whole(text, 0, u64::from(sim::CRASHES_MAX))
        .map(|n| u32::try_from(n).expect("CRASHES_MAX fits u32"))
}

fn disk_losses(text: &str) -> Result<u32, String> {
    args::whole(text, 0, u64::from(sim::DISK_LOSSES_MAX))
        .map(|n| u32::try_from(n).expect("DISK_LOSSES_MAX fits u32"))
}

fn loss(text: &str) -> Result<f64, String> {
    args::probability(text, true)
}

fn unit_probability(text: &str) -> Result<f64, String> {
    args::probability(text, false)
}

/// What `eo sim SCENARIO --help` says after the flags: which fault options are
/// drawn from the seed when not given, and from which ranges.
fn drawn_faults_help() -> String {
    format!(
        "Fault options not given are drawn from each run's seed: --loss, --dup and --reorder \
         uniformly from 0 to below {}, {} and {}, --crashes from 0 to {}, --disk-losses from 0 \
         to {} (ack-retry). The first line of the output shows the values used (for one run), \
         and a failed run prints the command that replays it.",
        sim::LOSS_DRAW_MAX,
        sim::DUP_DRAW_MAX,
        sim::REORDER_DRAW_MAX,
        sim::CRASHES_DRAW_MAX,
        sim::DISK_LOSSES_DRAW_MAX
    )
}

/// Multi-run invocations report progress on stderr at most this often.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

pub fn run(args: &SimArgs) -> Result<ExitCode, UsageError> {
    match &args.scenario {
        Scenario::AckRetry {
            common,
            messages,
            transactions,
            participants,
        } => {
            if transactions.is_some() || participants.is_some() {
                return Err(UsageError(
                    "ack-retry takes --messages; --transactions and --participants are two-phase-commit flags"
                        .to_owned(),
                ));
            }
            simulate::<ack_retry::AckRetry>(
                common,
                &ack_retry::Config {
                    messages: *messages,
                },
            )
        }
        Scenario::TwoPhaseCommit {
            common,
            transactions,
            participants,
            messages,
        } => {
            if messages.is_some() {
                return Err(UsageError(
                    "two-phase-commit takes --transactions; --messages is an ack-retry flag"
                        .to_owned(),
                ));
            }
            simulate::<two_phase_commit::TwoPhaseCommit>(
                common,
                &two_phase_commit::Config {
                    transactions: *transactions,
                    participants: *participants,
                },
            )
        }
    }
}

/// Runs scenario `S` as the common flags say, prints the summary, and maps the
/// outcome to an exit status: 0 all invariants hold, 1 a violation.
/// One run with `--trace DIR`: the report, and one trace file per node.
fn simulate_traced<S: SimScenario>(
    dir: &std::path::Path,
    common: &CommonArgs,
    config: &S::Config,
    options: &Options,
) -> Result<ExitCode, UsageError> {
    if common.runs != 1 {
        return Err(UsageError("--trace takes one run (--runs 1)".to_owned()));
    }
    let (report, traces) = sim::run_traced::<S>(config, options);
    std::fs::create_dir_all(dir).map_err(|e| UsageError(format!("{}: {e}", dir.display())))?;
    for (node, lines) in traces {
        let path = dir.join(format!("node-{node}.jsonl"));
        std::fs::write(&path, lines).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    }
    print!("{report}");
    println!("traces written to {}/node-*.jsonl", dir.display());
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn simulate<S: SimScenario>(
    common: &CommonArgs,
    config: &S::Config,
) -> Result<ExitCode, UsageError> {
    let faults = FaultSpec {
        loss: common.loss,
        dup: common.dup,
        reorder: common.reorder,
        crashes: common.crashes,
        disk_losses: common.disk_losses,
    };
    faults
        .validate_for::<S>()
        .map_err(|e| UsageError(e.to_string()))?;
    let seed = common.seed.unwrap_or_else(random_seed);
    let options = Options::new(seed, faults);
    if let Some(dir) = &common.trace {
        return simulate_traced::<S>(dir, common, config, &options);
    }
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut header = String::new();
    let summary = sim::run_many::<S>(
        config,
        &options,
        common.runs,
        |report: &RunReport, summary: &Summary| {
            if !report.ok() {
                eprint!("{report}");
            }
            if summary.runs == 1 {
                // "seed=… loss=… dup=… crashes=…" with the options drawn from the seed.
                header = report
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            let done = summary.runs == common.runs;
            if common.runs > 1 && !done && last_progress.elapsed() >= PROGRESS_INTERVAL {
                last_progress = Instant::now();
                eprintln!(
                    "eo sim {}: {}/{} runs, {} violations, {:.1}s",
                    S::NAME,
                    summary.runs,
                    common.runs,
                    summary.violations,
                    started.elapsed().as_secs_f64()
                );
            }
        },
    );
    let wall = started.elapsed();
    if common.json {
        let mut value = serde_json::to_value(&summary)
            .map_err(|e| UsageError(format!("cannot encode JSON: {e}")))?;
        value["seed"] = seed.into();
        value["wall_time_ms"] = (wall.as_millis() as u64).into();
        println!("{value}");
    } else {
        print_summary(&summary, &header, seed, common.runs, wall);
    }
    Ok(if summary.violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_summary(summary: &Summary, header: &str, seed: u64, runs: u64, wall: Duration) {
    if runs == 1 {
        println!("eo sim {}: {header}", summary.scenario);
    } else {
        println!("eo sim {}: {}", summary.scenario, seed_range(seed, runs));
    }
    let counter = |name: &str| summary.counters.get(name).copied().unwrap_or(0);
    let line = |name: &str, value: String| println!("  {name:<22}{value}");
    line("runs", summary.runs.to_string());
    if summary.scenario == two_phase_commit::TwoPhaseCommit::NAME {
        line(
            "transactions",
            format!("{} submitted by the clients", summary.messages),
        );
        line(
            "outcomes",
            format!(
                "{} committed, {} aborted",
                counter("committed"),
                counter("aborted")
            ),
        );
        line(
            "retries",
            format!(
                "{} Begin retries by clients, {} re-sent prepares/decisions/outcomes, {} queries by prepared participants",
                counter("retries"),
                counter("retransmissions"),
                counter("queries")
            ),
        );
        line(
            "duplicates suppressed",
            format!(
                "{} (repeated Prepares and Commits answered without applying again)",
                counter("duplicates_suppressed")
            ),
        );
        line(
            "outcomes unreported",
            format!(
                "{} (learned durably by a client that crashed before telling its application)",
                counter("outcomes_unreported")
            ),
        );
    } else {
        line(
            "messages",
            format!("{} submitted by the senders", summary.messages),
        );
        let applications = counter("applications");
        let redone = applications.saturating_sub(summary.messages);
        line(
            "applications",
            if redone > 0 && summary.violations == 0 {
                format!(
                    "{applications} ({redone} redone after a receiver crash undid an application not yet durable)"
                )
            } else {
                format!("{applications} (the receiver applying a message to its bank)")
            },
        );
        line(
            "retransmissions",
            format!(
                "{} (messages re-sent by a sender for lack of an ack)",
                counter("retransmissions")
            ),
        );
        line(
            "duplicates suppressed",
            format!(
                "{} (deliveries the receiver recognised as already applied)",
                counter("duplicates_suppressed")
            ),
        );
        line(
            "rejections",
            format!(
                "{} (deliveries the receiver refused as invalid)",
                counter("rejections")
            ),
        );
        line(
            "incarnations",
            format!(
                "{} granted, {} messages at most once (their sender lost its disk or outlived its retention)",
                counter("incarnations_granted"),
                counter("at_most_once")
            ),
        );
    }
    line(
        "crashes",
        format!(
            "{} (during the fault phase; {} of them with the disk lost)",
            summary.crashes, summary.disk_losses
        ),
    );
    if summary.scenario == two_phase_commit::TwoPhaseCommit::NAME {
        line(
            "crashed roles",
            format!(
                "{} coordinator, {} participant, {} client",
                counter("coordinator_crashes"),
                counter("participant_crashes"),
                counter("client_crashes")
            ),
        );
        line(
            "tables held at most",
            format!(
                "{} coordinator, {} participant, {} client pending (transactions, largest in any run)",
                counter("coordinator_txns_held_max"),
                counter("participant_txns_held_max"),
                counter("client_pending_max")
            ),
        );
    }
    line(
        "network",
        format!(
            "{} sent, {} lost, {} duplicated (messages)",
            summary.messages_sent, summary.messages_lost, summary.messages_duplicated
        ),
    );
    line(
        "log compactions",
        format!("{} (write-ahead log rewrites)", summary.compactions),
    );
    line(
        "events",
        format!(
            "{} (deliveries, timers, workload ticks and restarts simulated)",
            summary.events
        ),
    );
    line(
        "virtual time",
        format!(
            "{:.3}s (simulated clock, summed over runs)",
            summary.virtual_time_us as f64 / 1e6
        ),
    );
    line("wall time", format!("{:.3}s", wall.as_secs_f64()));
    if summary.violations == 0 {
        println!("all invariants hold");
    } else {
        println!(
            "{} of {} runs violated an invariant; replay with:",
            summary.violations, summary.runs
        );
        for report in &summary.failures {
            println!("  {}", report.replay_command());
        }
    }
}

/// The seeds of `runs` runs from `seed` (run i uses `seed + i`, wrapping past
/// `u64::MAX` to 0 as the simulator does): `seeds 5..=9`, or
/// `seeds 18446744073709551615..=18446744073709551615 and 0..=0`.
pub fn seed_range(seed: u64, runs: u64) -> String {
    let steps = runs.saturating_sub(1);
    match seed.checked_add(steps) {
        Some(last) => format!("seeds {seed}..={last}"),
        None => format!(
            "seeds {seed}..={} and 0..={} (wrapping)",
            u64::MAX,
            seed.wrapping_add(steps)
        ),
    }
}

/// A seed for an invocation without `--seed`; it is printed, so the run replays.
fn random_seed() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    RandomState::new().hash_one(std::time::SystemTime::now())
}
