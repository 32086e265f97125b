//! Where benchmark logs live.
//!
//! Durable runs put their logs under `EO_BENCH_DIR` (default `target/eo-bench`,
//! the disk the repository is on): set it to the disk you want to measure.
//! Runs without durability put them under `/dev/shm` (tmpfs: `fdatasync` returns
//! at once), so the same code runs with the disk taken out.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The tmpfs directory of runs without durability.
pub const MEMORY_DIR: &str = "/dev/shm";

/// Whether a run's logs are on the disk or in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// On the disk under `EO_BENCH_DIR`: every sync is a real `fdatasync`.
    Disk,
    /// In memory (tmpfs): syncs cost nothing, nothing survives a power loss.
    Memory,
}

/// A fresh, empty directory for one run, removed when dropped.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// A new directory named after `name`, on the disk or in memory.
    pub fn new(name: &str, durability: Durability) -> std::io::Result<RunDir> {
        static RUN: AtomicUsize = AtomicUsize::new(0);
        let root = match durability {
            Durability::Disk => std::env::var_os("EO_BENCH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/eo-bench")
                }),
            Durability::Memory => PathBuf::from(MEMORY_DIR).join("eo-bench"),
        };
        let path = root.join(format!(
            "{name}-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(RunDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
