//! An application embedding an ack-retry sender and a receiver in one program,
//! over loopback TCP, with their logs on real files (fsync and group commit).
//!
//! ```text
//! cargo run --release -p eo-impl --example embed -- [MESSAGES] [DATA_DIR]
//! ```
//!
//! It submits MESSAGES transfers (default 20000) as fast as the sender's window
//! allows, waits until each is delivered, checks that the receiver applied each
//! exactly once, and prints the throughput beside a baseline measured in the same
//! run on the same disk (before and after): how many records per second the log
//! takes when each is synced alone, the most a driver that syncs once per message
//! (no group commit) could reach.

use eo_impl::ack_retry::{SenderEvent, WINDOW_MAX};
use eo_impl::bank::Transfer;
use eo_impl::disk::FileDisk;
use eo_impl::runtime::node::{Node, NodeConfig, Outcome, RoleConfig, RoleStatus};
use eo_impl::wal::Wal;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SENDER: u32 = 1;
const RECEIVER: u32 = 2;
/// Records of the baseline measurement, each appended and synced alone.
const BASELINE_RECORDS: u32 = 500;

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// Records per second of the write-ahead log on `dir`'s file system when each
/// record is synced alone (append, `fdatasync`, next): the most a driver without
/// group commit could reach, since every message needs a durable record.
fn one_sync_per_record_rate(dir: &Path) -> f64 {
    let path = dir.join("baseline");
    let _ = std::fs::remove_dir_all(&path);
    let disk = FileDisk::open(&path).expect("a baseline directory");
    let (mut wal, _) = Wal::open(disk).expect("a baseline log");
    let started = Instant::now();
    for i in 0..BASELINE_RECORDS {
        wal.append_record(&(i, [0u8; 16])).expect("append");
        wal.sync().expect("fdatasync");
    }
    let rate = f64::from(BASELINE_RECORDS) / started.elapsed().as_secs_f64();
    drop(wal);
    let _ = std::fs::remove_dir_all(path);
    rate
}

fn main() {
    let mut args = std::env::args().skip(1);
    let messages: u64 = args
        .next()
        .map(|n| n.parse().expect("MESSAGES is a whole number"))
        .unwrap_or(20_000);
    let dir: PathBuf = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("eo-embed-{}", std::process::id())));
    std::fs::create_dir_all(&dir).expect("the data directory");

    let baseline_before = one_sync_per_record_rate(&dir);

    // 1. Configure both nodes: each names the other as its only peer.
    let (s_addr, r_addr) = (free_addr(), free_addr());
    let mut receiver = NodeConfig::new(RECEIVER, RoleConfig::Receiver, dir.join("receiver"));
    receiver.listen = r_addr;
    receiver.peers.insert(SENDER, s_addr);
    let mut sender = NodeConfig::new(
        SENDER,
        RoleConfig::Sender { receiver: RECEIVER },
        dir.join("sender"),
    );
    sender.listen = s_addr;
    sender.peers.insert(RECEIVER, r_addr);

    // 2. Start them: each recovers its log (empty the first time) and listens.
    let receiver = Node::start(receiver).expect("the receiver starts");
    let mut sender = Node::start(sender).expect("the sender starts");
    let outcomes = sender.take_outcomes().expect("outcomes are taken once");
    let handle = sender.handle();

    // 3. Submit, treating a full window as backpressure; count deliveries.
    let started = Instant::now();
    let (mut submitted, mut delivered) = (0u64, 0u64);
    while delivered < messages {
        while submitted < messages {
            let transfer = Transfer {
                from: 1,
                to: 2,
                amount: 1,
            };
            match handle.submit_transfer(transfer) {
                Ok(_seq) => submitted += 1,
                Err(e) if e.is_busy() => break,
                Err(e) => panic!("submission refused: {e}"),
            }
        }
        // Wait for at least one outcome, then take every one that is there.
        let first = outcomes.recv_timeout(Duration::from_secs(10));
        for outcome in first.into_iter().chain(outcomes.try_iter()) {
            if let Outcome::Sender(SenderEvent::Delivered { .. }) = outcome {
                delivered += 1;
            }
        }
    }
    let elapsed = started.elapsed();

    // 4. Read both nodes' state, then shut down cleanly.
    let s = handle.status().expect("the sender runs");
    let r = receiver.handle().status().expect("the receiver runs");
    let RoleStatus::Receiver { stats, .. } = r.role else {
        unreachable!("node 2 is a receiver")
    };
    assert_eq!(
        stats.applied, messages,
        "every message applied exactly once"
    );
    // `applied` counts first applications only: a retransmission (the sender's
    // timer fired before the ack came back) is a duplicate, re-acknowledged.
    sender.shutdown().expect("a clean stop");
    receiver.shutdown().expect("a clean stop");

    let rate = messages as f64 / elapsed.as_secs_f64();
    let syncs = s.syncs + r.syncs;
    let baseline_after = one_sync_per_record_rate(&dir);
    let baseline = (baseline_before + baseline_after) / 2.0;
    println!("messages:            {messages} (window {WINDOW_MAX})");
    println!("elapsed:             {:.3} s", elapsed.as_secs_f64());
    println!("throughput:          {rate:.0} messages/s");
    if let RoleStatus::Sender { stats: sent, .. } = &s.role {
        println!(
            "retransmissions:     {} (duplicates suppressed at the receiver: {})",
            sent.retransmitted, stats.duplicates
        );
    }
    println!(
        "fdatasyncs:          {syncs} (sender {}, receiver {}), {:.1} messages per sync",
        s.syncs,
        r.syncs,
        messages as f64 / syncs.max(1) as f64
    );
    println!(
        "one sync per record: {baseline:.0} records/s on this disk ({baseline_before:.0} before, {baseline_after:.0} after)"
    );
    println!(
        "throughput / one-sync-per-record rate: {:.1}x",
        rate / baseline
    );
    println!("data directory:      {}", dir.display());
}
