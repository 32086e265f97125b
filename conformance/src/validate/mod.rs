//! From the implementation to the model: trace validation (`eo validate`).
//!
//! The inputs are JSON-lines traces in the format of
//! [`eo_impl::runtime::trace`], one per node, written by real `eo node`
//! processes (`--trace FILE`) or by the simulator ([`eo_impl::sim::run_traced`]).
//! They are merged by `(lamport, node)` ([`trace::merge`]) and replayed event by
//! event against the model's own actors ([`ack_retry`]):
//!
//! - `submit` (accepted) is the model sender's `Submit` step, which must be
//!   armed and give the same seq;
//! - `recv` of a message is the model's delivery of the model message that the
//!   matching `send` stood for (a `recv` of a message never sent fails);
//! - `timeout` is the sender's `Retry` step when armed, a stutter otherwise;
//! - `append` must append exactly the records the model's steps saved, in order
//!   and of the same kind (a duplicated apply appends a record the model does
//!   not save);
//! - `send` must be a message the model produced at that node in this life,
//!   released only once every record up to the step that produced it is durable
//!   (`durable`/`compact` lines);
//! - `start` after a life without `stop` is a crash (hidden) and a recovery from
//!   the records up to the recovered `lsn`; `disk_lost` is the model's
//!   `DiskLoss` step.
//!
//! Hidden steps: a message sent and never received was dropped by the model's
//! lossy network; a crash shows only as the next `start`; the model's timers
//! fire when the trace's events need them. Each event determines its model
//! action, so the set of model states consistent with a prefix is one state
//! (up to the correspondence of the implementation's incarnations and nonces
//! with the model's, learnt from the first message that carries each).
//!
//! The first event that does not match is reported as a [`Diagnosis`]: the
//! event, every node's model state, and the actions the model allowed there.

pub mod ack_retry;
pub mod diagnosis;
pub mod trace;

pub use diagnosis::{Diagnosis, Mismatch};

use std::path::{Path, PathBuf};

/// A bound of the model that a trace exceeds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Outside {
    /// Which bound (`senders`, `messages per sender`).
    pub bound: &'static str,
    pub limit: u64,
    pub found: u64,
}

/// Why a trace could not be validated (as opposed to being invalid).
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// A trace file cannot be read.
    #[error("{path:?}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line is not a trace event of this format.
    #[error("{file}:{line}: malformed trace line: {reason}")]
    Malformed {
        file: String,
        line: usize,
        reason: String,
    },
    /// More lines than the validator keeps in memory.
    #[error("the traces hold more than {limit} lines")]
    TooLong { limit: usize },
    /// The nodes' roles cannot be told from the trace.
    #[error("cannot tell the nodes' roles: {0}")]
    Roles(String),
    /// The traces are of a protocol this validator does not check.
    #[error("{0}")]
    Unsupported(String),
    /// The trace exceeds a bound of the model.
    #[error("outside the model's bounds: {} (the trace has {}, the model at most {})", .0.bound, .0.found, .0.limit)]
    Outside(Outside),
}

/// The verdict on a set of traces.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A behaviour of the model.
    Valid(ack_retry::Stats),
    /// Not one: the first event that does not match.
    Invalid(Box<Diagnosis>),
}

/// Validates traces given as `(name, text)`.
pub fn validate_texts(inputs: &[(String, String)]) -> Result<Verdict, ValidateError> {
    let mut lines = Vec::new();
    for (i, (name, text)) in inputs.iter().enumerate() {
        trace::parse(i, name, text, &mut lines)?;
    }
    trace::merge(&mut lines);
    if lines.is_empty() {
        return Ok(Verdict::Valid(ack_retry::Stats::default()));
    }
    if !ack_retry::is_ack_retry(&lines) {
        return Err(ValidateError::Unsupported(
            "only ack-retry traces are validated; these hold no ack-retry message or record"
                .to_owned(),
        ));
    }
    let names: Vec<String> = inputs.iter().map(|(n, _)| n.clone()).collect();
    let mut checker = ack_retry::Checker::new(&lines, &names)?;
    for (index, line) in lines.iter().enumerate() {
        if let Err(diagnosis) = checker.step(index, line) {
            if let Some(outside) = checker.outside.take() {
                return Err(ValidateError::Outside(outside));
            }
            return Ok(Verdict::Invalid(diagnosis));
        }
    }
    checker.stats.events = lines.len();
    Ok(Verdict::Valid(checker.stats))
}

/// Validates trace files.
pub fn validate_files(paths: &[impl AsRef<Path>]) -> Result<Verdict, ValidateError> {
    let mut inputs = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ValidateError::Read {
            path: path.to_owned(),
            source,
        })?;
        inputs.push((path.display().to_string(), text));
    }
    validate_texts(&inputs)
}
