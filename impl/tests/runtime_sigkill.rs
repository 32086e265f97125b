//! The log on real files survives SIGKILL during heavy appends: a child process
//! (this test binary, re-run in child mode) appends from several threads through
//! group commit and prints each record's position once `wait_durable` returned;
//! the parent kills it with SIGKILL mid-stream, several times on the same
//! directory, and after each kill recovers the log and finds every record the
//! child reported durable, intact, at its position.

use eo_impl::disk::FileDisk;
use eo_impl::wal::{GroupCommit, Wal};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set in the child's environment: the log directory.
const CHILD_DIR: &str = "EO_SIGKILL_CHILD_DIR";
/// Set in the child's environment: which life of the child this is.
const CHILD_ROUND: &str = "EO_SIGKILL_CHILD_ROUND";
const THREADS: u32 = 4;
const ROUNDS: u32 = 3;
/// The parent kills the child after this many durable reports.
const REPORTS_BEFORE_KILL: usize = 3_000;
/// A child that reports too slowly fails the test instead of hanging it.
const ROUND_TIME_MAX: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    round: u32,
    thread: u32,
    i: u64,
    payload: Vec<u8>,
}

/// The content of record `i` of a thread in a round: lengths vary from 1 to 500
/// bytes so that frames straddle pages and a kill tears them anywhere.
fn record(round: u32, thread: u32, i: u64) -> Record {
    let len = 1 + (i as usize * 7 + thread as usize * 13) % 500;
    let byte = (round as u64 * 31 + u64::from(thread) * 7 + i) as u8;
    Record {
        round,
        thread,
        i,
        payload: vec![byte; len],
    }
}

/// Child mode: append forever from `THREADS` threads, print `lsn thread i` for
/// each record once it is durable. Not a test of its own: without the variable
/// it returns at once.
#[test]
fn child_appender() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let round: u32 = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let (wal, _) = Wal::open(FileDisk::open(&dir).unwrap()).unwrap();
    let group = Arc::new(GroupCommit::new(wal));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let group = Arc::clone(&group);
            std::thread::spawn(move || {
                for i in 0.. {
                    let lsn = group.append_record(&record(round, thread, i)).unwrap();
                    group.wait_durable(lsn).unwrap();
                    println!("{} {thread} {i}", lsn.0);
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}

/// Runs one child life on `dir` and kills it; returns what it reported durable.
fn run_and_kill(dir: &Path, round: u32) -> Vec<(u64, u32, u64)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_appender",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let mut reports = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        // The harness prints its own lines too ("running 1 test").
        if let [lsn, thread, i] = fields[..] {
            if let (Ok(lsn), Ok(thread), Ok(i)) = (lsn.parse(), thread.parse(), i.parse()) {
                reports.push((lsn, thread, i));
            }
        }
        if reports.len() >= REPORTS_BEFORE_KILL {
            break;
        }
        assert!(started.elapsed() < ROUND_TIME_MAX, "child too slow");
    }
    // Child::kill sends SIGKILL on Unix: no destructor, no flush, no sync.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(reports.len(), REPORTS_BEFORE_KILL, "the child died early");
    reports
}

#[test]
fn every_record_reported_durable_survives_sigkill() {
    if std::env::var(CHILD_DIR).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut durable: Vec<(u64, Record)> = Vec::new();
    let mut torn_tails = 0;
    for round in 0..ROUNDS {
        for (lsn, thread, i) in run_and_kill(dir.path(), round) {
            durable.push((lsn, record(round, thread, i)));
        }
        let (wal, recovered) = Wal::open(FileDisk::open(dir.path()).unwrap()).unwrap();
        drop(wal);
        torn_tails += usize::from(recovered.truncated.is_some());
        let records: Vec<Record> = recovered.decode().unwrap();
        assert_eq!(recovered.base.0, 0, "never compacted");
        for (lsn, expected) in &durable {
            let found = records.get(*lsn as usize - 1);
            assert_eq!(found, Some(expected), "record {lsn} reported durable");
        }
    }
    // Not asserted (a kill between writes leaves no tear), reported for the record.
    eprintln!(
        "{ROUNDS} kills, {torn_tails} torn tails cut, {} durable records checked",
        durable.len()
    );
}
