//! The protocol trace of one node: a Lamport clock, and (with `--trace FILE`, or
//! in memory for the simulator) one JSON line per protocol event, mergeable with
//! the traces of the other nodes and checked against the models by `eo validate`.
//!
//! ## Format, version [`FORMAT_VERSION`]
//!
//! Every line is one JSON object with the fields `v` (the format version), `node`,
//! `incarnation` (a life of the node between two starts), `lamport` and `event`,
//! plus the fields of its event:
//!
//! | `event`      | fields                         | written when |
//! |--------------|--------------------------------|--------------|
//! | `start`      | `role`, `records`, `lsn`       | the core was built from `records` recovered records; `lsn` is the log's last position after recovery (0: empty log) |
//! | `submit`     | `transfer` or `legs`, `result` | the application's command was handed to the core; `result` is `{"Ok": n}` or `{"Err": "…"}` |
//! | `recv`       | `peer`, `stamp`, `msg`         | a message is handed to the core (`msg` is the serde JSON of the protocol's `Msg`) |
//! | `timeout`    | —                              | the core's timer fired |
//! | `append`     | `lsn`, `records`               | records were appended (not yet durable); `lsn` is the position of the last one; `records` their serde JSON |
//! | `durable`    | `lsn`                          | every record up to `lsn` is durable (a sync returned) |
//! | `compact`    | `lsn`                          | the log was compacted to a snapshot at `lsn` (durable) |
//! | `send`       | `peer`, `msg`                  | a message was released to the transport |
//! | `outcome`    | `outcome`                      | an event was handed to the application (a `Debug` string) |
//! | `disk_lost`  | —                              | the node's disk was replaced by an empty one: by the simulator, or (a real node) the log directory is gone while the trace file holds earlier lives (`eo run --wipe-disk-every`); written before the new life's `start` |
//! | `stop`       | —                              | clean stop |
//!
//! ```text
//! {"v":1,"node":2,"incarnation":1764441600123456,"lamport":7,"event":"recv","peer":1,"stamp":6,"msg":{"Data":{"incarnation":1,"seq":1,"transfer":{"from":0,"to":1,"amount":5}}}}
//! ```
//!
//! ## Lamport time
//!
//! The clock ticks once per event; a received message sets it to `max(local,
//! stamp on the wire) + 1`; a sent message carries the clock after its `send`
//! line. Sorting the merged lines of all nodes by `(lamport, node)` therefore
//! gives an order in which every `send` comes before the `recv` of the same
//! message and every line of a node keeps its file order. A restarted node
//! appends to the same file and **resumes** the clock from the last stamp in it
//! ([`Tracer::to_file`]); restarting at 0 would let the merge put the new
//! life's re-sends before the old life's events that caused them.
//!
//! Lines of the events that cause a message are written, and the buffer flushed
//! to the file, before the message is handed to the transport: a trace never
//! misses the cause of a message that left. A write error disables the trace
//! with one logged error; the node goes on.

use crate::core::NodeId;
use serde::Serialize;
use serde_json::json;
use std::fmt::Debug;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

/// A Lamport timestamp.
pub type Lamport = u64;

/// The version written in every line's `v` field.
pub const FORMAT_VERSION: u64 = 1;

/// Where the lines go.
#[derive(Debug)]
enum Sink {
    None,
    File(BufWriter<File>),
    Memory(Vec<u8>),
}

/// The trace of one node: its Lamport clock and, optionally, its JSON lines.
#[derive(Debug)]
pub struct Tracer {
    node: NodeId,
    incarnation: u64,
    clock: Lamport,
    out: Sink,
}

impl Tracer {
    /// A tracer that only keeps the clock.
    pub fn clock_only(node: NodeId, incarnation: u64) -> Tracer {
        Tracer {
            node,
            incarnation,
            clock: 0,
            out: Sink::None,
        }
    }

    /// A tracer keeping its lines in memory ([`Tracer::take_lines`]): the
    /// simulator's.
    pub fn in_memory(node: NodeId, incarnation: u64) -> Tracer {
        Tracer {
            out: Sink::Memory(Vec::new()),
            ..Tracer::clock_only(node, incarnation)
        }
    }

    /// A tracer writing to `path`, appending: a restarted node continues the
    /// file with its new incarnation, and its clock resumes after the last
    /// stamp already in the file (see the module docs).
    pub fn to_file(node: NodeId, incarnation: u64, path: &Path) -> std::io::Result<Tracer> {
        let (clock, torn) = last_stamp(path)?;
        let mut file = File::options().create(true).append(true).open(path)?;
        if torn {
            // A killed life left half a line: end it, so the next line stands alone.
            file.write_all(b"\n")?;
        }
        Ok(Tracer {
            clock,
            out: Sink::File(BufWriter::new(file)),
            ..Tracer::clock_only(node, incarnation)
        })
    }

    /// The current Lamport time.
    pub fn clock(&self) -> Lamport {
        self.clock
    }

    /// A new life of the node (the simulator's restart); the clock goes on.
    pub fn set_incarnation(&mut self, incarnation: u64) {
        self.incarnation = incarnation;
    }

    /// The lines written so far, for an in-memory tracer (empty otherwise).
    pub fn take_lines(&mut self) -> Vec<u8> {
        match &mut self.out {
            Sink::Memory(lines) => std::mem::take(lines),
            _ => Vec::new(),
        }
    }

    /// Writes one line; `fields` is built only when there is somewhere to
    /// write it (a node without `--trace` keeps only the clock).
    fn write(&mut self, event: &str, fields: impl FnOnce() -> serde_json::Value) {
        if matches!(self.out, Sink::None) {
            return;
        }
        let fields = fields();
        let mut line = json!({
            "v": FORMAT_VERSION,
            "node": self.node,
            "incarnation": self.incarnation,
            "lamport": self.clock,
            "event": event,
        });
        if let (Some(line), serde_json::Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
        let result = match &mut self.out {
            Sink::None => return,
            Sink::Memory(out) => write_line(out, &line),
            Sink::File(out) => write_line(out, &line),
        };
        if let Err(error) = result {
            tracing::error!(node = self.node, %error, "cannot write the trace; tracing stops");
            self.out = Sink::None;
        }
    }

    /// A local event (`start`, `timeout`, `submit`, `disk_lost`, `stop`).
    pub fn local(&mut self, event: &str, fields: serde_json::Value) {
        self.clock += 1;
        self.write(event, || fields);
    }

    /// A local event whose fields cost something to build (a per-message
    /// `submit`): they are built only when the trace is written.
    pub fn local_with(&mut self, event: &str, fields: impl FnOnce() -> serde_json::Value) {
        self.clock += 1;
        self.write(event, fields);
    }

    /// A message from `peer` stamped `stamp` is handed to the core.
    pub fn recv(&mut self, peer: NodeId, stamp: Lamport, msg: &impl Serialize) {
        self.clock = self.clock.max(stamp) + 1;
        self.write(
            "recv",
            || json!({"peer": peer, "stamp": stamp, "msg": to_value(msg)}),
        );
    }

    /// A message to `peer` is about to leave; returns the stamp it carries.
    #[must_use = "the stamp goes on the wire"]
    pub fn send(&mut self, peer: NodeId, msg: &impl Serialize) -> Lamport {
        self.clock += 1;
        self.write("send", || json!({"peer": peer, "msg": to_value(msg)}));
        self.clock
    }

    /// `records` were appended to the log; the last one is at `lsn`.
    pub fn append<R: Serialize>(&mut self, lsn: u64, records: &[R]) {
        if records.is_empty() {
            return;
        }
        self.clock += 1;
        self.write("append", || {
            let records: Vec<serde_json::Value> = records.iter().map(to_value).collect();
            json!({"lsn": lsn, "records": records})
        });
    }

    /// Every record up to `lsn` is durable.
    pub fn durable(&mut self, lsn: u64) {
        self.clock += 1;
        self.write("durable", || json!({"lsn": lsn}));
    }

    /// An outcome is handed to the application.
    pub fn outcome(&mut self, outcome: &impl Debug) {
        self.clock += 1;
        self.write("outcome", || json!({"outcome": format!("{outcome:?}")}));
    }

    /// Pushes the buffered lines to the file: call before handing messages to the
    /// transport.
    pub fn flush(&mut self) {
        if let Sink::File(out) = &mut self.out {
            if let Err(error) = out.flush() {
                tracing::error!(node = self.node, %error, "cannot write the trace; tracing stops");
                self.out = Sink::None;
            }
        }
    }
}

fn to_value(value: &impl Serialize) -> serde_json::Value {
    // Serialising a protocol message or record to a JSON value cannot fail: they
    // are plain enums and structs with string-free keys.
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn write_line(out: &mut impl Write, line: &serde_json::Value) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

/// The highest `lamport` stamp in an existing trace file (0 if there is none),
/// and whether the file ends in the middle of a line. A line that does not
/// parse (a torn last line of a killed node) is skipped.
fn last_stamp(path: &Path) -> std::io::Result<(Lamport, bool)> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok((0, false)),
        Err(error) => return Err(error),
    };
    let mut highest = 0;
    let mut torn = false;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        torn = line.last() != Some(&b'\n');
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&line) {
            if let Some(stamp) = value.get("lamport").and_then(serde_json::Value::as_u64) {
                highest = highest.max(stamp);
            }
        }
    }
    Ok((highest, torn))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_carry_version_node_incarnation_and_a_lamport_clock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let mut a = Tracer::to_file(1, 10, &path).unwrap();
        a.local("start", json!({"records": 0}));
        let stamp = a.send(2, &"hello");
        let mut b = Tracer::clock_only(2, 20);
        b.local("start", json!({}));
        b.recv(1, stamp + 5, &"hello");
        assert_eq!(b.clock(), stamp + 6, "max(local, stamp) + 1");
        a.recv(2, 0, &"ack");
        a.flush();
        let lines = lines(&path);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["event"], "send");
        assert_eq!(lines[1]["msg"], "hello", "structured, not a Debug string");
        assert_eq!(lines[1]["lamport"], 2);
        assert_eq!(lines[2]["lamport"], 3);
        assert!(lines
            .iter()
            .all(|l| l["node"] == 1 && l["incarnation"] == 10 && l["v"] == FORMAT_VERSION));
    }

    /// The regression test of the restart bug: a restarted node's clock started
    /// at 0 while its file was appended to, so a merge by `(lamport, node)` put
    /// the new life's first send before the old life's events.
    #[test]
    fn a_restarted_node_resumes_its_clock_after_the_last_stamp_in_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let mut first = Tracer::to_file(1, 10, &path).unwrap();
        for _ in 0..5 {
            first.local("timeout", json!({}));
        }
        first.flush();
        drop(first);
        let mut second = Tracer::to_file(1, 11, &path).unwrap();
        assert_eq!(second.clock(), 5);
        second.local("start", json!({}));
        let stamp = second.send(2, &"again");
        second.flush();
        let lines = lines(&path);
        let old_last = lines[4]["lamport"].as_u64().unwrap();
        assert!(
            stamp > old_last,
            "the new life's send ({stamp}) must follow the old life's last event ({old_last})"
        );
    }

    #[test]
    fn a_torn_last_line_does_not_stop_the_clock_from_resuming() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, "{\"lamport\":9}\n{\"lamport\":12,\"ev").unwrap();
        let mut tracer = Tracer::to_file(1, 10, &path).unwrap();
        assert_eq!(tracer.clock(), 9);
        tracer.local("start", json!({}));
        tracer.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(
            last["lamport"], 10,
            "the new line stands alone after the torn one"
        );
    }
}
