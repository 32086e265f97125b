//! `eo sim <scenario>`: run the deterministic simulator.
//!
//! Each scenario is a subcommand with the common flags ([`CommonArgs`]) and its
//! own sizes: `ack-retry --messages N`, `two-phase-commit --transactions N
//! --participants N`. To add one, add a variant to [`Scenario`] and one arm in
//! [`run`] that calls [`simulate`] with the scenario type and its config. A
//! size flag of another scenario is accepted by the parser (hidden) only to be
//! refused with a one-line error naming the right scenario.

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
    AckRetry {
        #[command(flatten)]
        common: CommonArgs,
        /// Transfers per run, over all senders.
        #[arg(long, default_value_t = 1_000)]
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
    TwoPhaseCommit {
        #[command(flatten)]
        common: CommonArgs,
        /// Transactions per run, over all clients.
        #[arg(long, default_value_t = 1_000)]
        transactions: u64,
        /// Participants (banks) in the cluster.
        #[arg(long, default_value_t = 3)]
        participants: u32,
        /// Not a two-phase-commit flag (ack-retry takes it); refused with a one-line error.
        #[arg(long, hide = true)]
        messages: Option<u64>,
    },
}

/// Flags every scenario takes. Fault options left out are drawn from the seed.
#[derive(Args, Debug)]
pub struct CommonArgs {
    /// The first run's seed (run i uses seed + i); random if omitted.
    #[arg(long)]
    seed: Option<u64>,
    /// Number of runs.
    #[arg(long, default_value_t = 1)]
    runs: u64,
    /// Probability that a message is lost during the fault phase, in [0, 1).
    #[arg(long)]
    loss: Option<f64>,
    /// Probability that a message is duplicated during the fault phase, in [0, 1].
    #[arg(long)]
    dup: Option<f64>,
    /// Probability that a message is delayed by up to 200 ms extra (reordered)
    /// during the fault phase, in [0, 1].
    #[arg(long)]
    reorder: Option<f64>,
    /// Crashes per run during the fault phase (any node, any point of a step).
    #[arg(long)]
    crashes: Option<u32>,
    /// Disk losses per run during the fault phase: a node that may lose its disk
    /// (an ack-retry sender) crashes and restarts with an empty disk.
    #[arg(long)]
    disk_losses: Option<u32>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs at most this many simulations per invocation.
const RUNS_MAX: u64 = 1_000_000;
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
            if !(1..=ack_retry::MESSAGES_MAX).contains(messages) {
                return Err(UsageError(format!(
                    "--messages must be in [1, {}], got {messages}",
                    ack_retry::MESSAGES_MAX
                )));
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
            if !(1..=two_phase_commit::TRANSACTIONS_MAX).contains(transactions) {
                return Err(UsageError(format!(
                    "--transactions must be in [1, {}], got {transactions}",
                    two_phase_commit::TRANSACTIONS_MAX
                )));
            }
            let range = two_phase_commit::PARTICIPANTS_MIN..=two_phase_commit::PARTICIPANTS_MAX;
            if !range.contains(participants) {
                return Err(UsageError(format!(
                    "--participants must be in [{}, {}], got {participants}",
                    range.start(),
                    range.end()
                )));
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
    faults.validate().map_err(|e| UsageError(e.to_string()))?;
    if !(1..=RUNS_MAX).contains(&common.runs) {
        return Err(UsageError(format!(
            "--runs must be in [1, {RUNS_MAX}], got {}",
            common.runs
        )));
    }
    let seed = common.seed.unwrap_or_else(random_seed);
    let options = Options::new(seed, faults);
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
        println!(
            "eo sim {}: seeds {seed}..={}",
            summary.scenario,
            seed.wrapping_add(runs - 1)
        );
    }
    let counter = |name: &str| summary.counters.get(name).copied().unwrap_or(0);
    println!("  runs                  {}", summary.runs);
    if summary.scenario == two_phase_commit::TwoPhaseCommit::NAME {
        println!("  transactions          {}", summary.messages);
        println!(
            "  outcomes              {} committed, {} aborted",
            counter("committed"),
            counter("aborted")
        );
        println!(
            "  retries               {} Begin retries, {} re-sent prepares/decisions/outcomes, {} queries",
            counter("retries"),
            counter("retransmissions"),
            counter("queries")
        );
    } else {
        println!("  messages              {}", summary.messages);
        println!("  retransmissions       {}", counter("retransmissions"));
        println!(
            "  incarnations          {} granted, {} messages at most once (lost disk or expiry)",
            counter("incarnations_granted"),
            counter("at_most_once")
        );
    }
    println!(
        "  duplicates suppressed {}",
        counter("duplicates_suppressed")
    );
    println!(
        "  crashes               {} ({} with the disk lost)",
        summary.crashes, summary.disk_losses
    );
    if summary.scenario == two_phase_commit::TwoPhaseCommit::NAME {
        println!(
            "  crashed roles         {} coordinator, {} participant, {} client",
            counter("coordinator_crashes"),
            counter("participant_crashes"),
            counter("client_crashes")
        );
        println!(
            "  tables held at most   {} coordinator, {} participant, {} client pending",
            counter("coordinator_txns_held_max"),
            counter("participant_txns_held_max"),
            counter("client_pending_max")
        );
    }
    println!(
        "  network               {} sent, {} lost, {} duplicated",
        summary.messages_sent, summary.messages_lost, summary.messages_duplicated
    );
    println!("  log compactions       {}", summary.compactions);
    println!(
        "  virtual time          {:.3}s",
        summary.virtual_time_us as f64 / 1e6
    );
    println!("  wall time             {:.3}s", wall.as_secs_f64());
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

/// A seed for an invocation without `--seed`; it is printed, so the run replays.
fn random_seed() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    RandomState::new().hash_one(std::time::SystemTime::now())
}
