//! The disk's own limits, measured on the directory the logs use, in the same
//! run as what is held against them (folded from the former
//! `impl/examples/wal_measure.rs`).
//!
//! - [`raw_single`]: `write` + `fdatasync` of one record at a time, on a plain
//!   file: the most records per second any log that syncs each record alone can
//!   make durable — the physical limit without group commit;
//! - [`raw_batched`]: `batch` `write`s, then one `fdatasync`: the limit with group
//!   commit at that batch size.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes the raw baselines write per record: the log's frame of `payload_len` bytes.
pub fn raw_record_len(payload_len: usize) -> usize {
    payload_len + eo_impl::wal::HEADER_LEN
}

fn raw_file(dir: &Path, name: &str) -> std::io::Result<File> {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    OpenOptions::new().create(true).append(true).open(path)
}

/// Time for `records` records of `record_len` bytes, each `write` + `fdatasync`.
pub fn raw_single(dir: &Path, record_len: usize, records: u64) -> std::io::Result<Duration> {
    let mut file = raw_file(dir, "raw-single.dat")?;
    let record = vec![7u8; record_len];
    let start = Instant::now();
    for _ in 0..records {
        file.write_all(&record)?;
        file.sync_data()?;
    }
    Ok(start.elapsed())
}

/// Time for `records` records of `record_len` bytes written in batches of
/// `batch`, one `fdatasync` per batch (a partial last batch is synced too).
pub fn raw_batched(
    dir: &Path,
    record_len: usize,
    batch: u64,
    records: u64,
) -> std::io::Result<Duration> {
    let mut file = raw_file(dir, "raw-batched.dat")?;
    let record = vec![7u8; record_len];
    let batch = batch.max(1);
    let start = Instant::now();
    let mut written = 0;
    while written < records {
        let n = batch.min(records - written);
        for _ in 0..n {
            file.write_all(&record)?;
        }
        file.sync_data()?;
        written += n;
    }
    Ok(start.elapsed())
}

/// Records per second of `records` records in `elapsed`.
pub fn rate(records: u64, elapsed: Duration) -> f64 {
    records as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}
