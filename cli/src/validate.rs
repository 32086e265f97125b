//! `eo validate TRACE... [--json]`: JSON-lines traces checked to be a behaviour
//! of the model (see `eo_conformance::validate`).
//!
//! Exit status: 0 the traces are a behaviour of the model, 1 they are not (the
//! first event that does not match, the model's state there and the actions it
//! allowed are printed), 2 a file cannot be read or is malformed, or the traces
//! exceed the model's bounds (a one-line `eo:` error naming the bound).

use crate::UsageError;
use clap::Args;
use eo_conformance::validate::{validate_files, Verdict};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args, Clone, Debug)]
pub struct ValidateArgs {
    /// Trace files (one per node, as written by `eo node --trace` or `eo sim --trace`).
    #[arg(required = true, value_name = "TRACE")]
    traces: Vec<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &ValidateArgs) -> Result<ExitCode, UsageError> {
    let started = Instant::now();
    let verdict = validate_files(&args.traces).map_err(|e| UsageError(e.to_string()))?;
    let seconds = started.elapsed().as_secs_f64();
    match verdict {
        Verdict::Valid(stats) => {
            if args.json {
                println!(
                    "{}",
                    json!({"valid": true, "stats": stats, "seconds": seconds})
                );
            } else {
                println!(
                    "valid: {} events of {} nodes are a behaviour of the ack-retry model \
                     ({} model steps, {} hidden, {} stutters; {} crashes, {} disk losses) in {:.3}s",
                    stats.events,
                    stats.nodes,
                    stats.model_steps,
                    stats.hidden,
                    stats.stutters,
                    stats.crashes,
                    stats.disk_losses,
                    seconds
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Invalid(diagnosis) => {
            if args.json {
                println!("{}", json!({"valid": false, "diagnosis": diagnosis}));
            } else {
                print!("{diagnosis}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
