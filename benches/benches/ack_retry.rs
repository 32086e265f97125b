//! Ack-retry over loopback TCP with the logs syncing: what exactly-once costs
//! beside the at-least-once baseline, the same stack without durability, and
//! the disk's raw batched-write limit at the batch size the run achieved.
//!
//! ```text
//! cargo bench -p eo-benches --bench ack_retry [-- --quick]
//! ```
//!
//! Groups (messages/s; per-message latencies go to `target/criterion/eo-latency.json`):
//! - `ack-retry/senders-S-window-W`: the three modes side by side, for S = 1, 8;
//! - `ack-retry/window`: exactly-once against the in-flight window (1 sender),
//!   the throughput-vs-batch plot: a wider window gives each sync more to carry;
//! - `ack-retry/sync-delay`: exactly-once (8 senders, window 64) against the
//!   group-commit delay (`NodeConfig::sync_delay`), the batch knob: the sync
//!   thread waits that long for more records before each `fdatasync`;
//! - `ack-retry/limit`: raw `write`s + one `fdatasync` per batch of the size the
//!   exactly-once runs reached (records per sync), and one `fdatasync` per record.

use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use eo_benches::ack_retry::{Mode, Rig};
use eo_benches::latency::{add_to_report, write_report};
use eo_benches::limits::{raw_batched, raw_record_len, raw_single};
use eo_benches::place::{Durability, RunDir};
use std::sync::Mutex;
use std::time::Duration;

/// Bytes of a logged ack-retry record, about (a transfer plus ids and seqs).
const RECORD_PAYLOAD_LEN: usize = 40;
/// Windows of the window sweep.
const WINDOWS: [u64; 4] = [1, 4, 16, 64];
/// Window of the mode comparison.
const WINDOW: u64 = 64;
/// Sender counts of the mode comparison.
const SENDERS: [usize; 2] = [1, 8];
/// Group-commit delays of the batch sweep, in microseconds.
const SYNC_DELAYS_US: [u64; 3] = [0, 500, 2_000];
/// Senders of the batch sweep.
const SYNC_DELAY_SENDERS: usize = 8;

/// Records per sync reached by the exactly-once runs, for the limit group.
static BATCH: Mutex<Vec<f64>> = Mutex::new(Vec::new());

fn run_mode(
    g: &mut BenchmarkGroup<'_, WallTime>,
    mode: Mode,
    senders: usize,
    window: u64,
    sync_delay: Duration,
    id: BenchmarkId,
) -> f64 {
    let mut rig = Rig::start_with(mode, senders, sync_delay).expect("the cluster starts");
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let result = rig.run(iters, window).expect("the run completes");
            add_to_report(
                &format!(
                    "ack-retry/{}/senders-{senders}/window-{window}{}",
                    mode.name(),
                    if sync_delay.is_zero() {
                        String::new()
                    } else {
                        format!("/sync-delay-{}us", sync_delay.as_micros())
                    }
                ),
                &result.latencies,
            );
            result.elapsed
        })
    });
    let (syncs, records) = rig.syncs_and_records();
    rig.stop()
        .expect("a clean stop, every message applied once");
    records as f64 / syncs.max(1) as f64
}

fn modes(c: &mut Criterion) {
    for senders in SENDERS {
        let name = format!("ack-retry/senders-{senders}-window-{WINDOW}");
        let mut g = c.benchmark_group(&name);
        g.throughput(Throughput::Elements(1));
        for mode in Mode::ALL {
            let id = BenchmarkId::from_parameter(mode.name());
            let per_sync = run_mode(&mut g, mode, senders, WINDOW, Duration::ZERO, id);
            eprintln!("{name}/{}: {per_sync:.1} records per sync", mode.name());
            if mode == Mode::ExactlyOnce {
                BATCH.lock().unwrap().push(per_sync);
            }
        }
        g.finish();
    }
}

fn windows(c: &mut Criterion) {
    let mut g = c.benchmark_group("ack-retry/window");
    g.throughput(Throughput::Elements(1));
    for window in WINDOWS {
        let id = BenchmarkId::new(Mode::ExactlyOnce.name(), window);
        let per_sync = run_mode(&mut g, Mode::ExactlyOnce, 1, window, Duration::ZERO, id);
        eprintln!("ack-retry/window/{window}: {per_sync:.1} records per sync");
    }
    g.finish();
}

fn sync_delays(c: &mut Criterion) {
    let mut g = c.benchmark_group("ack-retry/sync-delay");
    g.throughput(Throughput::Elements(1));
    for delay_us in SYNC_DELAYS_US {
        let id = BenchmarkId::new(Mode::ExactlyOnce.name(), format!("{delay_us}us"));
        let delay = Duration::from_micros(delay_us);
        let per_sync = run_mode(
            &mut g,
            Mode::ExactlyOnce,
            SYNC_DELAY_SENDERS,
            WINDOW,
            delay,
            id,
        );
        eprintln!("ack-retry/sync-delay/{delay_us}us: {per_sync:.1} records per sync");
        BATCH.lock().unwrap().push(per_sync);
    }
    g.finish();
}

fn limit(c: &mut Criterion) {
    let dir = RunDir::new("ack-retry-limit", Durability::Disk).expect("a directory");
    let record_len = raw_record_len(RECORD_PAYLOAD_LEN);
    let mut g = c.benchmark_group("ack-retry/limit");
    g.throughput(Throughput::Elements(1));
    let batches = BATCH.lock().unwrap().clone();
    for per_sync in batches {
        let batch = per_sync.round().max(1.0) as u64;
        g.bench_function(BenchmarkId::new("raw-batched-write", batch), |b| {
            b.iter_custom(|iters| {
                raw_batched(dir.path(), record_len, batch, iters).expect("raw writes")
            })
        });
    }
    g.bench_function("raw-fdatasync-per-record", |b| {
        b.iter_custom(|iters| raw_single(dir.path(), record_len, iters).expect("raw writes"))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = eo_benches::criterion_config();
    targets = modes, windows, sync_delays, limit
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    write_report().expect("the latency report is written");
    eo_benches::latency::write_histogram_svgs().expect("the latency plots are written");
}
