//! What `eo validate` says about a trace that is not a behaviour of the model.

use serde::Serialize;
use std::fmt;

/// Why an event does not match the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mismatch {
    /// A record the model's step does not save (for example a second `Applied`
    /// of one message: a duplicated apply), or a record of another kind.
    UnexpectedRecord,
    /// A message the model does not send at this point.
    UnexpectedSend,
    /// A message released before the record of the step that produced it was
    /// durable (`ack-before-persist`).
    SendBeforeDurable,
    /// A message received that no node sent.
    ReceivedUnsent,
    /// A submission the model's sender does not accept here.
    UnexpectedSubmit,
    /// A restart that lost a record the trace said was durable.
    DurableRecordLost,
    /// A line of a node's earlier life after a later life started (a zombie).
    ZombieLife,
    /// An event of a node that is down.
    EventWhileDown,
}

impl Mismatch {
    pub fn name(self) -> &'static str {
        match self {
            Mismatch::UnexpectedRecord => "unexpected-record",
            Mismatch::UnexpectedSend => "unexpected-send",
            Mismatch::SendBeforeDurable => "send-before-durable",
            Mismatch::ReceivedUnsent => "received-unsent",
            Mismatch::UnexpectedSubmit => "unexpected-submit",
            Mismatch::DurableRecordLost => "durable-record-lost",
            Mismatch::ZombieLife => "zombie-life",
            Mismatch::EventWhileDown => "event-while-down",
        }
    }
}

/// The first event that does not match, with the model's state there and what
/// the model allowed instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    pub mismatch: Mismatch,
    /// What is wrong, in one sentence.
    pub detail: String,
    /// The file and line (from 1) of the event.
    pub file: String,
    pub line: usize,
    /// The event's position in the merged trace (from 1).
    pub index: usize,
    /// The event as written.
    pub event: String,
    /// The model's state at that point, one line per node.
    pub states: Vec<String>,
    /// The model actions allowed there.
    pub allowed: Vec<String>,
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid: {} at {}:{} (event {} of the merged trace): {}",
            self.mismatch.name(),
            self.file,
            self.line,
            self.index,
            self.detail
        )?;
        writeln!(f, "  event: {}", self.event)?;
        writeln!(f, "  model state there:")?;
        for state in &self.states {
            writeln!(f, "    {state}")?;
        }
        writeln!(f, "  the model allowed:")?;
        if self.allowed.is_empty() {
            writeln!(f, "    (nothing)")?;
        }
        for action in &self.allowed {
            writeln!(f, "    {action}")?;
        }
        Ok(())
    }
}
