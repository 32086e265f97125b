//! The write-ahead log against the disk's own limits, measured in the same run,
//! and its recovery time and peak memory against log size (folded from the
//! former `impl/examples/wal_measure.rs`).
//!
//! ```text
//! cargo bench -p eo-benches --bench log [-- --quick]
//! EO_BENCH_DIR=/mnt/disk cargo bench -p eo-benches --bench log   # another disk
//! ```
//!
//! Groups (records/s):
//! - `log/one-sync-per-record`: `Wal::append` + `Wal::sync` against `write` +
//!   `fdatasync` of the same bytes on a plain file (the physical limit without
//!   group commit), and `GroupCommit` with 8 threads each `append_and_wait`ing;
//! - `log/batch-1024`: 1,024 appends + one sync against 1,024 `write`s + one
//!   `fdatasync` (the limit with group commit), and the same through
//!   `GroupCommit` (1,024 `append`s, one `wait_durable`);
//! - `log/recovery`: `Wal::open_with` (streaming) of logs of 10k, 100k and 1M
//!   records, and of a log with a 1 MiB torn tail. Peak heap of each recovery
//!   (a counting allocator) goes to `target/criterion/eo-recovery.json`.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use eo_benches::limits::{raw_batched, raw_record_len, raw_single};
use eo_benches::place::{Durability, RunDir};
use eo_impl::disk::{Disk, FileDisk};
use eo_impl::wal::{GroupCommit, Wal};
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "../../impl/tests/support/live_bytes.rs"]
mod live_bytes;
use live_bytes::{peak_of, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Payload bytes of every measured record.
const PAYLOAD_LEN: usize = 100;
/// Records per sync in the batched comparison.
const BATCH_LEN: u64 = 1024;
/// Threads of the concurrent group-commit run.
const THREADS: u64 = 8;
/// Log sizes of the recovery measurement, in records.
const RECOVERY_RECORDS: [usize; 3] = [10_000, 100_000, 1_000_000];
/// Length of the crafted torn tail (1 MiB).
const TORN_TAIL_LEN: usize = 1 << 20;

fn fresh_wal(dir: &Path, name: &str) -> Wal<FileDisk> {
    let path = dir.join(name);
    let _ = std::fs::remove_dir_all(&path);
    let disk = FileDisk::open(&path).expect("a log directory");
    Wal::open(disk).expect("a new log").0
}

fn one_sync_per_record(c: &mut Criterion) {
    let dir = RunDir::new("log-single", Durability::Disk).expect("a directory");
    let payload = [7u8; PAYLOAD_LEN];
    let mut g = c.benchmark_group("log/one-sync-per-record");
    g.throughput(Throughput::Elements(1));
    g.bench_function("raw-write-fdatasync", |b| {
        b.iter_custom(|iters| {
            raw_single(dir.path(), raw_record_len(PAYLOAD_LEN), iters).expect("raw")
        })
    });
    g.bench_function("wal-append-sync", |b| {
        b.iter_custom(|iters| {
            let mut wal = fresh_wal(dir.path(), "wal-single");
            let start = Instant::now();
            for _ in 0..iters {
                wal.append(&payload).expect("append");
                wal.sync().expect("sync");
            }
            start.elapsed()
        })
    });
    g.bench_function(
        format!("group-commit-{THREADS}-threads-append-and-wait"),
        |b| {
            b.iter_custom(|iters| {
                let group = GroupCommit::new(fresh_wal(dir.path(), "wal-threads"));
                let per_thread = iters.div_ceil(THREADS);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..THREADS {
                        s.spawn(|| {
                            for _ in 0..per_thread {
                                group.append_and_wait(&payload).expect("append and wait");
                            }
                        });
                    }
                });
                // Scale to `iters` records: the threads wrote per_thread * THREADS.
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_thread * THREADS) as f64)
            })
        },
    );
    g.finish();
}

fn batched(c: &mut Criterion) {
    let dir = RunDir::new("log-batched", Durability::Disk).expect("a directory");
    let payload = [7u8; PAYLOAD_LEN];
    let mut g = c.benchmark_group(format!("log/batch-{BATCH_LEN}"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("raw-writes-fdatasync", |b| {
        b.iter_custom(|iters| {
            raw_batched(dir.path(), raw_record_len(PAYLOAD_LEN), BATCH_LEN, iters).expect("raw")
        })
    });
    g.bench_function("wal-appends-sync", |b| {
        b.iter_custom(|iters| {
            let mut wal = fresh_wal(dir.path(), "wal-batched");
            let start = Instant::now();
            for i in 0..iters {
                wal.append(&payload).expect("append");
                if i % BATCH_LEN == BATCH_LEN - 1 || i == iters - 1 {
                    wal.sync().expect("sync");
                }
            }
            start.elapsed()
        })
    });
    g.bench_function("group-commit-appends-wait-durable", |b| {
        b.iter_custom(|iters| {
            let group = GroupCommit::new(fresh_wal(dir.path(), "wal-pipelined"));
            let start = Instant::now();
            for i in 0..iters {
                let lsn = group.append(&payload).expect("append");
                if i % BATCH_LEN == BATCH_LEN - 1 || i == iters - 1 {
                    group.wait_durable(lsn).expect("durable");
                }
            }
            start.elapsed()
        })
    });
    g.finish();
}

/// Writes a log of `records` records, synced every [`BATCH_LEN`]; returns its bytes.
fn write_log(path: &Path, records: usize) -> u64 {
    let _ = std::fs::remove_dir_all(path);
    let (mut wal, _) = Wal::open(FileDisk::open(path).expect("a directory")).expect("a log");
    for i in 0..records {
        wal.append(&[(i % 251) as u8; PAYLOAD_LEN]).expect("append");
        if i as u64 % BATCH_LEN == BATCH_LEN - 1 {
            wal.sync().expect("sync");
        }
    }
    wal.sync().expect("sync");
    wal.len_bytes()
}

fn recover_streaming(path: &Path) -> usize {
    let mut count = 0usize;
    let (wal, _) = Wal::open_with(FileDisk::open(path).expect("a directory"), |_| {
        count += 1;
        Ok(())
    })
    .expect("recovery");
    drop(wal);
    count
}

fn recovery(c: &mut Criterion) {
    let dir = RunDir::new("log-recovery", Durability::Disk).expect("a directory");
    let mut memory = serde_json::Map::new();
    let mut g = c.benchmark_group("log/recovery");
    for records in RECOVERY_RECORDS {
        let path = dir.path().join(format!("wal-{records}"));
        let bytes = write_log(&path, records);
        // Peak heap of one streaming and one collecting recovery (page cache warm).
        let (streaming_peak, count) = peak_of(|| recover_streaming(&path));
        assert_eq!(count, records, "every record recovered");
        let (collecting_peak, ()) = peak_of(|| {
            let (wal, recovered) =
                Wal::open(FileDisk::open(&path).expect("dir")).expect("recovery");
            assert_eq!(recovered.records.len(), records);
            drop(wal);
        });
        eprintln!(
            "log/recovery/{records}: {:.1} MiB log; peak heap streaming {:.2} MiB, collecting {:.1} MiB",
            bytes as f64 / 1048576.0,
            streaming_peak as f64 / 1048576.0,
            collecting_peak as f64 / 1048576.0
        );
        memory.insert(
            records.to_string(),
            serde_json::json!({
                "log_bytes": bytes,
                "peak_heap_bytes_streaming": streaming_peak,
                "peak_heap_bytes_collecting": collecting_peak,
            }),
        );
        g.throughput(Throughput::Elements(records as u64));
        g.bench_function(BenchmarkId::new("open-with-streaming", records), |b| {
            b.iter(|| recover_streaming(&path))
        });
        let _ = std::fs::remove_dir_all(&path);
    }

    let path = dir.path().join("wal-torn");
    let (mut wal, _) = Wal::open(FileDisk::open(&path).expect("dir")).expect("a log");
    wal.append(b"a").expect("append");
    wal.sync().expect("sync");
    let segment = wal.segment().to_owned();
    drop(wal);
    let mut disk = FileDisk::open(&path).expect("dir");
    let tail: Vec<u8> = [0u8, 0, 4, 0]
        .iter()
        .copied()
        .cycle()
        .take(TORN_TAIL_LEN)
        .collect();
    disk.append(&segment, &tail).expect("append the tail");
    disk.sync(&segment).expect("sync the tail");
    let pristine = std::fs::read(path.join(&segment)).expect("the segment");
    g.throughput(Throughput::Elements(1));
    g.bench_function("torn-tail-1MiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Recovery cuts the tail off: put it back before each run.
                std::fs::write(path.join(&segment), &pristine).expect("restore the segment");
                let start = Instant::now();
                let (_wal, recovered) =
                    Wal::open(FileDisk::open(&path).expect("dir")).expect("recovery");
                total += start.elapsed();
                assert_eq!(recovered.records.len(), 1);
            }
            total
        })
    });
    g.finish();

    let out = eo_benches::latency::report_path().with_file_name("eo-recovery.json");
    if let Some(parent) = out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&out, serde_json::to_vec_pretty(&memory).expect("json")).expect("write");
}

criterion_group! {
    name = benches;
    config = eo_benches::criterion_config();
    targets = one_sync_per_record, batched, recovery
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
