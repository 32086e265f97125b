//! A refinement check as one more line of an `eo check impl-*` report: the
//! property `refinement`, with its counts, or its failing step and diff.

use crate::refinement::check::{Outcome, RefinementError};
use eo_models::check::{PropertyReport, Status};

/// The name of the refinement line in a report.
pub const NAME: &str = "refinement";

/// `outcome` as a report line: holds with its counts, or violated with the
/// implementation's path as the counterexample and the diagnosis as the note.
pub fn property_report(outcome: &Result<Outcome, RefinementError>) -> PropertyReport {
    let mut report = PropertyReport {
        name: NAME,
        expectation: "always",
        status: Status::Holds,
        counterexample: None,
        example: None,
        final_state: None,
        explorer_path: None,
        note: None,
    };
    match outcome {
        Err(e) => {
            report.status = Status::NotChecked;
            report.note = Some(e.to_string());
        }
        Ok(Outcome::Refines(s)) => {
            let mut note = format!(
                "{} transitions, each a model step or a stutter ({} model steps, {} stutters",
                s.transitions, s.steps, s.stutters
            );
            if s.compound > 0 {
                note += &format!(", {} a model step and its follow-up", s.compound);
            }
            if s.settled_crashes > 0 {
                note += &format!(
                    ", {} a crash the model leaves out of settled states",
                    s.settled_crashes
                );
            }
            note += &format!(
                "); {} implementation states, {:.1} s",
                s.states,
                s.elapsed_ms as f64 / 1000.0
            );
            report.note = Some(note);
        }
        Ok(Outcome::Fails(s, f)) => {
            report.status = Status::Violated;
            report.counterexample = Some(f.path.clone());
            let mut lines = vec![format!(
                "step {} ({}) is neither a model step nor a stutter (after {} transitions that were)",
                f.path.len(),
                f.action,
                s.transitions.saturating_sub(1)
            )];
            if let Some(e) = &f.error {
                lines.push(format!("the state after it has no model counterpart: {e}"));
            }
            lines.push("abstract state before it:".into());
            lines.extend(f.before.iter().map(|l| format!("  {l}")));
            if let Some(n) = &f.nearest {
                lines.push(format!("nearest model step: {n}"));
            }
            if !f.diff.is_empty() {
                lines.push("differences (expected: the model's successor; actual: the abstraction of the implementation's):".into());
                lines.extend(f.diff.0.iter().map(|d| {
                    format!(
                        "  {}: expected {}, actual {}",
                        d.field, d.expected, d.actual
                    )
                }));
            }
            report.note = Some(lines.join("\n      "));
        }
    }
    report
}
