//! `eo run <protocol>`: start a cluster of real nodes on loopback, inject faults,
//! wait for the workload, then verify every node's durable state.
//!
//! The parts, one file each:
//!
//! - [`cluster`]: the topology (ids, ports, data directories, command lines) and
//!   the supervisor: every node a child process (`eo node …`), its stdout JSON
//!   lines read, killed and restarted on demand, every child reaped on any exit;
//! - [`faults`]: the fault schedule (SIGKILL a random node every `--kill-every`
//!   ms, lose a sender's disk every `--wipe-disk-every` ms) and the per-link
//!   proxies for `--drop`, `--dup` and `--delay`;
//! - [`verify`]: read every log (`runtime::store`) and check it against the
//!   workload (`runtime::inspect`);
//! - [`report`]: the progress bar and the summary (text or `--json`).
//!
//! Exit status: 0 when the workload finished and the verifier found nothing (a
//! temporary data directory is then deleted), 1 naming each violation (or a
//! timeout) with the data directory kept, 2 for bad usage or a cluster that could
//! not run (a node that would not start).

mod cluster;
mod faults;
mod report;
mod verify;

use crate::args;
use crate::UsageError;
use clap::{Args, Subcommand};
use eo_impl::runtime::proxy::{Faults, DELAY_MS_MAX};
use eo_impl::runtime::workload::WORKLOAD_ITEMS_MAX;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(subcommand)]
    pub protocol: Protocol,
}

#[derive(Subcommand, Debug)]
pub enum Protocol {
    /// Senders push transfers through durable outboxes to one receiver that
    /// applies each exactly once.
    AckRetry {
        /// Transfers over all senders (1 to 1000000000; split evenly).
        #[arg(long, default_value_t = 10_000, value_parser = items)]
        messages: u64,
        /// Sender processes (1 to 15).
        #[arg(long, default_value_t = 1, value_parser = senders)]
        senders: u32,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Clients run transfers between banks as two-phase-commit transactions
    /// through one coordinator.
    TwoPhaseCommit {
        /// Transactions over all clients (1 to 1000000000; split evenly).
        #[arg(long, default_value_t = 1_000, value_parser = items)]
        transactions: u64,
        /// Participants (banks) (2 to 8).
        #[arg(long, default_value_t = 3, value_parser = participants)]
        participants: u32,
        /// Client processes (1 to 16).
        #[arg(long, default_value_t = 1, value_parser = clients)]
        clients: u32,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Verify the data directory of an earlier `eo run` again (for example after
    /// inspecting or editing it): the same checks as at the end of a run.
    Verify {
        /// The data directory (it holds `run.json`).
        dir: PathBuf,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Flags both protocols take.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// SIGKILL a random running node every MS milliseconds and restart it on
    /// the same data directory (10 to 3600000).
    #[arg(long, value_name = "MS", value_parser = period_ms)]
    pub kill_every: Option<u64>,
    /// Every MS milliseconds, SIGKILL a random sender, move its data directory
    /// to DIR/lost/ID-N (evidence for the verifier) and restart it empty: a
    /// lost disk (ack-retry only; at most 3 per sender; 10 to 3600000).
    #[arg(long, value_name = "MS", value_parser = period_ms)]
    pub wipe_disk_every: Option<u64>,
    /// Probability that the transport drops a data frame (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub drop: f64,
    /// Probability that the transport sends a data frame twice (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub dup: f64,
    /// Delay each data frame by a uniform 0..=MS milliseconds, which also
    /// reorders frames (0 to 10000).
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = delay_ms)]
    pub delay: u64,
    /// Where the nodes keep their data (kept after the run); a temporary
    /// directory otherwise, deleted after a clean run.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Seed of the fault schedule, the proxies and the workload; random if
    /// omitted, and printed.
    #[arg(long, value_parser = args::seed)]
    pub seed: Option<u64>,
    /// Give up waiting for the workload after this many seconds (1 to 86400);
    /// the run then fails with exit status 1 (after verifying what is there).
    #[arg(long, value_name = "SECS", default_value_t = 600, value_parser = timeout_s)]
    pub timeout: u64,
    /// Print the summary as one JSON object (stdout); the progress bar stays
    /// on stderr.
    #[arg(long)]
    pub json: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Each node writes its protocol trace to DIR/node-ID.jsonl (appended to
    /// across restarts), for `eo validate`.
    #[arg(long, value_name = "DIR")]
    pub trace: Option<PathBuf>,
}

impl CommonArgs {
    fn faults(&self) -> Faults {
        Faults {
            drop: self.drop,
            dup: self.dup,
            delay_ms_max: self.delay,
        }
    }
}

/// The shortest kill or wipe period, in milliseconds.
pub const PERIOD_MS_MIN: u64 = 10;
/// The longest kill or wipe period, in milliseconds (one hour).
pub const PERIOD_MS_MAX: u64 = 3_600_000;
/// The most senders (the receiver tracks at most `SENDERS_MAX` = 16, one spare).
pub const SENDERS_MAX: u64 = 15;
/// The most clients of a two-phase-commit run.
pub const CLIENTS_MAX: u64 = 16;
/// The fewest and most participants (a transaction needs two distinct banks; a
/// transaction spans at most `TXN_PARTICIPANTS_MAX` = 8).
pub const PARTICIPANTS_MIN: u64 = 2;
/// See [`PARTICIPANTS_MIN`].
pub const PARTICIPANTS_MAX: u64 = 8;
/// The longest `--timeout`, in seconds (one day).
pub const TIMEOUT_S_MAX: u64 = 86_400;

fn items(text: &str) -> Result<u64, String> {
    args::whole(text, 1, WORKLOAD_ITEMS_MAX)
}
fn senders(text: &str) -> Result<u32, String> {
    args::whole(text, 1, SENDERS_MAX).map(|n| n as u32)
}
fn clients(text: &str) -> Result<u32, String> {
    args::whole(text, 1, CLIENTS_MAX).map(|n| n as u32)
}
fn participants(text: &str) -> Result<u32, String> {
    args::whole(text, PARTICIPANTS_MIN, PARTICIPANTS_MAX).map(|n| n as u32)
}
fn period_ms(text: &str) -> Result<u64, String> {
    args::whole(text, PERIOD_MS_MIN, PERIOD_MS_MAX)
}
fn delay_ms(text: &str) -> Result<u64, String> {
    args::whole(text, 0, DELAY_MS_MAX)
}
fn timeout_s(text: &str) -> Result<u64, String> {
    args::whole(text, 1, TIMEOUT_S_MAX)
}
fn probability(text: &str) -> Result<f64, String> {
    args::probability(text, false)
}

pub fn run(args: &RunArgs) -> Result<ExitCode, UsageError> {
    let (plan, common) = match &args.protocol {
        Protocol::Verify { dir, json } => return verify::rerun(dir, *json),
        Protocol::AckRetry {
            messages,
            senders,
            common,
        } => (
            cluster::Plan::ack_retry(*messages, *senders),
            common.clone(),
        ),
        Protocol::TwoPhaseCommit {
            transactions,
            participants,
            clients,
            common,
        } => {
            if common.wipe_disk_every.is_some() {
                return Err(UsageError(
                    "--wipe-disk-every is an ack-retry flag: a two-phase-commit node may not lose its disk"
                        .to_owned(),
                ));
            }
            (
                cluster::Plan::two_phase_commit(*transactions, *participants, *clients),
                common.clone(),
            )
        }
    };
    cluster::execute(plan, &common)
}
