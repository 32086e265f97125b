//! Traces with one tampered event are rejected, and the diagnosis names that
//! event and the mismatch.

use eo_conformance::validate::{validate_texts, Mismatch, ValidateError, Verdict};
use eo_impl::sim::ack_retry::{AckRetry, Config};
use eo_impl::sim::{self, FaultSpec, Options};
use serde_json::Value;

const QUIET: FaultSpec = FaultSpec {
    loss: Some(0.0),
    dup: Some(0.0),
    reorder: Some(0.0),
    crashes: Some(0),
    disk_losses: Some(0),
};

/// Each node's trace as parsed lines, receiver (node 0) first.
fn traces(seed: u64, faults: FaultSpec) -> Vec<(String, Vec<Value>)> {
    traces_of(seed, 3, faults)
}

fn traces_of(seed: u64, messages: u64, faults: FaultSpec) -> Vec<(String, Vec<Value>)> {
    let (report, traces) =
        sim::run_traced::<AckRetry>(&Config { messages }, &Options::new(seed, faults));
    assert!(report.ok(), "{}", report.replay_command());
    traces
        .into_iter()
        .map(|(node, bytes)| {
            let lines = String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            (format!("node-{node}.jsonl"), lines)
        })
        .collect()
}

fn texts(traces: &[(String, Vec<Value>)]) -> Vec<(String, String)> {
    traces
        .iter()
        .map(|(name, lines)| {
            let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
            (name.clone(), text)
        })
        .collect()
}

fn position(lines: &[Value], from: usize, test: impl Fn(&Value) -> bool) -> usize {
    from + lines[from..].iter().position(test).expect("such a line")
}

fn is(line: &Value, event: &str, needle: &str) -> bool {
    line["event"] == event && line.to_string().contains(needle)
}

/// The trace is invalid, first at `file`:`line` (from 1), for `mismatch`.
fn assert_rejected_at(
    traces: &[(String, Vec<Value>)],
    file: &str,
    line: usize,
    mismatch: Mismatch,
) {
    match validate_texts(&texts(traces)).unwrap() {
        Verdict::Valid(_) => panic!("a tampered trace validated"),
        Verdict::Invalid(d) => {
            assert_eq!(
                (d.mismatch, d.file.as_str(), d.line),
                (mismatch, file, line),
                "{d}"
            );
            assert!(!d.states.is_empty() && !d.allowed.is_empty(), "{d}");
        }
    }
}

#[test]
fn the_untampered_trace_validates() {
    let t = traces(1, QUIET);
    assert!(matches!(validate_texts(&texts(&t)), Ok(Verdict::Valid(_))));
}

#[test]
fn a_duplicated_apply_is_rejected_at_the_second_applied_record() {
    let mut t = traces(1, QUIET);
    let receiver = &mut t[0].1;
    let i = position(receiver, 0, |l| is(l, "append", "Applied"));
    let copy = receiver[i].clone();
    receiver.insert(i + 1, copy);
    assert_rejected_at(&t, "node-0.jsonl", i + 2, Mismatch::UnexpectedRecord);
}

#[test]
fn an_ack_released_before_its_record_was_durable_is_rejected_at_the_send() {
    let mut t = traces(1, QUIET);
    let receiver = &mut t[0].1;
    let append = position(receiver, 0, |l| is(l, "append", "Applied"));
    let durable = position(receiver, append, |l| l["event"] == "durable");
    let send = position(receiver, durable, |l| is(l, "send", "Ack"));
    // The sync returns only after the ack left: the `durable` line moves after
    // the `send`, the stamps stay in file order.
    let stamps: Vec<Value> = receiver[durable..=send]
        .iter()
        .map(|l| l["lamport"].clone())
        .collect();
    receiver[durable..=send].rotate_left(1);
    for (l, stamp) in receiver[durable..=send].iter_mut().zip(stamps) {
        l["lamport"] = stamp;
    }
    assert_rejected_at(&t, "node-0.jsonl", send, Mismatch::SendBeforeDurable);
}

#[test]
fn a_line_of_a_dead_life_after_a_restart_is_rejected_as_a_zombie() {
    // A seed whose receiver restarts: its trace has two `start` lines.
    let faults = FaultSpec {
        crashes: Some(3),
        ..QUIET
    };
    let (seed, mut t) = (0..500)
        .map(|seed| (seed, traces(seed, faults)))
        .find(|(_, t)| t[0].1.iter().filter(|l| l["event"] == "start").count() >= 2)
        .expect("a seed that restarts the receiver");
    let receiver = &mut t[0].1;
    let restart = position(receiver, 1, |l| l["event"] == "start");
    let mut zombie = receiver[restart - 1].clone();
    zombie["event"] = "timeout".into();
    zombie["lamport"] = (receiver[restart]["lamport"].as_u64().unwrap() + 1).into();
    let old_life = receiver[0]["incarnation"].clone();
    zombie["incarnation"] = old_life;
    // Keep the file's stamps increasing after the inserted line.
    for l in receiver[restart + 1..].iter_mut() {
        l["lamport"] = (l["lamport"].as_u64().unwrap() + 1).into();
    }
    receiver.insert(restart + 1, zombie);
    let _ = seed;
    assert_rejected_at(&t, "node-0.jsonl", restart + 2, Mismatch::ZombieLife);
}

#[test]
fn a_message_nobody_sent_is_rejected_at_its_receipt() {
    let mut t = traces(1, QUIET);
    let receiver = &mut t[0].1;
    let i = position(receiver, 0, |l| is(l, "recv", "Data"));
    receiver[i]["msg"]["Data"]["seq"] = 7u64.into();
    assert_rejected_at(&t, "node-0.jsonl", i + 1, Mismatch::ReceivedUnsent);
}

#[test]
fn a_malformed_line_is_an_error_naming_file_and_line() {
    let t = traces(1, QUIET);
    let mut inputs = texts(&t);
    inputs[0].1 = inputs[0]
        .1
        .replacen("\"event\":\"recv\"", "\"event\":42", 1);
    match validate_texts(&inputs) {
        Err(ValidateError::Malformed { file, .. }) => assert_eq!(file, "node-0.jsonl"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn more_messages_than_the_model_holds_is_outside_its_bounds() {
    let (report, traces) =
        sim::run_traced::<AckRetry>(&Config { messages: 20 }, &Options::new(1, QUIET));
    assert!(report.ok());
    let inputs: Vec<(String, String)> = traces
        .into_iter()
        .map(|(n, b)| (n.to_string(), String::from_utf8(b).unwrap()))
        .collect();
    match validate_texts(&inputs) {
        Err(ValidateError::Outside(o)) => assert_eq!(o.bound, "messages per sender"),
        other => panic!("{other:?}"),
    }
}
