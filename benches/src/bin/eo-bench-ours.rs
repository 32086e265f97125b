//! Our rows of the peer table (`benches/peers/run.sh`): the same rigs as the
//! criterion benchmarks, run once each for a fixed message count, beside the
//! disk's limits measured in the same run.
//!
//! ```text
//! eo-bench-ours MESSAGES SENDERS WINDOW
//! ```
//!
//! Prints one line per row: `ROW <name> <messages/s> <p50 us> <p99 us> <note>`.

use eo_benches::ack_retry::{Mode, Rig};
use eo_benches::limits::{rate, raw_batched, raw_record_len, raw_single};
use eo_benches::place::{Durability, RunDir};
use std::process::ExitCode;

/// Payload bytes of the limit rows (about an ack-retry record).
const RECORD_PAYLOAD_LEN: usize = 40;
/// Records of the one-sync-per-record limit.
const SINGLE_RECORDS: u64 = 500;

fn arg(n: usize, default: u64) -> Result<u64, String> {
    match std::env::args().nth(n) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| format!("argument {n} ({s}) is not a whole number")),
    }
}

fn run() -> Result<(), String> {
    let messages = arg(1, 20_000)?;
    let senders = arg(2, 1)? as usize;
    let window = arg(3, 64)?;
    let mut batch = 1.0;
    for mode in Mode::ALL {
        let mut rig = Rig::start(mode, senders).map_err(|e| e.to_string())?;
        let result = rig.run(messages, window).map_err(|e| e.to_string())?;
        let (syncs, records) = rig.syncs_and_records();
        rig.stop().map_err(|e| e.to_string())?;
        let per_sync = records as f64 / syncs.max(1) as f64;
        if mode == Mode::ExactlyOnce {
            batch = per_sync;
        }
        let s = result.latencies.summary().ok_or("no latencies")?;
        println!(
            "ROW {} {:.0} {} {} {:.1}-records-per-sync",
            mode.name(),
            rate(result.delivered, result.elapsed),
            s.p50_us,
            s.p99_us,
            per_sync
        );
    }
    let dir = RunDir::new("ours-limit", Durability::Disk).map_err(|e| e.to_string())?;
    let len = raw_record_len(RECORD_PAYLOAD_LEN);
    let b = batch.round().max(1.0) as u64;
    let records = messages.max(b);
    let t = raw_batched(dir.path(), len, b, records).map_err(|e| e.to_string())?;
    println!(
        "ROW raw-batched-write-{b} {:.0} - - limit-at-the-same-batch",
        rate(records, t)
    );
    let t = raw_single(dir.path(), len, SINGLE_RECORDS).map_err(|e| e.to_string())?;
    println!(
        "ROW raw-fdatasync-per-record {:.0} - - one-sync-per-record",
        rate(SINGLE_RECORDS, t)
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eo-bench-ours: {e}");
            ExitCode::FAILURE
        }
    }
}
