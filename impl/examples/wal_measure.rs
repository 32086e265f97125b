//! Measures the write-ahead log against the raw disk in one run, and its recovery.
//!
//! ```text
//! cargo run --release -p eo-impl --example wal_measure [-- DIR]
//! ```
//!
//! DIR (default: a temporary directory under `target/`) should be on the disk the
//! log would use. Every figure is printed beside its baseline from the same run;
//! rounds alternate between the log and the baseline and the median is reported,
//! so that drift of the disk's speed hits both alike.
//!
//! 1. One sync per record: `Wal::append` + `Wal::sync`, against `write` +
//!    `fdatasync` of the same bytes on a plain file.
//! 2. Batches: 1,024 appends then one sync, against 1,024 `write`s then one
//!    `fdatasync`; and the same batches through `GroupCommit` (pipelined: 1,024
//!    `append`s, one `wait_durable`), and 8 threads each `append_and_wait`ing.
//! 3. Recovery of a 1,000,000-record log: time and peak heap (a counting
//!    allocator), streaming (`open_with`, counting records) and collecting (`open`).
//! 4. Recovery of a log with a crafted 1 MiB torn tail.

use eo_impl::disk::{Disk, FileDisk};
use eo_impl::wal::{GroupCommit, Wal};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "../tests/support/live_bytes.rs"]
mod live_bytes;
use live_bytes::{peak_of, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Payload bytes of every measured record.
const PAYLOAD_LEN: usize = 100;
/// Bytes the raw baseline writes per record: the log's frame of the same payload.
const RAW_RECORD_LEN: usize = PAYLOAD_LEN + eo_impl::wal::HEADER_LEN;
/// Records per round of the one-sync-per-record comparison.
const SINGLE_RECORDS: usize = 100;
/// Records per sync in the batched comparison.
const BATCH_LEN: usize = 1024;
/// Batches per round of the batched comparison.
const BATCHES: usize = 20;
/// Threads of the concurrent group-commit run.
const THREADS: usize = 8;
/// Rounds of each comparison (the median is reported).
const ROUNDS: usize = 15;
/// Records of the recovery measurement.
const RECOVERY_RECORDS: usize = 1_000_000;
/// Length of the crafted torn tail (1 MiB).
const TORN_TAIL_LEN: usize = 1 << 20;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

/// The median of the per-round ratios `a[i] / b[i]`, with their range.
fn ratio(a: &[f64], b: &[f64]) -> String {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ratios.iter().copied().fold(0.0, f64::max);
    format!("{:.3}x (rounds {min:.2}-{max:.2})", median(ratios))
}

fn rate(records: usize, elapsed: Duration) -> f64 {
    records as f64 / elapsed.as_secs_f64()
}

/// A new, empty directory for one run. Nothing is removed until the end, so that
/// no run pays for freeing another's blocks.
fn fresh(dir: &Path, name: &str) -> PathBuf {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let path = dir.join(format!("{name}-{}", RUN.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&path).expect("create a measurement directory");
    path
}

fn raw_file(dir: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("raw.dat"))
        .expect("open the raw file")
}

/// Records per second: `write` + `fdatasync` per record.
fn raw_single(dir: &Path) -> f64 {
    let mut file = raw_file(&fresh(dir, "raw-single"));
    let record = [7u8; RAW_RECORD_LEN];
    let start = Instant::now();
    for _ in 0..SINGLE_RECORDS {
        file.write_all(&record).unwrap();
        file.sync_data().unwrap();
    }
    rate(SINGLE_RECORDS, start.elapsed())
}

/// Records per second: `Wal::append` + `Wal::sync` per record.
fn wal_single(dir: &Path) -> f64 {
    let (mut wal, _) = Wal::open(FileDisk::open(fresh(dir, "wal-single")).unwrap()).unwrap();
    let payload = [7u8; PAYLOAD_LEN];
    let start = Instant::now();
    for _ in 0..SINGLE_RECORDS {
        wal.append(&payload).unwrap();
        wal.sync().unwrap();
    }
    rate(SINGLE_RECORDS, start.elapsed())
}

/// Records per second: `BATCH_LEN` `write`s, then one `fdatasync`.
fn raw_batched(dir: &Path) -> f64 {
    let mut file = raw_file(&fresh(dir, "raw-batched"));
    let record = [7u8; RAW_RECORD_LEN];
    let start = Instant::now();
    for _ in 0..BATCHES {
        for _ in 0..BATCH_LEN {
            file.write_all(&record).unwrap();
        }
        file.sync_data().unwrap();
    }
    rate(BATCHES * BATCH_LEN, start.elapsed())
}

/// Records per second: `BATCH_LEN` appends, then one sync.
fn wal_batched(dir: &Path) -> f64 {
    let (mut wal, _) = Wal::open(FileDisk::open(fresh(dir, "wal-batched")).unwrap()).unwrap();
    let payload = [7u8; PAYLOAD_LEN];
    let start = Instant::now();
    for _ in 0..BATCHES {
        for _ in 0..BATCH_LEN {
            wal.append(&payload).unwrap();
        }
        wal.sync().unwrap();
    }
    rate(BATCHES * BATCH_LEN, start.elapsed())
}

/// Records per second through `GroupCommit`: `BATCH_LEN` `append`s, one
/// `wait_durable` for the last.
fn group_pipelined(dir: &Path) -> f64 {
    let (wal, _) = Wal::open(FileDisk::open(fresh(dir, "wal-pipelined")).unwrap()).unwrap();
    let group = GroupCommit::new(wal);
    let payload = [7u8; PAYLOAD_LEN];
    let start = Instant::now();
    for _ in 0..BATCHES {
        let mut last = None;
        for _ in 0..BATCH_LEN {
            last = Some(group.append(&payload).unwrap());
        }
        group.wait_durable(last.unwrap()).unwrap();
    }
    rate(BATCHES * BATCH_LEN, start.elapsed())
}

/// Records per second and records per sync: `THREADS` threads, each
/// `append_and_wait`ing `SINGLE_RECORDS` records.
fn group_threads(dir: &Path) -> (f64, f64) {
    let (wal, _) = Wal::open(FileDisk::open(fresh(dir, "wal-threads")).unwrap()).unwrap();
    let group = GroupCommit::new(wal);
    let payload = [7u8; PAYLOAD_LEN];
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..SINGLE_RECORDS {
                    group.append_and_wait(&payload).unwrap();
                }
            });
        }
    });
    let records = THREADS * SINGLE_RECORDS;
    let syncs = group.sync_count().unwrap();
    (
        rate(records, start.elapsed()),
        records as f64 / syncs as f64,
    )
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn recovery(dir: &Path) {
    let path = fresh(dir, "wal-recovery");
    let (mut wal, _) = Wal::open(FileDisk::open(&path).unwrap()).unwrap();
    let start = Instant::now();
    for i in 0..RECOVERY_RECORDS {
        wal.append(&[(i % 251) as u8; PAYLOAD_LEN]).unwrap();
        if i % BATCH_LEN == BATCH_LEN - 1 {
            wal.sync().unwrap();
        }
    }
    wal.sync().unwrap();
    let segment_len = wal.len_bytes() as usize;
    println!(
        "recovery log: {RECOVERY_RECORDS} records of {PAYLOAD_LEN} B, synced every {BATCH_LEN}: \
         {:.1} MiB, written in {:.2} s",
        mib(segment_len),
        start.elapsed().as_secs_f64()
    );
    drop(wal);
    // Warm the page cache once, so both recoveries read from memory alike.
    let _ = FileDisk::open(&path)
        .unwrap()
        .read("wal-00000000000000000000.log");

    let start = Instant::now();
    let (peak, count) = peak_of(|| {
        let mut count = 0usize;
        let (wal, _) = Wal::open_with(FileDisk::open(&path).unwrap(), |_| {
            count += 1;
            Ok(())
        })
        .unwrap();
        drop(wal);
        count
    });
    let elapsed = start.elapsed();
    assert_eq!(count, RECOVERY_RECORDS);
    println!(
        "  streaming (open_with): {:.3} s ({:.0} MiB/s), peak heap {:.2} MiB = {:.3}x the segment",
        elapsed.as_secs_f64(),
        mib(segment_len) / elapsed.as_secs_f64(),
        mib(peak),
        peak as f64 / segment_len as f64
    );

    let start = Instant::now();
    let (peak, state) = peak_of(|| {
        let (wal, recovered) = Wal::open(FileDisk::open(&path).unwrap()).unwrap();
        drop(wal);
        assert_eq!(recovered.records.len(), RECOVERY_RECORDS);
        recovered.records.capacity() * std::mem::size_of::<Vec<u8>>()
            + recovered.records.iter().map(Vec::capacity).sum::<usize>()
    });
    let elapsed = start.elapsed();
    println!(
        "  collecting (open): {:.3} s, peak heap {:.1} MiB = records {:.1} MiB + {:.2} MiB \
         ({:.3}x the segment beyond the records)",
        elapsed.as_secs_f64(),
        mib(peak),
        mib(state),
        mib(peak - state.min(peak)),
        (peak - state.min(peak)) as f64 / segment_len as f64
    );
}

fn torn_tail(dir: &Path) {
    let path = fresh(dir, "wal-torn");
    let (mut wal, _) = Wal::open(FileDisk::open(&path).unwrap()).unwrap();
    wal.append(b"a").unwrap();
    wal.sync().unwrap();
    let segment = wal.segment().to_owned();
    drop(wal);
    let mut disk = FileDisk::open(&path).unwrap();
    let tail: Vec<u8> = [0u8, 0, 4, 0]
        .iter()
        .copied()
        .cycle()
        .take(TORN_TAIL_LEN)
        .collect();
    disk.append(&segment, &tail).unwrap();
    disk.sync(&segment).unwrap();
    let start = Instant::now();
    let (wal, recovered) = Wal::open(FileDisk::open(&path).unwrap()).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(recovered.records.len(), 1);
    println!(
        "crafted {} MiB torn tail: recovered in {:.4} s; {:?}",
        TORN_TAIL_LEN >> 20,
        elapsed.as_secs_f64(),
        wal.recovery_stats()
    );
}

fn main() {
    let dir = match std::env::args().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from("target/wal-measure"),
    };
    std::fs::create_dir_all(&dir).expect("create the measurement directory");
    println!("directory: {}", dir.display());

    let (mut raw_s, mut wal_s, mut raw_b, mut wal_b, mut pipe, mut thr, mut per_sync) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        // Alternate which goes first, so that neither always follows the other.
        if round % 2 == 0 {
            raw_s.push(raw_single(&dir));
            wal_s.push(wal_single(&dir));
            raw_b.push(raw_batched(&dir));
            wal_b.push(wal_batched(&dir));
            pipe.push(group_pipelined(&dir));
        } else {
            pipe.push(group_pipelined(&dir));
            wal_b.push(wal_batched(&dir));
            raw_b.push(raw_batched(&dir));
            wal_s.push(wal_single(&dir));
            raw_s.push(raw_single(&dir));
        }
        let (rate, records_per_sync) = group_threads(&dir);
        thr.push(rate);
        per_sync.push(records_per_sync);
        eprintln!(
            "round {round}: single raw {:.0} wal {:.0}; batched raw {:.0} wal {:.0} pipelined {:.0}; \
             {THREADS} threads {:.0} ({:.1} per sync)",
            raw_s[round], wal_s[round], raw_b[round], wal_b[round], pipe[round], thr[round],
            per_sync[round]
        );
    }
    println!("one sync per record ({PAYLOAD_LEN} B payloads, medians of {ROUNDS} rounds):");
    println!(
        "  raw write+fdatasync: {:.0} records/s",
        median(raw_s.clone())
    );
    println!(
        "  Wal append+sync:     {:.0} records/s; per round {} raw",
        median(wal_s.clone()),
        ratio(&wal_s, &raw_s)
    );
    println!(
        "  GroupCommit, {THREADS} threads append_and_wait: {:.0} records/s; per round {} raw \
         single; {:.1} records per sync",
        median(thr.clone()),
        ratio(&thr, &raw_s),
        median(per_sync)
    );
    println!("batches of {BATCH_LEN} records per sync:");
    println!(
        "  raw {BATCH_LEN} writes+fdatasync: {:.0} records/s",
        median(raw_b.clone())
    );
    println!(
        "  Wal {BATCH_LEN} appends+sync:     {:.0} records/s; per round {} raw",
        median(wal_b.clone()),
        ratio(&wal_b, &raw_b)
    );
    println!(
        "  GroupCommit {BATCH_LEN} appends+wait_durable: {:.0} records/s; per round {} raw",
        median(pipe.clone()),
        ratio(&pipe, &raw_b)
    );
    recovery(&dir);
    torn_tail(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}
