//! Real nodes over loopback TCP: delivery exactly once, restarts, and refusals.

use eo_impl::ack_retry::ReceiverRecord;
use eo_impl::runtime::node::{
    ConfigError, Node, NodeConfig, RoleConfig, RoleStatus, StartError, SYNC_DELAY_MAX,
};
use eo_impl::runtime::store::{self, RoleKind, Stored};
use eo_impl::runtime::workload::{self, ack_retry_transfer};
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

const SENDER: u32 = 1;
const RECEIVER: u32 = 2;
const SEED: u64 = 42;

/// Logs to the test's output with `RUST_LOG=…` (e.g. `RUST_LOG=debug`).
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A loopback address with a port that was free a moment ago.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn receiver_config(dir: &Path, addr: SocketAddr, sender: SocketAddr) -> NodeConfig {
    let mut config = NodeConfig::new(RECEIVER, RoleConfig::Receiver, dir.join("receiver"));
    config.listen = addr;
    config.peers.insert(SENDER, sender);
    config
}

fn sender_config(dir: &Path, addr: SocketAddr, receiver: SocketAddr) -> NodeConfig {
    let mut config = NodeConfig::new(
        SENDER,
        RoleConfig::Sender { receiver: RECEIVER },
        dir.join("sender"),
    );
    config.listen = addr;
    config.peers.insert(RECEIVER, receiver);
    config
}

/// Runs the sender's workload up to `n` items within a bound.
fn run_sender(node: &mut Node, n: u64) {
    let outcomes = node.take_outcomes();
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let done = workload::run_sender(
        &node.handle(),
        outcomes.as_ref(),
        SENDER,
        n,
        SEED,
        &stop,
        |p| {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "stuck at {p:?}"
            )
        },
    )
    .unwrap()
    .unwrap();
    assert_eq!((done.submitted, done.done), (n, n));
}

/// Every item `1..=n` applied exactly once, from the receiver's durable log.
fn assert_applied_exactly_once(dir: &Path, n: u64) {
    let inspected = store::open(&dir.join("receiver"), RoleKind::Receiver).unwrap();
    let Stored::Receiver(records) = inspected.records else {
        unreachable!()
    };
    let mut seen = BTreeSet::new();
    for record in records {
        if let ReceiverRecord::Applied {
            from,
            seq,
            transfer,
            ..
        } = record
        {
            assert_eq!(from, SENDER);
            assert_eq!(transfer, ack_retry_transfer(SENDER, seq, SEED).unwrap());
            assert!(seen.insert(seq), "seq {seq} applied twice");
        }
    }
    assert_eq!(seen, (1..=n).collect::<BTreeSet<_>>());
}

#[test]
fn a_sender_and_a_receiver_deliver_every_message_exactly_once() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (s, r) = (free_addr(), free_addr());
    let receiver = Node::start(receiver_config(dir.path(), r, s)).unwrap();
    let mut sender = Node::start(sender_config(dir.path(), s, r)).unwrap();
    run_sender(&mut sender, 2_000);
    let status = receiver.handle().status().unwrap();
    let RoleStatus::Receiver { stats, .. } = status.role else {
        unreachable!()
    };
    assert_eq!(stats.applied, 2_000);
    assert!(
        status.syncs < 2_000,
        "group commit: {} syncs for 2000 applies",
        status.syncs
    );
    sender.shutdown().unwrap();
    receiver.shutdown().unwrap();
    assert_applied_exactly_once(dir.path(), 2_000);
}

#[test]
fn a_restarted_receiver_continues_where_its_log_ends() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (s, r) = (free_addr(), free_addr());
    let receiver = Node::start(receiver_config(dir.path(), r, s)).unwrap();
    let mut sender = Node::start(sender_config(dir.path(), s, r)).unwrap();
    run_sender(&mut sender, 300);
    drop(receiver);
    // The sender keeps submitting while the receiver is down; it reconnects.
    let outcomes = sender.take_outcomes();
    let handle = sender.handle();
    let mut next = 301;
    while next <= 310 {
        if handle
            .submit_transfer(ack_retry_transfer(SENDER, next, SEED).unwrap())
            .is_ok()
        {
            next += 1;
        }
    }
    let receiver = Node::start(receiver_config(dir.path(), r, s)).unwrap();
    let stop = AtomicBool::new(false);
    workload::run_sender(&handle, outcomes.as_ref(), SENDER, 600, SEED, &stop, |_| {})
        .unwrap()
        .unwrap();
    sender.shutdown().unwrap();
    receiver.shutdown().unwrap();
    assert_applied_exactly_once(dir.path(), 600);
}

#[test]
fn with_a_group_commit_delay_every_message_is_still_delivered_exactly_once() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (s, r) = (free_addr(), free_addr());
    let mut receiver_cfg = receiver_config(dir.path(), r, s);
    receiver_cfg.sync_delay = Duration::from_millis(2);
    let mut sender_cfg = sender_config(dir.path(), s, r);
    sender_cfg.sync_delay = Duration::from_millis(2);
    let receiver = Node::start(receiver_cfg).unwrap();
    let mut sender = Node::start(sender_cfg).unwrap();
    run_sender(&mut sender, 500);
    let status = receiver.handle().status().unwrap();
    let RoleStatus::Receiver { stats, .. } = status.role else {
        unreachable!()
    };
    assert_eq!(stats.applied, 500);
    sender.shutdown().unwrap();
    receiver.shutdown().unwrap();
    assert_applied_exactly_once(dir.path(), 500);
}

#[test]
fn a_group_commit_delay_above_the_bound_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = receiver_config(dir.path(), free_addr(), free_addr());
    config.sync_delay = SYNC_DELAY_MAX + Duration::from_millis(1);
    match Node::start(config) {
        Err(StartError::Config(ConfigError::SyncDelayTooLong { delay })) => {
            assert_eq!(delay, SYNC_DELAY_MAX + Duration::from_millis(1))
        }
        other => panic!("expected SyncDelayTooLong, got {other:?}"),
    }
    let mut config = receiver_config(dir.path(), free_addr(), free_addr());
    config.sync_delay = SYNC_DELAY_MAX;
    Node::start(config).unwrap().shutdown().unwrap();
}

fn read_trace(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The traces of both nodes merge: every received message has its `send` line in
/// the sender's trace, stamped with the Lamport time the receiver saw, and the
/// receiver's clock moved past it.
#[test]
fn traces_of_both_nodes_merge_by_lamport_time() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (s, r) = (free_addr(), free_addr());
    let mut rc = receiver_config(dir.path(), r, s);
    rc.trace = Some(dir.path().join("receiver.jsonl"));
    let mut sc = sender_config(dir.path(), s, r);
    sc.trace = Some(dir.path().join("sender.jsonl"));
    let receiver = Node::start(rc).unwrap();
    let mut sender = Node::start(sc).unwrap();
    let incarnations = (sender.incarnation(), receiver.incarnation());
    run_sender(&mut sender, 100);
    sender.shutdown().unwrap();
    receiver.shutdown().unwrap();
    let traces = [
        (
            SENDER,
            incarnations.0,
            read_trace(&dir.path().join("sender.jsonl")),
        ),
        (
            RECEIVER,
            incarnations.1,
            read_trace(&dir.path().join("receiver.jsonl")),
        ),
    ];
    let mut sends = BTreeSet::new();
    for (node, incarnation, lines) in &traces {
        let mut clock = 0;
        for line in lines {
            assert_eq!(
                (line["node"].as_u64(), line["incarnation"].as_u64()),
                (Some(u64::from(*node)), Some(*incarnation))
            );
            let lamport = line["lamport"].as_u64().unwrap();
            assert!(lamport > clock, "a node's clock only grows");
            clock = lamport;
            if line["event"] == "send" {
                sends.insert((
                    *node,
                    line["peer"].as_u64().unwrap(),
                    lamport,
                    line["msg"].to_string(),
                ));
            }
        }
    }
    let mut recvs = 0;
    for (node, _, lines) in &traces {
        for line in lines.iter().filter(|l| l["event"] == "recv") {
            let (peer, stamp) = (
                line["peer"].as_u64().unwrap(),
                line["stamp"].as_u64().unwrap(),
            );
            let key = (
                peer as u32,
                u64::from(*node),
                stamp,
                line["msg"].to_string(),
            );
            assert!(sends.contains(&key), "no send for {line}");
            assert!(line["lamport"].as_u64().unwrap() > stamp);
            recvs += 1;
        }
    }
    assert!(recvs >= 200, "100 data and 100 acks at least, got {recvs}");
}
