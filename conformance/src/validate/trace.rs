//! Reading JSON-lines traces (format of `eo_impl::runtime::trace`) and merging
//! them by Lamport time.

use super::ValidateError;
use eo_impl::NodeId;
use serde_json::Value;

/// Trace lines beyond this many, summed over all files, are refused before they
/// are read further: a trace the validator keeps in memory.
pub const LINES_MAX: usize = 10_000_000;

/// One event of one node's trace.
#[derive(Clone, Debug)]
pub struct Line {
    /// Which file (index into the inputs) and which line of it (from 1).
    pub file: usize,
    pub line: usize,
    pub node: NodeId,
    /// The node's life (the `incarnation` field).
    pub life: u64,
    pub lamport: u64,
    pub event: Event,
    /// The line as written, for diagnoses.
    pub raw: String,
}

/// The events the validator reads; `outcome` and unknown extra fields are kept
/// only in [`Line::raw`].
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Start { lsn: u64 },
    Submit { accepted: Option<u64> },
    Recv { peer: NodeId, msg: Value },
    Timeout,
    Append { lsn: u64, records: Vec<Value> },
    Durable { lsn: u64 },
    Compact { lsn: u64 },
    Send { peer: NodeId, msg: Value },
    Outcome,
    DiskLost,
    Stop,
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Start { .. } => "start",
            Event::Submit { .. } => "submit",
            Event::Recv { .. } => "recv",
            Event::Timeout => "timeout",
            Event::Append { .. } => "append",
            Event::Durable { .. } => "durable",
            Event::Compact { .. } => "compact",
            Event::Send { .. } => "send",
            Event::Outcome => "outcome",
            Event::DiskLost => "disk_lost",
            Event::Stop => "stop",
        }
    }
}

fn field_u64(value: &Value, name: &str) -> Result<u64, String> {
    value
        .get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("field `{name}` missing or not an unsigned integer"))
}

fn field_node(value: &Value, name: &str) -> Result<NodeId, String> {
    let n = field_u64(value, name)?;
    NodeId::try_from(n).map_err(|_| format!("field `{name}` = {n} is not a node id"))
}

fn parse_event(value: &Value) -> Result<Event, String> {
    let name = value
        .get("event")
        .and_then(Value::as_str)
        .ok_or("field `event` missing")?;
    Ok(match name {
        "start" => Event::Start {
            lsn: value.get("lsn").and_then(Value::as_u64).unwrap_or(0),
        },
        "submit" => Event::Submit {
            accepted: value
                .get("result")
                .and_then(|r| r.get("Ok"))
                .and_then(Value::as_u64),
        },
        "recv" => Event::Recv {
            peer: field_node(value, "peer")?,
            msg: value.get("msg").cloned().ok_or("field `msg` missing")?,
        },
        "timeout" => Event::Timeout,
        "append" => Event::Append {
            lsn: field_u64(value, "lsn")?,
            records: value
                .get("records")
                .and_then(Value::as_array)
                .cloned()
                .ok_or("field `records` missing or not an array")?,
        },
        "durable" => Event::Durable {
            lsn: field_u64(value, "lsn")?,
        },
        "compact" => Event::Compact {
            lsn: field_u64(value, "lsn")?,
        },
        "send" => Event::Send {
            peer: field_node(value, "peer")?,
            msg: value.get("msg").cloned().ok_or("field `msg` missing")?,
        },
        "outcome" => Event::Outcome,
        "disk_lost" => Event::DiskLost,
        "stop" => Event::Stop,
        other => return Err(format!("unknown event `{other}`")),
    })
}

/// Parses one file's text. A line that does not parse is an error, except the
/// last line of a life (followed by a `start` or the end of the file), which a
/// killed node may have left half-written: it is skipped.
pub fn parse(
    file: usize,
    name: &str,
    text: &str,
    out: &mut Vec<Line>,
) -> Result<(), ValidateError> {
    let lines: Vec<&str> = text.lines().collect();
    for (i, raw) in lines.iter().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        if out.len() >= LINES_MAX {
            return Err(ValidateError::TooLong { limit: LINES_MAX });
        }
        let malformed = |reason: String| ValidateError::Malformed {
            file: name.to_owned(),
            line: i + 1,
            reason,
        };
        let value: Value = match serde_json::from_str(raw) {
            Ok(value) => value,
            Err(error) => {
                let next_starts = lines[i + 1..]
                    .iter()
                    .find(|l| !l.trim().is_empty())
                    .is_none_or(|l| l.contains("\"event\":\"start\""));
                if next_starts && !raw.ends_with('}') {
                    continue; // torn by a kill
                }
                return Err(malformed(error.to_string()));
            }
        };
        let version = field_u64(&value, "v").map_err(&malformed)?;
        if version != eo_impl::runtime::trace::FORMAT_VERSION {
            return Err(malformed(format!(
                "format version {version}, this validator reads {}",
                eo_impl::runtime::trace::FORMAT_VERSION
            )));
        }
        out.push(Line {
            file,
            line: i + 1,
            node: field_node(&value, "node").map_err(&malformed)?,
            life: field_u64(&value, "incarnation").map_err(&malformed)?,
            lamport: field_u64(&value, "lamport").map_err(&malformed)?,
            event: parse_event(&value).map_err(&malformed)?,
            raw: (*raw).to_owned(),
        });
    }
    Ok(())
}

/// Merges by `(lamport, node)`, each node's lines staying in file order.
pub fn merge(lines: &mut [Line]) {
    lines.sort_by_key(|l| (l.lamport, l.node, l.file, l.line));
}
