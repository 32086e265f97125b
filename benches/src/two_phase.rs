//! A running two-phase-commit cluster over loopback TCP: a coordinator, P
//! participants and one client, each a real [`Node`] with its log on the disk.
//!
//! Every transaction spans all P participants (P - 1 credits of 1, one debit
//! of P - 1; with one participant a posting of 0). The client keeps `window`
//! transactions in flight (at most [`CLIENT_PENDING_TXNS_MAX`]), so concurrent
//! transactions share each node's syncs (group commit across transactions);
//! each is timed from submission to its `Outcome`.

use crate::latency::Latencies;
use crate::place::{Durability, RunDir};
use crate::{BenchError, OUTCOME_WAIT_MAX};
use eo_impl::bank::Posting;
use eo_impl::core::NodeId;
use eo_impl::runtime::node::{Handle, Node, NodeConfig, Outcome, RoleConfig};
use eo_impl::two_phase_commit::{
    Decision, Event, Leg, TxnId, CLIENT_PENDING_TXNS_MAX, TXN_PARTICIPANTS_MAX,
};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::Receiver as Rx;
use std::time::{Duration, Instant};

/// The coordinator's node id; participants are `1..=P`, the client is [`CLIENT`].
pub const COORDINATOR: NodeId = 1000;
/// The client's node id.
pub const CLIENT: NodeId = 2000;
/// The account every posting touches at each participant.
const ACCOUNT: u32 = 7;
/// How long the client waits between tries while the coordinator is busy.
const BUSY_RETRY: Duration = Duration::from_micros(200);

/// What one [`Rig::run`] measured.
#[derive(Debug, Default)]
pub struct RunResult {
    pub elapsed: Duration,
    /// Transactions committed.
    pub committed: u64,
    /// Submission to `Outcome`, per transaction.
    pub latencies: Latencies,
}

/// A started cluster (stopped by [`Rig::stop`] or when dropped).
pub struct Rig {
    coordinator: Node,
    participants: Vec<Node>,
    client: Node,
    handle: Handle,
    outcomes: Rx<Outcome>,
    legs: Vec<Leg>,
    _dir: RunDir,
}

fn free_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

impl Rig {
    /// Starts a coordinator, `participants` participants (1..=
    /// [`TXN_PARTICIPANTS_MAX`]) and a client.
    pub fn start(participants: usize) -> Result<Rig, BenchError> {
        if !(1..=TXN_PARTICIPANTS_MAX).contains(&participants) {
            return Err(BenchError::Check(format!(
                "{participants} participants: between 1 and {TXN_PARTICIPANTS_MAX}"
            )));
        }
        let dir = RunDir::new("two-phase-commit", Durability::Disk)?;
        let ids: Vec<NodeId> = (1..=participants as NodeId).collect();
        let coordinator_addr = free_addr()?;
        let client_addr = free_addr()?;
        let mut participant_addrs = Vec::new();
        for _ in &ids {
            participant_addrs.push(free_addr()?);
        }

        let mut config = NodeConfig::new(
            COORDINATOR,
            RoleConfig::Coordinator {
                participants: ids.clone(),
            },
            dir.path().join("coordinator"),
        );
        config.listen = coordinator_addr;
        config.peers.insert(CLIENT, client_addr);
        for (&id, &addr) in ids.iter().zip(&participant_addrs) {
            config.peers.insert(id, addr);
        }
        let coordinator = Node::start(config)?;

        let mut nodes = Vec::new();
        for (&id, &addr) in ids.iter().zip(&participant_addrs) {
            let mut config = NodeConfig::new(
                id,
                RoleConfig::Participant {
                    coordinator: COORDINATOR,
                },
                dir.path().join(format!("p{id}")),
            );
            config.listen = addr;
            config.peers.insert(COORDINATOR, coordinator_addr);
            nodes.push(Node::start(config)?);
        }

        let mut config = NodeConfig::new(
            CLIENT,
            RoleConfig::Client {
                coordinator: COORDINATOR,
            },
            dir.path().join("client"),
        );
        config.listen = client_addr;
        config.peers.insert(COORDINATOR, coordinator_addr);
        let mut client = Node::start(config)?;
        let outcomes = client.take_outcomes().ok_or(BenchError::OutcomesGone)?;
        let handle = client.handle();

        let others = ids.len() as i64 - 1;
        let legs = ids
            .iter()
            .enumerate()
            .map(|(i, &participant)| Leg {
                participant,
                posting: Posting {
                    account: ACCOUNT,
                    delta: if i == 0 { -others } else { 1 },
                },
            })
            .collect();
        Ok(Rig {
            coordinator,
            participants: nodes,
            client,
            handle,
            outcomes,
            legs,
            _dir: dir,
        })
    }

    /// Runs `n` transactions with at most `window` in flight; waits for every
    /// outcome. An abort is an error: every participant votes yes.
    pub fn run(&mut self, n: u64, window: u64) -> Result<RunResult, BenchError> {
        let window = window.clamp(1, CLIENT_PENDING_TXNS_MAX);
        let mut latencies = Latencies::default();
        let mut submitted_at: HashMap<TxnId, Instant> = HashMap::new();
        let (mut submitted, mut committed) = (0u64, 0u64);
        let start = Instant::now();
        while committed < n {
            while submitted < n && (submitted_at.len() as u64) < window {
                match self.handle.submit_transaction(self.legs.clone()) {
                    Ok(txn) => {
                        submitted_at.insert(txn, Instant::now());
                        submitted += 1;
                    }
                    Err(e) if e.is_busy() => {
                        if submitted_at.is_empty() {
                            std::thread::sleep(BUSY_RETRY);
                        }
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if submitted_at.is_empty() {
                continue;
            }
            let first =
                self.outcomes
                    .recv_timeout(OUTCOME_WAIT_MAX)
                    .map_err(|_| BenchError::Stalled {
                        in_flight: submitted_at.len(),
                    })?;
            for outcome in std::iter::once(first).chain(self.outcomes.try_iter()) {
                if let Outcome::TwoPhaseCommit(Event::Outcome { txn, decision }) = outcome {
                    if decision != Decision::Commit {
                        return Err(BenchError::Check(format!("{txn} aborted")));
                    }
                    if let Some(at) = submitted_at.remove(&txn) {
                        latencies.record(at.elapsed());
                        committed += 1;
                    }
                }
            }
        }
        Ok(RunResult {
            elapsed: start.elapsed(),
            committed,
            latencies,
        })
    }

    /// `fdatasync`s of all nodes so far.
    pub fn syncs(&self) -> u64 {
        std::iter::once(&self.coordinator)
            .chain(&self.participants)
            .chain(std::iter::once(&self.client))
            .filter_map(|n| n.handle().status())
            .map(|s| s.syncs)
            .sum()
    }

    /// Stops every node.
    pub fn stop(self) -> Result<(), BenchError> {
        self.client.shutdown()?;
        self.coordinator.shutdown()?;
        for p in self.participants {
            p.shutdown()?;
        }
        Ok(())
    }
}
