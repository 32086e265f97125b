//! The protocol trace of one node: a Lamport clock, and (with `--trace FILE`) one
//! JSON line per protocol event, mergeable with the traces of the other nodes.
//!
//! Every line carries the node id, the node's incarnation (see
//! [`super::node::Node::incarnation`]) and a Lamport timestamp. The clock ticks
//! once per event; a received message sets it to `max(local, stamp on the wire) +
//! 1`; a sent message carries the clock after its `send` line. Sorting the merged
//! lines of all nodes by `(lamport, node)` therefore gives an order in which every
//! `send` comes before the `recv` of the same message.
//!
//! ```text
//! {"node":2,"incarnation":1764441600123456,"lamport":7,"event":"recv","peer":1,"stamp":6,"msg":"Data { .. }"}
//! ```
//!
//! `event` is one of `start` (the core was built; `records` recovered), `recv`,
//! `timeout`, `submit`, `send`, `outcome`, `stop`. Lines of the events that cause a
//! message are written, and the buffer flushed to the file, before the message is
//! handed to the transport: a trace never misses the cause of a message that left.
//! A write error disables the trace with one logged error; the node goes on.

use crate::core::NodeId;
use serde_json::json;
use std::fmt::Debug;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// A Lamport timestamp.
pub type Lamport = u64;

/// The trace of one node: its Lamport clock and, optionally, its JSON-lines file.
#[derive(Debug)]
pub struct Tracer {
    node: NodeId,
    incarnation: u64,
    clock: Lamport,
    out: Option<BufWriter<File>>,
}

impl Tracer {
    /// A tracer that only keeps the clock.
    pub fn clock_only(node: NodeId, incarnation: u64) -> Tracer {
        Tracer {
            node,
            incarnation,
            clock: 0,
            out: None,
        }
    }

    /// A tracer writing to `path` (appending: a restarted node continues the file
    /// with its new incarnation).
    pub fn to_file(node: NodeId, incarnation: u64, path: &Path) -> std::io::Result<Tracer> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(Tracer {
            out: Some(BufWriter::new(file)),
            ..Tracer::clock_only(node, incarnation)
        })
    }

    /// The current Lamport time.
    pub fn clock(&self) -> Lamport {
        self.clock
    }

    fn write(&mut self, event: &str, fields: serde_json::Value) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let mut line = json!({
            "node": self.node,
            "incarnation": self.incarnation,
            "lamport": self.clock,
            "event": event,
        });
        if let (Some(line), serde_json::Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
        let result = serde_json::to_writer(&mut *out, &line)
            .and_then(|()| out.write_all(b"\n").map_err(serde_json::Error::io));
        if let Err(error) = result {
            tracing::error!(node = self.node, %error, "cannot write the trace; tracing stops");
            self.out = None;
        }
    }

    /// A local event (`start`, `timeout`, `submit`, `stop`).
    pub fn local(&mut self, event: &str, fields: serde_json::Value) {
        self.clock += 1;
        self.write(event, fields);
    }

    /// A message from `peer` stamped `stamp` is handled.
    pub fn recv(&mut self, peer: NodeId, stamp: Lamport, msg: &impl Debug) {
        self.clock = self.clock.max(stamp) + 1;
        self.write(
            "recv",
            json!({"peer": peer, "stamp": stamp, "msg": format!("{msg:?}")}),
        );
    }

    /// A message to `peer` is about to leave; returns the stamp it carries.
    #[must_use = "the stamp goes on the wire"]
    pub fn send(&mut self, peer: NodeId, msg: &impl Debug) -> Lamport {
        self.clock += 1;
        self.write("send", json!({"peer": peer, "msg": format!("{msg:?}")}));
        self.clock
    }

    /// An outcome is handed to the application.
    pub fn outcome(&mut self, outcome: &impl Debug) {
        self.clock += 1;
        self.write("outcome", json!({"outcome": format!("{outcome:?}")}));
    }

    /// Pushes the buffered lines to the file: call before handing messages to the
    /// transport.
    pub fn flush(&mut self) {
        if let Some(out) = self.out.as_mut() {
            if let Err(error) = out.flush() {
                tracing::error!(node = self.node, %error, "cannot write the trace; tracing stops");
                self.out = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_node_incarnation_and_a_lamport_clock() {
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
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["event"], "send");
        assert_eq!(lines[1]["lamport"], 2);
        assert_eq!(lines[2]["lamport"], 3);
        assert!(lines
            .iter()
            .all(|l| l["node"] == 1 && l["incarnation"] == 10));
    }
}
