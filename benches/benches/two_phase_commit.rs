//! Two-phase commit over loopback TCP with the logs syncing: commits/s against
//! 1, 3 and 5 participants, with 64 concurrent transactions sharing syncs, and
//! one at a time; beside the disk's `fdatasync` rate measured in the same run.
//!
//! ```text
//! cargo bench -p eo-benches --bench two_phase_commit [-- --quick]
//! ```
//!
//! Groups (transactions/s; latencies go to `target/criterion/eo-latency.json`):
//! - `two-phase-commit/window-W`: W transactions in flight, against participants;
//! - `two-phase-commit/limit`: one `write` + `fdatasync` per record.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use eo_benches::latency::{add_to_report, write_report};
use eo_benches::limits::{raw_record_len, raw_single};
use eo_benches::place::{Durability, RunDir};
use eo_benches::two_phase::Rig;

/// Participant counts.
const PARTICIPANTS: [usize; 3] = [1, 3, 5];
/// Transactions in flight: one at a time, and the client's whole window.
const WINDOWS: [u64; 2] = [1, 64];
/// Payload bytes of the raw limit's records (about a prepare record).
const RECORD_PAYLOAD_LEN: usize = 60;

fn commits(c: &mut Criterion) {
    for window in WINDOWS {
        let mut g = c.benchmark_group(format!("two-phase-commit/window-{window}"));
        g.throughput(Throughput::Elements(1));
        for participants in PARTICIPANTS {
            let mut rig = Rig::start(participants).expect("the cluster starts");
            g.bench_function(BenchmarkId::new("commit", participants), |b| {
                b.iter_custom(|iters| {
                    let result = rig.run(iters, window).expect("the run completes");
                    add_to_report(
                        &format!("two-phase-commit/participants-{participants}/window-{window}"),
                        &result.latencies,
                    );
                    result.elapsed
                })
            });
            eprintln!(
                "two-phase-commit/window-{window}/{participants}: {} syncs in all",
                rig.syncs()
            );
            rig.stop().expect("a clean stop");
        }
        g.finish();
    }
}

fn limit(c: &mut Criterion) {
    let dir = RunDir::new("two-phase-limit", Durability::Disk).expect("a directory");
    let record_len = raw_record_len(RECORD_PAYLOAD_LEN);
    let mut g = c.benchmark_group("two-phase-commit/limit");
    g.throughput(Throughput::Elements(1));
    g.bench_function("raw-fdatasync-per-record", |b| {
        b.iter_custom(|iters| raw_single(dir.path(), record_len, iters).expect("raw writes"))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = eo_benches::criterion_config();
    targets = commits, limit
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    write_report().expect("the latency report is written");
    eo_benches::latency::write_histogram_svgs().expect("the latency plots are written");
}
