//! `eo node` as processes: bad configurations, and a receiver killed with SIGKILL
//! while a sender's workload runs — every item applied exactly once afterwards.

use eo_impl::ack_retry::ReceiverRecord;
use eo_impl::runtime::store::{self, RoleKind, Stored};
use eo_impl::runtime::workload::ack_retry_transfer;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Every wait in these tests ends within this bound.
const WAIT_MAX: Duration = Duration::from_secs(60);

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn eo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_eo"))
        .args(args)
        .output()
        .expect("eo runs")
}

#[test]
fn bad_configurations_are_one_line_errors_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let short_key = dir.path().join("key");
    std::fs::write(&short_key, "short").unwrap();
    let base = ["node", "--id", "1", "--listen", "0", "--data-dir", data];
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "--protocol",
                "ack-retry",
                "--role",
                "client",
                "--peer",
                "2=127.0.0.1:1",
            ],
            "eo: --role client is not a role of --protocol ack-retry",
        ),
        (
            &["--protocol", "ack-retry", "--role", "sender"],
            "eo: a sender takes exactly one --peer, its receiver (got 0)",
        ),
        (
            &[
                "--protocol",
                "ack-retry",
                "--role",
                "receiver",
                "--peer",
                "1=127.0.0.1:1",
            ],
            "eo: bad configuration: node 1 lists itself as a peer",
        ),
        (
            &[
                "--protocol",
                "two-phase-commit",
                "--role",
                "coordinator",
                "--peer",
                "2=127.0.0.1:1",
                "--participant",
                "3",
            ],
            "eo: bad configuration: the coordinator needs node 3 as a peer (give its address)",
        ),
        (
            &[
                "--protocol",
                "ack-retry",
                "--role",
                "receiver",
                "--workload",
                "5",
            ],
            "eo: --workload is for a sender or a client, not a receiver",
        ),
        (
            &[
                "--protocol",
                "ack-retry",
                "--role",
                "receiver",
                "--cluster-key",
                short_key.to_str().unwrap(),
            ],
            "cluster key of 5 bytes (allowed 16..=1024)",
        ),
    ];
    for (args, message) in cases {
        let out = eo(&[&base[..], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("eo: ") && stderr.contains(message),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

/// A node process and its stdout, read line by line.
struct Proc {
    child: Child,
    lines: std::io::Lines<BufReader<ChildStdout>>,
}

impl Proc {
    fn spawn(args: &[String]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_eo"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Proc { child, lines }
    }

    /// The next JSON line.
    fn next(&mut self) -> serde_json::Value {
        let line = self.lines.next().expect("the node ended").unwrap();
        serde_json::from_str(&line).unwrap()
    }

    /// The next JSON line whose event is `event`.
    fn wait_for(&mut self, event: &str) -> serde_json::Value {
        loop {
            let value = self.next();
            if value["event"] == event {
                return value;
            }
        }
    }
}

fn receiver_args(dir: &Path, r: SocketAddr, s: SocketAddr) -> Vec<String> {
    let args = format!(
        "node --protocol ack-retry --role receiver --id 2 --listen {r} --peer 1={s} --data-dir {}",
        dir.join("r").display()
    );
    args.split(' ').map(str::to_owned).collect()
}

#[cfg(unix)]
#[test]
fn a_receiver_killed_with_sigkill_loses_nothing_and_applies_nothing_twice() {
    const ITEMS: u64 = 3_000;
    const SEED: u64 = 11;
    let dir = tempfile::tempdir().unwrap();
    let (s, r) = (free_addr(), free_addr());
    let mut receiver = Proc::spawn(&receiver_args(dir.path(), r, s));
    receiver.wait_for("listening");
    let sender_args = format!(
        "node --protocol ack-retry --role sender --id 1 --listen {s} --peer 2={r} --data-dir {} --workload {ITEMS} --workload-seed {SEED}",
        dir.path().join("s").display()
    );
    let sender_args: Vec<String> = sender_args.split(' ').map(str::to_owned).collect();
    let mut sender = Proc::spawn(&sender_args);
    sender.wait_for("listening");
    let started = Instant::now();
    let mut kills = 0u64;
    // Kill the receiver each time the sender passed another fifth, up to 3 times.
    let done = loop {
        let line = sender.next();
        if line["event"] == "done" {
            break line;
        }
        let progress = line["done"].as_u64().unwrap_or(0);
        if line["event"] == "progress" && kills < 3 && progress > (kills + 1) * ITEMS / 5 {
            receiver.child.kill().unwrap(); // SIGKILL
            receiver.child.wait().unwrap();
            kills += 1;
            receiver = Proc::spawn(&receiver_args(dir.path(), r, s));
            receiver.wait_for("listening");
        }
        assert!(started.elapsed() < WAIT_MAX, "no progress");
    };
    assert!(
        kills >= 1,
        "the receiver was killed while the sender worked"
    );
    assert_eq!(done["done"], ITEMS);
    assert!(sender.child.wait().unwrap().success());
    // SIGTERM: a clean stop, exit 0.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(receiver.child.id() as i32, libc::SIGTERM) };
    receiver.wait_for("stopped");
    assert!(receiver.child.wait().unwrap().success());

    let inspected = store::open(&dir.path().join("r"), RoleKind::Receiver).unwrap();
    let Stored::Receiver(records) = inspected.records else {
        unreachable!()
    };
    let mut applied = BTreeMap::new();
    for record in records {
        if let ReceiverRecord::Applied { seq, transfer, .. } = record {
            assert_eq!(transfer, ack_retry_transfer(1, seq, SEED).unwrap());
            *applied.entry(seq).or_insert(0) += 1;
        }
    }
    assert_eq!(applied.len() as u64, ITEMS, "nothing lost");
    assert!(applied.values().all(|&n| n == 1), "nothing applied twice");
}
