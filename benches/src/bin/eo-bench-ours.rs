//! Our rows of the peer table (`benches/peers/run.sh`): the same rigs as the
//! criterion benchmarks, run once each for a fixed message count, beside the
//! disk's limits measured in the same run.
//!
//! ```text
//! eo-bench-ours MESSAGES SENDERS WINDOW
//! ```
//!
//! The disk's speed drifts on a shared machine, so the modes run in [`ROUNDS`]
//! rounds, alternating their order, and each row is the median round's rate
//! (latency percentiles are over all rounds' messages).
//!
//! Prints one line per row: `ROW <name> <messages/s> <p50 us> <p99 us> <note>`.

use eo_benches::ack_retry::{Mode, Rig};
use eo_benches::latency::Latencies;
use eo_benches::limits::{rate, raw_batched, raw_record_len, raw_single};
use eo_benches::place::{Durability, RunDir};
use std::process::ExitCode;

/// Payload bytes of the limit rows (about an ack-retry record).
const RECORD_PAYLOAD_LEN: usize = 40;
/// Rounds of the mode comparison.
const ROUNDS: usize = 3;
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
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); Mode::ALL.len()];
    let mut all: Vec<Latencies> = vec![Latencies::default(); Mode::ALL.len()];
    let mut per_sync: Vec<Vec<f64>> = vec![Vec::new(); Mode::ALL.len()];
    for round in 0..ROUNDS {
        let mut order: Vec<usize> = (0..Mode::ALL.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let mode = Mode::ALL[i];
            let mut rig = Rig::start(mode, senders).map_err(|e| e.to_string())?;
            let result = rig.run(messages, window).map_err(|e| e.to_string())?;
            let (syncs, records) = rig.syncs_and_records();
            rig.stop().map_err(|e| e.to_string())?;
            per_sync[i].push(records as f64 / syncs.max(1) as f64);
            rates[i].push(rate(result.delivered, result.elapsed));
            all[i].extend(&result.latencies);
            eprintln!(
                "round {round} {}: {:.0} messages/s",
                mode.name(),
                rates[i].last().unwrap_or(&0.0)
            );
        }
    }
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    for (i, mode) in Mode::ALL.iter().enumerate() {
        let s = all[i].summary().ok_or("no latencies")?;
        println!(
            "ROW {} {:.0} {} {} {:.1}-records-per-sync",
            mode.name(),
            median(&rates[i]),
            s.p50_us,
            s.p99_us,
            median(&per_sync[i])
        );
    }
    let batch = median(&per_sync[0]);
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
