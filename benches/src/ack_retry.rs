//! A running ack-retry cluster over loopback TCP: one receiver, N senders, each a
//! real [`Node`] with its log on a real directory.
//!
//! Three modes share everything but one thing each:
//! - [`Mode::ExactlyOnce`]: the product — logs on the disk, receiver dedup on;
//! - [`Mode::AtLeastOnce`]: the same with the receiver's dedup switched off
//!   ([`NodeConfig::at_least_once`], feature `bench-baseline`): what dedup costs;
//! - [`Mode::NoDurability`]: exactly-once with the logs in memory (tmpfs, where
//!   `fdatasync` returns at once): what durability costs.
//!
//! Every sender thread keeps at most `window` of its messages in flight (the
//! application's window, at most [`WINDOW_MAX`]), times each from submission to
//! its `Delivered` event, and counts deliveries.

use crate::latency::Latencies;
use crate::place::{Durability, RunDir};
use crate::{BenchError, OUTCOME_WAIT_MAX};
use eo_impl::ack_retry::{SenderEvent, WINDOW_MAX};
use eo_impl::bank::Transfer;
use eo_impl::core::NodeId;
use eo_impl::runtime::node::{Handle, Node, NodeConfig, Outcome, RoleConfig, RoleStatus};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::Receiver as Rx;
use std::time::{Duration, Instant};

/// The receiver's node id; senders are `1..=senders`.
pub const RECEIVER: NodeId = 1000;
/// The most senders a rig starts.
pub const SENDERS_MAX: usize = 64;
/// How long a sender waits between tries while it has no incarnation yet.
const BUSY_RETRY: Duration = Duration::from_micros(200);

/// What the run keeps and drops (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    ExactlyOnce,
    AtLeastOnce,
    NoDurability,
}

impl Mode {
    /// Every mode, the product first.
    pub const ALL: [Mode; 3] = [Mode::ExactlyOnce, Mode::AtLeastOnce, Mode::NoDurability];

    /// The mode's name in benchmark ids and tables.
    pub fn name(self) -> &'static str {
        match self {
            Mode::ExactlyOnce => "exactly-once",
            Mode::AtLeastOnce => "at-least-once",
            Mode::NoDurability => "no-durability",
        }
    }

    fn durability(self) -> Durability {
        match self {
            Mode::NoDurability => Durability::Memory,
            Mode::ExactlyOnce | Mode::AtLeastOnce => Durability::Disk,
        }
    }
}

/// What one [`Rig::run`] measured.
#[derive(Debug, Default)]
pub struct RunResult {
    /// From the first submission to the last delivery.
    pub elapsed: Duration,
    /// Messages delivered.
    pub delivered: u64,
    /// Submission to `Delivered`, per message.
    pub latencies: Latencies,
}

struct SenderNode {
    node: Node,
    handle: Handle,
    outcomes: Rx<Outcome>,
}

/// A started cluster (stopped when dropped, or by [`Rig::stop`]).
pub struct Rig {
    mode: Mode,
    receiver: Node,
    senders: Vec<SenderNode>,
    /// Messages submitted and delivered so far, for the check at the end.
    delivered: u64,
    _dir: RunDir,
}

fn free_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

impl Rig {
    /// Starts a receiver and `senders` senders (1..=[`SENDERS_MAX`]) in `mode`,
    /// with the runtime's default group commit (no delay).
    pub fn start(mode: Mode, senders: usize) -> Result<Rig, BenchError> {
        Rig::start_with(mode, senders, Duration::ZERO)
    }

    /// [`Rig::start`] with every node's group-commit delay
    /// ([`NodeConfig::sync_delay`]) set to `sync_delay`.
    pub fn start_with(mode: Mode, senders: usize, sync_delay: Duration) -> Result<Rig, BenchError> {
        if !(1..=SENDERS_MAX).contains(&senders) {
            return Err(BenchError::Check(format!(
                "{senders} senders: between 1 and {SENDERS_MAX}"
            )));
        }
        let dir = RunDir::new(&format!("ack-retry-{}", mode.name()), mode.durability())?;
        let receiver_addr = free_addr()?;
        let ids: Vec<NodeId> = (1..=senders as NodeId).collect();
        let mut sender_addrs = Vec::new();
        for _ in &ids {
            sender_addrs.push(free_addr()?);
        }
        let mut config = NodeConfig::new(RECEIVER, RoleConfig::Receiver, dir.path().join("r"));
        config.listen = receiver_addr;
        config.sync_delay = sync_delay;
        config.at_least_once = mode == Mode::AtLeastOnce;
        for (&id, &addr) in ids.iter().zip(&sender_addrs) {
            config.peers.insert(id, addr);
        }
        let receiver = Node::start(config)?;
        let mut nodes = Vec::new();
        for (&id, &addr) in ids.iter().zip(&sender_addrs) {
            let mut config = NodeConfig::new(
                id,
                RoleConfig::Sender { receiver: RECEIVER },
                dir.path().join(format!("s{id}")),
            );
            config.listen = addr;
            config.sync_delay = sync_delay;
            config.peers.insert(RECEIVER, receiver_addr);
            let mut node = Node::start(config)?;
            let outcomes = node.take_outcomes().ok_or(BenchError::OutcomesGone)?;
            let handle = node.handle();
            nodes.push(SenderNode {
                node,
                handle,
                outcomes,
            });
        }
        Ok(Rig {
            mode,
            receiver,
            senders: nodes,
            delivered: 0,
            _dir: dir,
        })
    }

    /// The mode the rig runs in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Sends `messages` in all (split evenly over the senders, each on its own
    /// thread with at most `window` in flight) and waits until every one is
    /// delivered.
    pub fn run(&mut self, messages: u64, window: u64) -> Result<RunResult, BenchError> {
        let window = window.clamp(1, WINDOW_MAX);
        let count = self.senders.len() as u64;
        let start = Instant::now();
        let results: Vec<Result<(u64, Latencies), BenchError>> = std::thread::scope(|s| {
            let threads: Vec<_> = self
                .senders
                .iter_mut()
                .enumerate()
                .map(|(i, sender)| {
                    let share = messages / count + u64::from((i as u64) < messages % count);
                    s.spawn(move || drive(sender, share, window))
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap_or(Err(BenchError::OutcomesGone)))
                .collect()
        });
        let elapsed = start.elapsed();
        let mut result = RunResult {
            elapsed,
            ..RunResult::default()
        };
        for r in results {
            let (delivered, latencies) = r?;
            result.delivered += delivered;
            result.latencies.extend(&latencies);
        }
        self.delivered += result.delivered;
        Ok(result)
    }

    /// `fdatasync`s and records of all nodes so far: (syncs, records).
    pub fn syncs_and_records(&self) -> (u64, u64) {
        let mut totals = (0, 0);
        let handles = std::iter::once(self.receiver.handle())
            .chain(self.senders.iter().map(|s| s.handle.clone()));
        for handle in handles {
            if let Some(status) = handle.status() {
                totals.0 += status.syncs;
                totals.1 += status.records;
            }
        }
        totals
    }

    /// Checks that the receiver applied every delivered message exactly once
    /// (in the exactly-once modes), then stops every node.
    pub fn stop(self) -> Result<(), BenchError> {
        let status = self.receiver.handle().status();
        for sender in self.senders {
            sender.node.shutdown()?;
        }
        self.receiver.shutdown()?;
        let Some(RoleStatus::Receiver { stats, .. }) = status.map(|s| s.role) else {
            return Err(BenchError::Check("the receiver reports no status".into()));
        };
        if self.mode != Mode::AtLeastOnce && stats.applied != self.delivered {
            return Err(BenchError::Check(format!(
                "{} delivered but {} applied",
                self.delivered, stats.applied
            )));
        }
        Ok(())
    }
}

/// One sender's loop: keep `window` in flight until `n` are delivered.
fn drive(sender: &mut SenderNode, n: u64, window: u64) -> Result<(u64, Latencies), BenchError> {
    let mut latencies = Latencies::default();
    let mut submitted_at: HashMap<u64, Instant> = HashMap::new();
    let (mut submitted, mut delivered) = (0u64, 0u64);
    let transfer = Transfer {
        from: 1,
        to: 2,
        amount: 1,
    };
    while delivered < n {
        while submitted < n && (submitted_at.len() as u64) < window {
            match sender.handle.submit_transfer(transfer) {
                Ok(seq) => {
                    submitted_at.insert(seq, Instant::now());
                    submitted += 1;
                }
                Err(e) if e.is_busy() => {
                    if submitted_at.is_empty() {
                        std::thread::sleep(BUSY_RETRY); // no incarnation yet
                    }
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if submitted_at.is_empty() {
            continue;
        }
        let first = sender
            .outcomes
            .recv_timeout(OUTCOME_WAIT_MAX)
            .map_err(|_| BenchError::Stalled {
                in_flight: submitted_at.len(),
            })?;
        for outcome in std::iter::once(first).chain(sender.outcomes.try_iter()) {
            if let Outcome::Sender(SenderEvent::Delivered { seq, .. }) = outcome {
                if let Some(at) = submitted_at.remove(&seq) {
                    latencies.record(at.elapsed());
                    delivered += 1;
                }
            }
        }
    }
    Ok((delivered, latencies))
}
