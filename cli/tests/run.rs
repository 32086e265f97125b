//! `eo run` as a user runs it: real node processes on loopback, SIGKILLs, lost
//! disks and a faulty transport, then the verifier — and a negative control that
//! shows the verifier names a planted violation.
//!
//! Bounded: small workloads, `--timeout` on every run (a hung run fails instead
//! of hanging the suite), every child reaped by `eo run` itself.

use eo_impl::ack_retry::ReceiverRecord;
use eo_impl::disk::FileDisk;
use eo_impl::runtime::store::{self, RoleKind, Stored};
use eo_impl::two_phase_commit::{NodeRecord, ParticipantRecord};
use eo_impl::wal::Wal;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Seconds any one `eo run` in these tests may wait for its workload.
const RUN_TIMEOUT_S: &str = "120";

fn eo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eo"))
        .args(args)
        .output()
        .expect("eo runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `eo run ARGS --json --quiet --timeout …`, asserts exit 0 and returns the
/// summary.
fn run_ok(args: &[&str]) -> Value {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "--quiet", "--timeout", RUN_TIMEOUT_S]);
    let out = eo(&all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(summary["verdict"]["violations"], Value::Array(vec![]));
    assert_eq!(summary["timed_out"], Value::Bool(false));
    summary
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

#[test]
fn ack_retry_survives_sigkill_with_nothing_lost_or_duplicated() {
    let s = run_ok(&[
        "ack-retry",
        "--messages",
        "4000",
        "--senders",
        "2",
        "--kill-every",
        "100",
        "--seed",
        "11",
    ]);
    assert_eq!(num(&s["items"]), 4000.0);
    assert!(num(&s["kills"]) >= 1.0, "{s}");
    assert!(num(&s["verdict"]["checked"]) >= 4000.0, "{s}");
    assert_eq!(s["verdict"]["bank_exact"], Value::Bool(true));
    assert_eq!(s["data_kept"], Value::Bool(false), "temporary dir deleted");
}

#[test]
fn ack_retry_survives_lost_disks() {
    let s = run_ok(&[
        "ack-retry",
        "--messages",
        "4000",
        "--senders",
        "2",
        "--wipe-disk-every",
        "100",
        "--kill-every",
        "150",
        // Delayed and duplicated frames of a lost life arrive after its successor
        // started: zombies the receiver must fence.
        "--delay",
        "30",
        "--dup",
        "0.1",
        "--seed",
        "12",
    ]);
    assert!(num(&s["wipes"]) >= 1.0, "{s}");
}

#[test]
fn ack_retry_over_a_dropping_duplicating_delaying_transport() {
    let s = run_ok(&[
        "ack-retry",
        "--messages",
        "1500",
        "--drop",
        "0.1",
        "--dup",
        "0.1",
        "--delay",
        "5",
        "--seed",
        "13",
    ]);
    let proxy = &s["proxy"];
    assert!(num(&proxy["dropped"]) > 0.0, "{s}");
    assert!(num(&proxy["duplicated"]) > 0.0, "{s}");
    assert!(num(&proxy["delayed"]) > 0.0, "{s}");
    assert!(
        num(&s["retransmissions"]) > 0.0,
        "drops are retransmitted: {s}"
    );
    assert!(num(&s["duplicates_suppressed"]) > 0.0, "{s}");
}

#[test]
fn two_phase_commit_survives_sigkill_atomic_and_conserving() {
    let s = run_ok(&[
        "two-phase-commit",
        "--transactions",
        "1500",
        "--participants",
        "3",
        "--clients",
        "2",
        "--kill-every",
        "100",
        "--seed",
        "21",
    ]);
    assert!(num(&s["kills"]) >= 1.0, "{s}");
    assert!(num(&s["verdict"]["checked"]) >= 1500.0, "{s}");
}

#[test]
fn two_phase_commit_over_a_faulty_transport() {
    let s = run_ok(&[
        "two-phase-commit",
        "--transactions",
        "500",
        "--drop",
        "0.05",
        "--dup",
        "0.05",
        "--delay",
        "5",
        "--kill-every",
        "200",
        "--seed",
        "22",
    ]);
    assert!(num(&s["proxy"]["dropped"]) > 0.0, "{s}");
}

/// Appends `record` to the log in `data_dir` (as a buggy node would have).
fn append<R: serde::Serialize>(data_dir: &Path, record: &R) {
    let disk = FileDisk::open(store::wal_dir(data_dir)).unwrap();
    let (mut wal, _) = Wal::open(disk).unwrap();
    wal.append_record(record).unwrap();
    wal.sync().unwrap();
}

fn verify(dir: &Path) -> Output {
    eo(&["run", "verify", dir.to_str().unwrap()])
}

#[test]
fn the_verifier_names_a_message_applied_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    run_ok(&[
        "ack-retry",
        "--messages",
        "500",
        "--seed",
        "31",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    let again = verify(&dir);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    // Plant the bug: the receiver applies one message a second time.
    let receiver = dir.join("receiver-1");
    let Stored::Receiver(records) = store::open(&receiver, RoleKind::Receiver).unwrap().records
    else {
        panic!("a receiver log")
    };
    let last = records
        .iter()
        .rev()
        .find(|r| matches!(r, ReceiverRecord::Applied { .. }))
        .expect("an applied message")
        .clone();
    append(&receiver, &last);
    let out = verify(&dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("eo: violation: applied-twice"), "{stderr}");
}

#[test]
fn the_verifier_names_a_transaction_committed_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    run_ok(&[
        "two-phase-commit",
        "--transactions",
        "300",
        "--seed",
        "32",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    let participant = dir.join("participant-2");
    let Stored::Participant(records) = store::open(&participant, RoleKind::Participant)
        .unwrap()
        .records
    else {
        panic!("a participant log")
    };
    let committed = records
        .iter()
        .rev()
        .find(|r| matches!(r, ParticipantRecord::Committed { .. }))
        .expect("a committed transaction")
        .clone();
    append(&participant, &NodeRecord::Participant(committed));
    let out = verify(&dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("eo: violation: applied-twice"), "{stderr}");
    assert!(
        stderr.contains("eo: violation: money-conserved"),
        "{stderr}"
    );
}

#[test]
fn a_run_that_cannot_finish_in_time_fails_and_keeps_its_data() {
    let out = eo(&[
        "run",
        "ack-retry",
        "--messages",
        "100000000",
        "--timeout",
        "1",
        "--quiet",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["timed_out"], Value::Bool(true));
    assert_eq!(s["data_kept"], Value::Bool(true));
    assert!(text(&out.stderr).contains("eo: timed out after 1 s"));
    let dir = s["data_dir"].as_str().unwrap();
    // Safety still holds for what was done; only the workload is incomplete.
    let incomplete = s["verdict"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v.as_str().unwrap().starts_with("incomplete"));
    assert!(incomplete, "{s}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_options_are_one_line_errors() {
    for (args, needle) in [
        (
            &["run", "two-phase-commit", "--wipe-disk-every", "100"][..],
            "--wipe-disk-every is an ack-retry flag",
        ),
        (&["run", "ack-retry", "--drop", "1.5"][..], "--drop"),
        (
            &["run", "ack-retry", "--kill-every", "1"][..],
            "--kill-every",
        ),
        (&["run", "verify", "/nonexistent/eo"][..], "cannot read"),
    ] {
        let out = eo(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_bad_manifest_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    for (manifest, needle) in [
        ("not json", "is not a run manifest"),
        (
            r#"{"protocol":"paxos","nodes":[],"items":1}"#,
            "unknown protocol",
        ),
        (
            r#"{"protocol":"ack-retry","nodes":[{"id":1,"role":"leader","peers":[],"participants":[],"workload":null}],"items":1}"#,
            "unknown role",
        ),
        (
            r#"{"protocol":"ack-retry","nodes":[{"id":2,"role":"sender","peers":[],"participants":[],"workload":18446744073709551615}],"items":1}"#,
            "workload above",
        ),
    ] {
        std::fs::write(tmp.path().join("run.json"), manifest).unwrap();
        let out = verify(tmp.path());
        assert_eq!(out.status.code(), Some(2), "{manifest}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("eo: ") && stderr.contains(needle),
            "{stderr}"
        );
    }
}
