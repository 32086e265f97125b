//! The write-ahead log: framed, checksummed records in one segment file, with
//! crash recovery, compaction to a snapshot, and group commit.
//!
//! # Byte layout
//!
//! A segment is a sequence of records and nothing else (no file header):
//!
//! ```text
//! record  = len: u32 LE | crc: u32 LE | payload: [u8; len]
//! crc     = crc32c(len as 4 LE bytes ++ payload)
//! ```
//!
//! The checksum covers the length field too, so a damaged length is a checksum
//! failure rather than a silent re-framing, and a run of zero bytes (what some
//! file systems expose after a crash) is never a valid record: the checksum of
//! four zero bytes is not zero. `len` is at most [`RECORD_LEN_MAX`]; larger
//! appends are refused with [`WalError::RecordTooLarge`].
//!
//! # Files and LSNs
//!
//! Records are numbered by a log sequence number ([`Lsn`]), 1, 2, 3, … in append
//! order; `Lsn(0)` means "nothing". The directory holds one live segment,
//! `wal-<base>.log`, `<base>` being 20 decimal digits:
//!
//! - `base = 0`: the log was never compacted; its records have LSNs 1, 2, ….
//! - `base > 0`: the first record is a **snapshot** with LSN `base`, standing for
//!   every record before it; the records after it (the *tail*) have LSNs
//!   `base + 1`, ….
//!
//! A `wal-<base>.tmp` is a compaction that did not finish. LSNs of records lost in
//! a crash (never synced) are reused by the next appends.
//!
//! # Recovery
//!
//! [`Wal::open`] picks the segment with the largest base (older ones are leftovers
//! of a compaction that finished but whose cleanup did not), and scans it from the
//! start, record by record, up to the first record that is *bad*: its header is
//! incomplete, its length exceeds [`RECORD_LEN_MAX`] or runs past the end of the
//! file, or its checksum fails. Then:
//!
//! - if **no valid record starts at any later byte offset**, the bad bytes are a
//!   torn tail: a write that a crash cut short. The file is truncated to the end of
//!   the last valid record and synced, and [`Recovered::truncated`] reports it.
//! - if **a valid record starts at a later offset**, the damage is before the tail:
//!   [`WalError::Corrupt`], and nothing is truncated. Valid data is never skipped
//!   silently.
//!
//! A snapshot segment whose snapshot record is itself bad is
//! [`WalError::SnapshotDamaged`]: it was synced before it was renamed into place,
//! so it cannot have been torn by a crash. After the scan `open` removes leftover
//! `.tmp` files and older segments, and syncs the segment: a record it returns is
//! durable even if it was read from an operating-system cache after a process
//! (not machine) crash, so a driver may act on every recovered record.
//!
//! Limits of the rule:
//!
//! - Damage to the **last** record (bit rot, a lost sector) looks exactly like a
//!   torn write and is truncated, even if that record had been synced. Telling the
//!   two apart needs a durable record of what was synced, which a checksum alone
//!   does not give.
//! - The rule assumes a crash keeps a *prefix* of the unsynced writes (see
//!   [`crate::disk::SimDisk`]). A file system that wrote back unsynced pages out
//!   of order could leave a hole before valid records; that is reported as
//!   `Corrupt` (refusing to guess) although truncating would have lost only
//!   unsynced records.
//! - A torn record whose surviving payload bytes happen to contain a complete,
//!   correctly checksummed frame would be reported as `Corrupt`. For random
//!   garbage the chance is about 2⁻³² per offset; payloads would have to embed
//!   this framing on purpose.
//! - The search for a later valid record tries every offset after the bad record:
//!   cheap in practice (most offsets fail the length bound), at worst proportional
//!   to the tail's length times [`RECORD_LEN_MAX`]. Compaction bounds the tail.
//!
//! # Compaction
//!
//! [`Wal::compact`] replaces the log by one snapshot record, atomically:
//!
//! 1. write the snapshot to `wal-<b>.tmp` (`b` = last LSN + 1) and sync it;
//! 2. rename it to `wal-<b>.log` and sync the directory;
//! 3. switch appends to the new segment, remove the old one, sync the directory.
//!
//! A crash before the rename is durable leaves the old log (and maybe a `.tmp`,
//! removed at recovery); after it, the new log, complete because it was synced
//! before the rename. Never neither, never a mixture. Compaction makes everything
//! durable: the snapshot stands for every record appended before it.
//!
//! # Errors and poisoning
//!
//! After any I/O error the log is *poisoned*: every later call returns
//! [`WalError::Poisoned`]. A failed `fdatasync` may have dropped dirty pages that
//! a retry would then report as synced (PostgreSQL's "fsyncgate"), so the only
//! safe continuation is to reopen the log and recover from what is on disk.
//!
//! # Group commit
//!
//! [`GroupCommit`] shares a log between threads: each thread appends and waits
//! until its record is durable. A thread that finds no sync in progress becomes
//! the leader, syncs everything appended so far *without holding the lock* (other
//! threads keep appending meanwhile), and wakes every waiter; those whose LSN is
//! now durable return, the others elect the next leader. N concurrent appends thus
//! cost far fewer than N syncs.

use crate::disk::{Disk, FileSync};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Bytes before each payload: `len: u32 LE | crc: u32 LE`.
pub const HEADER_LEN: usize = 8;

/// The largest payload of one record, snapshots included (1 MiB). A core whose
/// snapshot outgrows this must bound its state instead.
pub const RECORD_LEN_MAX: usize = 1 << 20;

const _: () = assert!(RECORD_LEN_MAX <= u32::MAX as usize);

/// A log sequence number: the position of a record in append order, from 1.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Lsn(pub u64);

impl Lsn {
    /// No record.
    pub const ZERO: Lsn = Lsn(0);

    fn next(self) -> Lsn {
        Lsn(self.0.checked_add(1).expect("u64 LSNs do not run out"))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lsn:{}", self.0)
    }
}

/// Why the bytes at some offset are not a valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer than `HEADER_LEN` bytes remain in the file.
    #[error("incomplete header ({available} bytes left)")]
    HeaderTorn { available: usize },
    /// The length field exceeds `RECORD_LEN_MAX`.
    #[error("length {len} exceeds the record size limit")]
    LenTooLarge { len: u32 },
    /// The record would end past the end of the file.
    #[error("length {len} runs past the end of the file ({available} bytes left)")]
    PastEof { len: u32, available: usize },
    /// The stored checksum does not match the length and payload.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
}

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The disk failed; the log is now poisoned and must be reopened.
    #[error("i/o error: {op} {file:?}: {source}")]
    Io {
        op: &'static str,
        file: String,
        #[source]
        source: io::Error,
    },
    /// A bad record is followed by valid ones: damage before the tail, not a torn write.
    #[error("corrupt log {segment:?} at offset {offset}: {reason}; a valid record follows at offset {next_valid}")]
    Corrupt {
        segment: String,
        offset: u64,
        reason: FrameError,
        next_valid: u64,
    },
    /// The snapshot at the head of a compacted segment is missing or invalid.
    #[error("damaged snapshot in {segment:?}: {reason}")]
    SnapshotDamaged { segment: String, reason: FrameError },
    /// A payload longer than `RECORD_LEN_MAX` was refused.
    #[error("record of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge { len: usize, max: usize },
    /// An earlier I/O error left the log in an unknown state; reopen it.
    #[error("the log is poisoned by an earlier i/o error; reopen it")]
    Poisoned,
    /// A record could not be serialised with postcard.
    #[error("cannot encode record: {0}")]
    Encode(#[source] postcard::Error),
    /// A recovered payload is not a valid postcard encoding of the requested type.
    #[error("cannot decode record {lsn}: {source}")]
    Decode {
        lsn: Lsn,
        #[source]
        source: postcard::Error,
    },
}

// ---------------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------------

fn frame_crc(len_le: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_le), payload)
}

/// Appends one framed record to `out`.
fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() <= RECORD_LEN_MAX,
        "callers check the length first"
    );
    let len_le = u32::try_from(payload.len())
        .expect("RECORD_LEN_MAX fits in u32")
        .to_le_bytes();
    let start = out.len();
    out.extend_from_slice(&len_le);
    out.extend_from_slice(&frame_crc(len_le, payload).to_le_bytes());
    out.extend_from_slice(payload);
    // The record must read back as written before it goes to disk.
    assert_eq!(
        decode_frame(&out[start..], 0),
        Ok((HEADER_LEN..out.len() - start, out.len() - start))
    );
}

/// Reads the record at `offset`: the payload's range in `data` and the offset just
/// past the record.
fn decode_frame(data: &[u8], offset: usize) -> Result<(Range<usize>, usize), FrameError> {
    let available = data.len().saturating_sub(offset);
    if available < HEADER_LEN {
        return Err(FrameError::HeaderTorn { available });
    }
    let header = &data[offset..offset + HEADER_LEN];
    let len_le: [u8; 4] = header[0..4].try_into().expect("4 bytes");
    let stored = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(len_le);
    let len_usize = len as usize;
    if len_usize > RECORD_LEN_MAX {
        return Err(FrameError::LenTooLarge { len });
    }
    if len_usize > available - HEADER_LEN {
        return Err(FrameError::PastEof { len, available });
    }
    let payload = offset + HEADER_LEN..offset + HEADER_LEN + len_usize;
    let computed = frame_crc(len_le, &data[payload.clone()]);
    if computed != stored {
        return Err(FrameError::Checksum { stored, computed });
    }
    let end = payload.end;
    Ok((payload, end))
}

/// How a scan of a segment ended.
#[derive(Debug, PartialEq, Eq)]
enum ScanEnd {
    /// Every byte belongs to a valid record.
    Clean,
    /// Bad bytes from `offset` to the end, and no valid record among them.
    TornTail { offset: usize, reason: FrameError },
    /// A bad record at `offset` with a valid one at `next_valid`.
    Corrupt {
        offset: usize,
        reason: FrameError,
        next_valid: usize,
    },
}

/// Splits a segment into records, stopping at the first bad one.
fn scan(data: &[u8]) -> (Vec<Range<usize>>, ScanEnd) {
    let mut frames = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        match decode_frame(data, offset) {
            Ok((payload, end)) => {
                assert!(end > offset && end <= data.len() && payload.len() <= RECORD_LEN_MAX);
                frames.push(payload);
                offset = end;
            }
            Err(reason) => {
                let end = match (offset + 1..=data.len().saturating_sub(HEADER_LEN))
                    .find(|&p| decode_frame(data, p).is_ok())
                {
                    Some(next_valid) => ScanEnd::Corrupt {
                        offset,
                        reason,
                        next_valid,
                    },
                    None => ScanEnd::TornTail { offset, reason },
                };
                return (frames, end);
            }
        }
    }
    assert_eq!(offset, data.len());
    (frames, ScanEnd::Clean)
}

// ---------------------------------------------------------------------------------
// File names
// ---------------------------------------------------------------------------------

const NAME_PREFIX: &str = "wal-";
const SEGMENT_SUFFIX: &str = ".log";
const TMP_SUFFIX: &str = ".tmp";
const NAME_DIGITS: usize = 20;

fn segment_name(base: Lsn) -> String {
    format!("{NAME_PREFIX}{:020}{SEGMENT_SUFFIX}", base.0)
}

fn tmp_name(base: Lsn) -> String {
    format!("{NAME_PREFIX}{:020}{TMP_SUFFIX}", base.0)
}

enum FileKind {
    Segment(Lsn),
    Tmp,
    Other,
}

fn parse_name(name: &str) -> FileKind {
    let Some(rest) = name.strip_prefix(NAME_PREFIX) else {
        return FileKind::Other;
    };
    let (digits, tmp) = if let Some(digits) = rest.strip_suffix(SEGMENT_SUFFIX) {
        (digits, false)
    } else if let Some(digits) = rest.strip_suffix(TMP_SUFFIX) {
        (digits, true)
    } else {
        return FileKind::Other;
    };
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return FileKind::Other;
    }
    match digits.parse::<u64>() {
        Ok(_) if tmp => FileKind::Tmp,
        Ok(base) => FileKind::Segment(Lsn(base)),
        Err(_) => FileKind::Other,
    }
}

// ---------------------------------------------------------------------------------
// Recovery result
// ---------------------------------------------------------------------------------

/// What [`Wal::open`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// LSN of the snapshot, or `Lsn(0)` if the log was never compacted.
    pub base: Lsn,
    /// The snapshot the log was last compacted to.
    pub snapshot: Option<Vec<u8>>,
    /// The records after the snapshot; `records[i]` has LSN `base + 1 + i`.
    pub records: Vec<Vec<u8>>,
    /// The torn tail that was cut off (and the cut synced), if any.
    pub truncated: Option<Truncation>,
}

/// A torn tail removed at recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// The segment file.
    pub segment: String,
    /// Where the first bad record started: the file's new length.
    pub offset: u64,
    /// How many bytes were cut off.
    pub len: u64,
    /// Why the first cut-off record was bad.
    pub reason: FrameError,
}

impl Recovered {
    /// The last recovered LSN (the snapshot's if there is no tail).
    pub fn lsn_last(&self) -> Lsn {
        Lsn(self.base.0 + self.records.len() as u64)
    }

    /// Every payload in order: the snapshot first, then the tail.
    pub fn payloads(&self) -> impl Iterator<Item = &[u8]> {
        self.snapshot
            .iter()
            .chain(self.records.iter())
            .map(Vec::as_slice)
    }

    /// Every payload decoded with postcard, the snapshot first: what a core's
    /// `recover` takes.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<Vec<T>, WalError> {
        let lsn_first = if self.snapshot.is_some() {
            self.base.0
        } else {
            self.base.0 + 1
        };
        self.payloads()
            .enumerate()
            .map(|(i, payload)| {
                postcard::from_bytes(payload).map_err(|source| WalError::Decode {
                    lsn: Lsn(lsn_first + i as u64),
                    source,
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------
// The log
// ---------------------------------------------------------------------------------

/// A write-ahead log on a [`Disk`]. See the module docs for the format and rules.
#[derive(Debug)]
pub struct Wal<D: Disk> {
    disk: D,
    /// Name of the live segment.
    segment: String,
    /// LSN of the live segment's snapshot; `Lsn(0)` if none.
    base: Lsn,
    /// LSN of the last appended record.
    lsn_last: Lsn,
    /// Every record up to this LSN is durable.
    lsn_durable: Lsn,
    /// Bytes in the live segment.
    len_bytes: u64,
    /// `fdatasync`s of log files since `open`.
    sync_count: u64,
    poisoned: bool,
    /// Reused buffer for framing.
    frame: Vec<u8>,
}

/// A sync that is under way: the records up to `target` become durable once the
/// syncer returns `Ok`.
struct SyncJob<S> {
    target: Lsn,
    syncer: S,
}

fn check_len(len: usize) -> Result<(), WalError> {
    if len > RECORD_LEN_MAX {
        return Err(WalError::RecordTooLarge {
            len,
            max: RECORD_LEN_MAX,
        });
    }
    Ok(())
}

fn io_error(op: &'static str, file: &str) -> impl FnOnce(io::Error) -> WalError {
    let file = file.to_owned();
    move |source| WalError::Io { op, file, source }
}

impl<D: Disk> Wal<D> {
    /// Opens the log on `disk`, creating an empty one if there is none, and
    /// recovers it (see the module docs). Every recovered record is durable when
    /// this returns.
    pub fn open(mut disk: D) -> Result<(Wal<D>, Recovered), WalError> {
        let mut segments = Vec::new();
        let mut leftovers = Vec::new();
        for name in disk.list().map_err(io_error("list", ""))? {
            match parse_name(&name) {
                FileKind::Segment(base) => segments.push(base),
                FileKind::Tmp => leftovers.push(name),
                FileKind::Other => {
                    tracing::warn!(file = %name, "ignoring a file that is not part of the log")
                }
            }
        }
        segments.sort_unstable();
        let base = match segments.pop() {
            Some(base) => base,
            None => {
                let name = segment_name(Lsn::ZERO);
                disk.create(&name).map_err(io_error("create", &name))?;
                disk.sync_dir().map_err(io_error("sync_dir", &name))?;
                Lsn::ZERO
            }
        };
        // What is left in `segments` are older segments, superseded by `base`.
        leftovers.extend(segments.into_iter().map(segment_name));

        let segment = segment_name(base);
        let data = disk.read(&segment).map_err(io_error("read", &segment))?;
        let (frames, end) = scan(&data);
        let valid_len = match end {
            ScanEnd::Clean => data.len(),
            ScanEnd::Corrupt {
                offset,
                reason,
                next_valid,
            } => {
                if base > Lsn::ZERO && offset == 0 {
                    return Err(WalError::SnapshotDamaged { segment, reason });
                }
                return Err(WalError::Corrupt {
                    segment,
                    offset: offset as u64,
                    reason,
                    next_valid: next_valid as u64,
                });
            }
            ScanEnd::TornTail { offset, reason } => {
                if base > Lsn::ZERO && offset == 0 {
                    return Err(WalError::SnapshotDamaged { segment, reason });
                }
                offset
            }
        };
        assert!(valid_len <= data.len());
        assert_eq!(frames.last().map_or(0, |f| f.end), valid_len);
        if base > Lsn::ZERO && frames.is_empty() {
            let reason = FrameError::HeaderTorn { available: 0 };
            return Err(WalError::SnapshotDamaged { segment, reason });
        }

        let truncated = if valid_len < data.len() {
            let ScanEnd::TornTail { reason, .. } = end else {
                unreachable!("only a torn tail is cut")
            };
            disk.truncate(&segment, valid_len as u64)
                .map_err(io_error("truncate", &segment))?;
            let truncation = Truncation {
                segment: segment.clone(),
                offset: valid_len as u64,
                len: (data.len() - valid_len) as u64,
                reason,
            };
            tracing::warn!(?truncation, "truncated a torn tail of the log");
            Some(truncation)
        } else {
            None
        };
        // Durable before anything is returned: the truncation, and records that a
        // process crash may have left only in the operating system's cache.
        disk.sync(&segment).map_err(io_error("sync", &segment))?;
        if !leftovers.is_empty() {
            for name in &leftovers {
                disk.remove(name).map_err(io_error("remove", name))?;
            }
            disk.sync_dir().map_err(io_error("sync_dir", &segment))?;
        }

        let mut payloads = frames.into_iter().map(|range| data[range].to_vec());
        let snapshot = if base > Lsn::ZERO {
            payloads.next()
        } else {
            None
        };
        let records: Vec<Vec<u8>> = payloads.collect();
        let recovered = Recovered {
            base,
            snapshot,
            records,
            truncated,
        };
        let lsn_last = recovered.lsn_last();
        tracing::info!(%segment, %lsn_last, bytes = valid_len, "opened the log");
        let wal = Wal {
            disk,
            segment,
            base,
            lsn_last,
            lsn_durable: lsn_last,
            len_bytes: valid_len as u64,
            sync_count: 0,
            poisoned: false,
            frame: Vec::new(),
        };
        wal.assert_invariants();
        Ok((wal, recovered))
    }

    /// Appends one record. It is written but not durable until [`Wal::sync`].
    pub fn append(&mut self, payload: &[u8]) -> Result<Lsn, WalError> {
        self.check_usable()?;
        check_len(payload.len())?;
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        encode_frame(payload, &mut frame);
        let result = self.disk.append(&self.segment, &frame);
        self.frame = frame;
        self.io(result, "append")?;
        self.len_bytes += (HEADER_LEN + payload.len()) as u64;
        self.lsn_last = self.lsn_last.next();
        self.assert_invariants();
        Ok(self.lsn_last)
    }

    /// Serialises `record` with postcard and appends it.
    pub fn append_record<T: Serialize + ?Sized>(&mut self, record: &T) -> Result<Lsn, WalError> {
        let payload = postcard::to_allocvec(record).map_err(WalError::Encode)?;
        self.append(&payload)
    }

    /// `fdatasync`: every record appended so far is durable when this returns.
    /// Returns the durable LSN. Does no I/O if nothing is waiting to be synced.
    pub fn sync(&mut self) -> Result<Lsn, WalError> {
        self.check_usable()?;
        if self.lsn_durable == self.lsn_last {
            return Ok(self.lsn_durable);
        }
        let job = self.sync_begin()?;
        let result = job.syncer.sync_data();
        self.sync_end(job.target, result)
    }

    fn sync_begin(&mut self) -> Result<SyncJob<D::Syncer>, WalError> {
        self.check_usable()?;
        let result = self.disk.syncer(&self.segment);
        let syncer = self.io(result, "sync")?;
        self.sync_count += 1;
        Ok(SyncJob {
            target: self.lsn_last,
            syncer,
        })
    }

    fn sync_end(&mut self, target: Lsn, result: io::Result<()>) -> Result<Lsn, WalError> {
        self.io(result, "sync")?;
        // A compaction may have run meanwhile and made more durable already.
        self.lsn_durable = self.lsn_durable.max(target);
        self.assert_invariants();
        tracing::debug!(lsn_durable = %self.lsn_durable, "synced the log");
        Ok(self.lsn_durable)
    }

    /// Replaces the whole log by one snapshot record, durably and atomically (see
    /// the module docs). Afterwards the log holds the snapshot, with LSN
    /// `lsn_last() + 1`, and everything is durable.
    pub fn compact(&mut self, snapshot: &[u8]) -> Result<(), WalError> {
        self.check_usable()?;
        check_len(snapshot.len())?;
        let base = self.lsn_last.next();
        let tmp = tmp_name(base);
        let segment = segment_name(base);
        let mut frame = Vec::with_capacity(HEADER_LEN + snapshot.len());
        encode_frame(snapshot, &mut frame);

        let result = self.disk.create(&tmp);
        self.io_on(result, "create", &tmp)?;
        let result = self.disk.append(&tmp, &frame);
        self.io_on(result, "append", &tmp)?;
        let result = self.disk.sync(&tmp);
        self.io_on(result, "sync", &tmp)?;
        self.sync_count += 1;
        let result = self.disk.rename(&tmp, &segment);
        self.io_on(result, "rename", &tmp)?;
        let result = self.disk.sync_dir();
        self.io_on(result, "sync_dir", &segment)?;

        // The new segment is durable and has the largest base: it is the log now.
        let old = std::mem::replace(&mut self.segment, segment);
        self.base = base;
        self.lsn_last = base;
        self.lsn_durable = base;
        self.len_bytes = frame.len() as u64;
        self.assert_invariants();
        tracing::info!(segment = %self.segment, bytes = self.len_bytes, "compacted the log");

        // Cleanup: if it does not reach the disk, recovery removes `old` again.
        let result = self.disk.remove(&old);
        self.io_on(result, "remove", &old)?;
        let result = self.disk.sync_dir();
        self.io_on(result, "sync_dir", &old)?;
        Ok(())
    }

    /// Serialises `snapshot` with postcard and compacts the log to it.
    pub fn compact_record<T: Serialize + ?Sized>(&mut self, snapshot: &T) -> Result<(), WalError> {
        let payload = postcard::to_allocvec(snapshot).map_err(WalError::Encode)?;
        self.compact(&payload)
    }

    /// LSN of the last appended record (or of the snapshot).
    pub fn lsn_last(&self) -> Lsn {
        self.lsn_last
    }

    /// Every record up to this LSN is durable.
    pub fn lsn_durable(&self) -> Lsn {
        self.lsn_durable
    }

    /// LSN of the snapshot the log was last compacted to; `Lsn(0)` if none.
    pub fn base(&self) -> Lsn {
        self.base
    }

    /// Size of the live segment in bytes (snapshot included): what recovery reads.
    pub fn len_bytes(&self) -> u64 {
        self.len_bytes
    }

    /// Records appended after the snapshot (or since the log was created).
    pub fn records_since_snapshot(&self) -> u64 {
        self.lsn_last.0 - self.base.0
    }

    /// `fdatasync`s of log files issued since `open` (by `sync`, group commit and
    /// `compact`).
    pub fn sync_count(&self) -> u64 {
        self.sync_count
    }

    /// Name of the live segment file.
    pub fn segment(&self) -> &str {
        &self.segment
    }

    /// True after an I/O error: every call fails until the log is reopened.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The disk, for drivers that share it (the simulator keeps its own handle).
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Gives the disk back, dropping the in-memory state of the log.
    pub fn into_disk(self) -> D {
        self.disk
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        Ok(())
    }

    fn io<T>(&mut self, result: io::Result<T>, op: &'static str) -> Result<T, WalError> {
        let segment = self.segment.clone();
        self.io_on(result, op, &segment)
    }

    fn io_on<T>(
        &mut self,
        result: io::Result<T>,
        op: &'static str,
        file: &str,
    ) -> Result<T, WalError> {
        result.map_err(|source| {
            self.poisoned = true;
            tracing::error!(op, file, %source, "log i/o failed; poisoned until reopened");
            WalError::Io {
                op,
                file: file.to_owned(),
                source,
            }
        })
    }

    fn assert_invariants(&self) {
        assert!(self.base <= self.lsn_durable && self.lsn_durable <= self.lsn_last);
        assert_eq!(parse_name_base(&self.segment), Some(self.base));
        // A snapshot segment always holds at least its snapshot record.
        assert!(self.base == Lsn::ZERO || self.len_bytes >= HEADER_LEN as u64);
    }
}

fn parse_name_base(name: &str) -> Option<Lsn> {
    match parse_name(name) {
        FileKind::Segment(base) => Some(base),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------
// Group commit
// ---------------------------------------------------------------------------------

/// A log shared by threads, each appending and waiting for durability, with one
/// `fdatasync` per batch (see the module docs).
pub struct GroupCommit<D: Disk> {
    state: Mutex<GroupState<D>>,
    synced: Condvar,
}

struct GroupState<D: Disk> {
    wal: Wal<D>,
    /// A leader is syncing (without holding the lock).
    syncing: bool,
}

impl<D> GroupCommit<D>
where
    D: Disk + Send,
    D::Syncer: Send,
{
    /// Shares `wal`.
    pub fn new(wal: Wal<D>) -> GroupCommit<D> {
        GroupCommit {
            state: Mutex::new(GroupState {
                wal,
                syncing: false,
            }),
            synced: Condvar::new(),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, GroupState<D>>, WalError> {
        // A thread panicked while holding the lock: an internal invariant failed,
        // so the log's state is unknown.
        self.state.lock().map_err(|_| WalError::Poisoned)
    }

    /// Appends one record and returns once it is durable, with its LSN.
    pub fn append_and_wait(&self, payload: &[u8]) -> Result<Lsn, WalError> {
        let mut state = self.lock()?;
        let lsn = state.wal.append(payload)?;
        loop {
            if state.wal.lsn_durable() >= lsn {
                return Ok(lsn);
            }
            state.wal.check_usable()?;
            if state.syncing {
                state = self.synced.wait(state).map_err(|_| WalError::Poisoned)?;
                continue;
            }
            // Leader: sync everything appended so far, letting others append meanwhile.
            let job = state.wal.sync_begin()?;
            state.syncing = true;
            drop(state);
            let result = job.syncer.sync_data();
            state = self.lock().inspect_err(|_| self.synced.notify_all())?;
            state.syncing = false;
            let ended = state.wal.sync_end(job.target, result);
            self.synced.notify_all();
            ended?;
        }
    }

    /// Serialises `record` with postcard, appends it and waits until it is durable.
    pub fn append_record_and_wait<T: Serialize + ?Sized>(
        &self,
        record: &T,
    ) -> Result<Lsn, WalError> {
        let payload = postcard::to_allocvec(record).map_err(WalError::Encode)?;
        self.append_and_wait(&payload)
    }

    /// Runs `f` on the log under the lock: to compact it, or read its counters.
    pub fn with_wal<R>(&self, f: impl FnOnce(&mut Wal<D>) -> R) -> Result<R, WalError> {
        let mut state = self.lock()?;
        let result = f(&mut state.wal);
        // `f` may have synced or compacted: waiters may be durable now.
        self.synced.notify_all();
        Ok(result)
    }

    /// `fdatasync`s issued so far.
    pub fn sync_count(&self) -> Result<u64, WalError> {
        self.with_wal(|wal| wal.sync_count())
    }

    /// Takes the log back.
    pub fn into_inner(self) -> Result<Wal<D>, WalError> {
        self.state
            .into_inner()
            .map(|s| s.wal)
            .map_err(|_| WalError::Poisoned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode_frame(p, &mut out);
        }
        out
    }

    #[test]
    fn frame_layout_is_len_crc_payload() {
        let out = frames(&[b"abc"]);
        assert_eq!(&out[0..4], &3u32.to_le_bytes());
        let mut covered = 3u32.to_le_bytes().to_vec();
        covered.extend_from_slice(b"abc");
        assert_eq!(&out[4..8], &crc32c::crc32c(&covered).to_le_bytes());
        assert_eq!(&out[8..], b"abc");
    }

    #[test]
    fn zeros_are_not_a_record() {
        assert!(matches!(
            decode_frame(&[0u8; 64], 0),
            Err(FrameError::Checksum { .. })
        ));
        let (records, end) = scan(&[0u8; 64]);
        assert!(records.is_empty());
        assert!(matches!(end, ScanEnd::TornTail { offset: 0, .. }));
    }

    #[test]
    fn scan_tells_a_torn_tail_from_corruption() {
        let data = frames(&[b"one", b"two", b"three"]);
        assert_eq!(scan(&data).0.len(), 3);
        assert_eq!(scan(&data).1, ScanEnd::Clean);

        for cut in 0..data.len() {
            let (records, end) = scan(&data[..cut]);
            let whole = records.last().map_or(0, |r| r.end);
            if whole == cut {
                assert_eq!(end, ScanEnd::Clean);
            } else {
                assert!(
                    matches!(end, ScanEnd::TornTail { offset, .. } if offset == whole),
                    "cut={cut}"
                );
            }
        }

        let second = HEADER_LEN + 3;
        for at in second..second + HEADER_LEN + 3 {
            let mut bad = data.clone();
            bad[at] ^= 0x40;
            let (records, end) = scan(&bad);
            assert_eq!(records.len(), 1);
            assert!(
                matches!(end, ScanEnd::Corrupt { offset, next_valid, .. } if offset == second && next_valid == 2 * second),
                "at={at}: {end:?}"
            );
        }
    }

    #[test]
    fn file_names_round_trip() {
        assert!(matches!(
            parse_name(&segment_name(Lsn(42))),
            FileKind::Segment(Lsn(42))
        ));
        assert!(matches!(parse_name(&tmp_name(Lsn(42))), FileKind::Tmp));
        for other in [
            "wal-1.log",
            "wal-0000000000000000000x.log",
            "x-00000000000000000000.log",
            "wal-00000000000000000001.bak",
        ] {
            assert!(matches!(parse_name(other), FileKind::Other), "{other}");
        }
        assert!(matches!(
            parse_name("wal-99999999999999999999.log"),
            FileKind::Other
        ));
    }
}
