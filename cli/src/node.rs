//! `eo node`: run one node of a cluster as a process (see docs/running.md).
//!
//! stdout carries JSON lines for an orchestrator — `{"event":"listening",…}` once
//! bound, `{"event":"progress",…}` at most every 100 ms, `{"event":"done",…}` when a
//! `--workload` finished — and logs go to stderr (`RUST_LOG` sets the level,
//! `info` by default). SIGTERM or SIGINT stops the node cleanly (the log synced,
//! connections closed) with exit status 0; SIGKILL loses nothing durable.
//!
//! Exit status: 0 after a clean stop or a finished workload, 1 when the node fails
//! while running (its log failed), 2 for a bad configuration.

use crate::UsageError;
use clap::{Args, ValueEnum};
use eo_impl::core::NodeId;
use eo_impl::runtime::handshake::ClusterKey;
use eo_impl::runtime::node::{Node, NodeConfig, RoleConfig, RoleStatus, StartError, Status};
use eo_impl::runtime::store::RoleKind;
use eo_impl::runtime::workload::{self, Progress, WORKLOAD_ITEMS_MAX};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a node without a workload prints a progress line.
const PROGRESS_INTERVAL: Duration = workload::PROGRESS_INTERVAL;

/// The protocols a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// Ack-retry messaging: roles sender and receiver.
    AckRetry,
    /// Two-phase commit: roles coordinator, participant and client.
    TwoPhaseCommit,
}

/// The roles, as the command line names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Ack-retry: submits transfers to its one peer, the receiver.
    Sender,
    /// Ack-retry: applies each sender's transfers exactly once.
    Receiver,
    /// Two-phase commit: runs transactions over its `--participant`s.
    Coordinator,
    /// Two-phase commit: a bank; its one peer is the coordinator.
    Participant,
    /// Two-phase commit: submits transactions; its one peer is the coordinator.
    Client,
}

impl RoleArg {
    fn kind(self) -> RoleKind {
        match self {
            RoleArg::Sender => RoleKind::Sender,
            RoleArg::Receiver => RoleKind::Receiver,
            RoleArg::Coordinator => RoleKind::Coordinator,
            RoleArg::Participant => RoleKind::Participant,
            RoleArg::Client => RoleKind::Client,
        }
    }
}

/// `eo node` flags.
#[derive(Args, Clone, Debug)]
pub struct NodeArgs {
    /// The protocol.
    #[arg(long, value_enum)]
    protocol: ProtocolArg,
    /// This node's role in the protocol.
    #[arg(long, value_enum)]
    role: RoleArg,
    /// This node's id (unique in the cluster).
    #[arg(long)]
    id: NodeId,
    /// Where to listen: HOST:PORT, or a PORT alone for 127.0.0.1:PORT.
    #[arg(long, value_parser = listen_addr)]
    listen: SocketAddr,
    /// A node this one talks to, as ID=HOST:PORT (repeat for each). Only these
    /// may connect.
    #[arg(long = "peer", value_parser = peer)]
    peers: Vec<(NodeId, SocketAddr)>,
    /// Two-phase commit: a participant's id (repeat for each). A coordinator
    /// runs its transactions over them (each must be a --peer); a client's
    /// --workload spreads its transactions over them.
    #[arg(long = "participant")]
    participants: Vec<NodeId>,
    /// The directory of this node's durable state (its log is in DIR/wal/).
    #[arg(long)]
    data_dir: PathBuf,
    /// Write the protocol trace to FILE as JSON lines (appended to).
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// A file holding the cluster key (16 to 1024 bytes, surrounding whitespace
    /// trimmed): peers must prove they hold it at the handshake.
    #[arg(long, value_name = "FILE")]
    cluster_key: Option<PathBuf>,
    /// The cluster's id: nodes of another cluster are refused.
    #[arg(long, default_value_t = 0)]
    cluster_id: u64,
    /// Sender or client: generate N transfers or transactions, then print
    /// {"event":"done"} and exit.
    #[arg(long, value_name = "N", value_parser = workload_len)]
    workload: Option<u64>,
    /// The seed of the workload's content (a verifier recomputes it).
    #[arg(long, value_name = "S", default_value_t = 0)]
    workload_seed: u64,
    /// Seeds the reconnection jitter (default: from the operating system).
    #[arg(long)]
    seed: Option<u64>,
}

fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse()
        .map_err(|_| "is not an address: give HOST:PORT or a PORT".to_owned())
}

fn peer(text: &str) -> Result<(NodeId, SocketAddr), String> {
    let (id, addr) = text
        .split_once('=')
        .ok_or_else(|| "is not ID=HOST:PORT".to_owned())?;
    let id = id
        .trim()
        .parse()
        .map_err(|_| format!("has a bad node id {id:?}"))?;
    let addr = addr
        .trim()
        .parse()
        .map_err(|_| format!("has a bad address {addr:?}"))?;
    Ok((id, addr))
}

fn workload_len(text: &str) -> Result<u64, String> {
    crate::args::whole(text, 1, WORKLOAD_ITEMS_MAX)
}

/// SIGTERM or SIGINT arrived.
static STOP: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    #[cfg(unix)]
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
}

/// The one JSON line to stdout, flushed (the orchestrator reads it at once).
fn emit(line: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout ends the process through SIGPIPE (see main).
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Checks the flags against each other; builds the node's configuration.
fn config(args: &NodeArgs) -> Result<NodeConfig, UsageError> {
    let usage = |m: String| Err(UsageError(m));
    let role = args.role.kind();
    let protocol_ok = matches!(
        (args.protocol, role.protocol()),
        (
            ProtocolArg::AckRetry,
            eo_impl::runtime::handshake::Protocol::AckRetry
        ) | (
            ProtocolArg::TwoPhaseCommit,
            eo_impl::runtime::handshake::Protocol::TwoPhaseCommit
        )
    );
    if !protocol_ok {
        return usage(format!(
            "--role {role} is not a role of --protocol {}",
            args.protocol
                .to_possible_value()
                .map_or("?".to_owned(), |v| v.get_name().to_owned())
        ));
    }
    let mut peers = BTreeMap::new();
    for &(id, addr) in &args.peers {
        if peers.insert(id, addr).is_some() {
            return usage(format!("--peer {id} is given twice"));
        }
    }
    let only_peer = |what: &str| match peers.keys().copied().collect::<Vec<_>>()[..] {
        [one] => Ok(one),
        _ => Err(UsageError(format!(
            "a {role} takes exactly one --peer, its {what} (got {})",
            peers.len()
        ))),
    };
    let role_config = match args.role {
        RoleArg::Sender => RoleConfig::Sender {
            receiver: only_peer("receiver")?,
        },
        RoleArg::Receiver => RoleConfig::Receiver,
        RoleArg::Coordinator => RoleConfig::Coordinator {
            participants: args.participants.clone(),
        },
        RoleArg::Participant => RoleConfig::Participant {
            coordinator: only_peer("coordinator")?,
        },
        RoleArg::Client => RoleConfig::Client {
            coordinator: only_peer("coordinator")?,
        },
    };
    if !matches!(args.role, RoleArg::Coordinator | RoleArg::Client) && !args.participants.is_empty()
    {
        return usage(format!(
            "--participant is for a coordinator or a client, not a {role}"
        ));
    }
    if let Some(n) = args.workload {
        match args.role {
            RoleArg::Sender => {}
            RoleArg::Client => {
                // Checks the participants the same way the generator will.
                workload::two_phase_commit_legs(args.id, 1, args.workload_seed, &args.participants)
                    .map_err(|e| UsageError(format!("--workload {n}: {e} (give --participant)")))?;
            }
            _ => {
                return usage(format!(
                    "--workload is for a sender or a client, not a {role}"
                ))
            }
        }
    }
    let cluster_key = match &args.cluster_key {
        None => None,
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| UsageError(format!("--cluster-key {}: {e}", path.display())))?;
            let trimmed = bytes.trim_ascii().to_vec();
            Some(
                ClusterKey::new(trimmed)
                    .map_err(|e| UsageError(format!("--cluster-key {}: {e}", path.display())))?,
            )
        }
    };
    let mut config = NodeConfig::new(args.id, role_config, args.data_dir.clone());
    config.listen = args.listen;
    config.peers = peers;
    config.cluster_id = args.cluster_id;
    config.cluster_key = cluster_key;
    config.trace = args.trace.clone();
    config.seed = args.seed.unwrap_or_else(rand_seed);
    config
        .validate()
        .map_err(|e| UsageError(format!("bad configuration: {e}")))?;
    Ok(config)
}

/// A seed from the clock, for jitter only (nothing depends on its quality).
fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32)
}

fn status_line(event: &str, status: &Status, extra: serde_json::Value) -> serde_json::Value {
    let mut line = json!({
        "event": event,
        "lsn": status.lsn_durable.0,
        "records": status.records,
        "syncs": status.syncs,
        "lamport": status.lamport,
        "transport": status.transport,
    });
    let role = match &status.role {
        RoleStatus::Sender {
            incarnation,
            next_seq,
            in_flight,
            stats,
        } => json!({
            "incarnation": incarnation, "next_seq": next_seq, "in_flight": in_flight,
            "retransmitted": stats.retransmitted, "acked": stats.acked, "unknown": stats.unknown,
        }),
        RoleStatus::Receiver { stats, bank_total } => json!({
            "done": stats.applied, "applied": stats.applied, "duplicates": stats.duplicates,
            "expired": stats.expired, "bank_total": bank_total.to_string(),
        }),
        RoleStatus::Coordinator { txns } => json!({ "txns": txns }),
        RoleStatus::Participant { txns, bank_total } => {
            json!({ "txns": txns, "bank_total": bank_total.to_string() })
        }
        RoleStatus::Client { next_seq, pending } => {
            json!({ "next_seq": next_seq, "pending": pending })
        }
    };
    for fields in [role, extra] {
        if let (Some(line), serde_json::Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
    }
    line
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Runs `eo node`.
pub fn run(args: &NodeArgs) -> Result<ExitCode, UsageError> {
    let config = config(args)?;
    init_logging();
    install_signal_handlers();
    let id = config.id;
    let role = config.role.kind();
    let mut node = match Node::start(config) {
        Ok(node) => node,
        Err(StartError::Config(e)) => return Err(UsageError(format!("bad configuration: {e}"))),
        Err(e) => {
            eprintln!("eo: node {id} did not start: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    emit(json!({
        "event": "listening",
        "addr": node.local_addr().to_string(),
        "id": id,
        "role": role.name(),
        "incarnation": node.incarnation(),
    }));
    let handle = node.handle();
    let outcomes = node.take_outcomes();
    let finished = match args.workload {
        Some(n) => {
            let progress = |p: &Progress| {
                emit(status_line(
                    "progress",
                    &p.status,
                    json!({"done": p.done, "submitted": p.submitted, "workload": n}),
                ))
            };
            let result = match args.role {
                RoleArg::Client => workload::run_client(
                    &handle,
                    outcomes.as_ref(),
                    id,
                    &args.participants,
                    n,
                    args.workload_seed,
                    &STOP,
                    progress,
                ),
                _ => workload::run_sender(
                    &handle,
                    outcomes.as_ref(),
                    id,
                    n,
                    args.workload_seed,
                    &STOP,
                    progress,
                ),
            };
            match result {
                Ok(Some(done)) => {
                    emit(status_line(
                        "done",
                        &done.status,
                        json!({"done": done.done, "submitted": done.submitted, "workload": n}),
                    ));
                    true
                }
                Ok(None) => false,
                Err(error) => {
                    eprintln!("eo: node {id}: workload stopped: {error}");
                    let _ = node.shutdown();
                    return Ok(ExitCode::from(1));
                }
            }
        }
        None => {
            // Without a workload: progress lines until a signal or a failure.
            let mut last = Instant::now();
            while !STOP.load(Ordering::Relaxed) && !node.is_finished() {
                std::thread::sleep(Duration::from_millis(20));
                if let Some(outcomes) = &outcomes {
                    while outcomes.try_recv().is_ok() {}
                }
                if last.elapsed() >= PROGRESS_INTERVAL {
                    last = Instant::now();
                    if let Some(status) = handle.status() {
                        emit(status_line("progress", &status, json!({})));
                    }
                }
            }
            false
        }
    };
    match node.shutdown() {
        Ok(()) => {
            if !finished {
                emit(json!({"event": "stopped", "id": id}));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("eo: node {id} failed: {error}");
            Ok(ExitCode::from(1))
        }
    }
}
