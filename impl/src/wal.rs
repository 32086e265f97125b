//! The write-ahead log: framed, checksummed records in one segment file, with
//! crash recovery, compaction to a snapshot of any size, positions, and group
//! commit.
//!
//! # Byte layout
//!
//! A segment starts with a 24-byte header: the magic bytes `EOWALSEG`, the format
//! version (1) as u32 LE, the segment's base LSN as u64 LE, and a crc32c of those
//! 20 bytes as u32 LE. Frames follow, each a length, a checksum, a kind byte and a
//! body. The checksum covers the length and the kind too, so a damaged length is a
//! checksum failure rather than a silent re-framing, and a run of zero bytes is
//! never a valid frame.
//!
//! ```text
//! segment = header | frame*
//! header  = magic: "EOWALSEG" | version: u32 LE | base: u64 LE | crc32c: u32 LE
//! frame   = len: u32 LE | crc: u32 LE | kind: u8 | body: [u8; len]
//! crc     = crc32c(len as 4 LE bytes ++ kind ++ body)
//! kind    = 1 record | 2 snapshot part (more follow) | 3 snapshot end | 4 sync mark
//! ```
//!
//! A record's body is at most [`RECORD_LEN_MAX`] bytes; larger appends are refused
//! with [`WalError::RecordTooLarge`]. A snapshot of up to [`SNAPSHOT_LEN_MAX`]
//! bytes is split into parts of at most `RECORD_LEN_MAX`. A **sync mark** (body:
//! the LSN of the last record before it, u64 LE) is written just before every
//! `fdatasync` that has something to sync: it says "a sync of every record up to
//! here was started".
//!
//! # Files and LSNs
//!
//! Records are numbered by a log sequence number ([`Lsn`]), 1, 2, 3, … in append
//! order; `Lsn(0)` means "nothing". The directory holds one live segment,
//! `wal-<base>.log`, `<base>` being 20 decimal digits (and the same base in the
//! header):
//!
//! - `base = 0`: the log was never compacted; its records have LSNs 1, 2, ….
//! - `base > 0`: the segment starts with a **snapshot** with LSN `base`, standing
//!   for every record before it; the records after it have LSNs `base + 1`, ….
//!
//! Every segment is born as `wal-<base>.tmp`, written (header, snapshot), synced,
//! then renamed to `.log` and the directory synced: a `.log` file always has a
//! complete header. A `.tmp` is a segment that was never finished. LSNs of records
//! lost in a crash (never synced) are reused by the next appends.
//!
//! # Recovery
//!
//! [`Wal::open`] picks the segment with the largest base (older ones are leftovers
//! of a compaction whose cleanup did not finish; their headers are checked before
//! they are removed) and checks its header: a file that is not a segment of this
//! format for its name's base is [`WalError::NotASegment`], never an empty log. It
//! then reads the segment in one streaming pass, frame by frame, up to the first
//! frame that is *bad*: an incomplete header, a length above `RECORD_LEN_MAX` or
//! past the end of the file, a checksum mismatch, or an unknown kind.
//!
//! The rule: **a bad frame followed, at any later byte offset, by a valid sync mark
//! is [`WalError::Corrupt`], naming both offsets; a bad frame with no valid sync
//! mark after it is a torn tail**, cut off (truncated and synced) and reported in
//! [`Recovered::truncated`]. Why this is sound: a sync that completed wrote its
//! mark *after* every record it made durable, so damage to a synced record always
//! has a mark behind it. A crash tears only the writes after the last sync, and
//! (under the prefix assumption below) nothing behind a tear survives, so a torn
//! tail never has a mark behind it. A mark whose LSN is not the LSN of the record
//! before it is [`WalError::MarkMismatch`].
//!
//! Marks are written in [`SYNC_MARK_COPIES`] (two) copies, in one append, so that
//! short damage cannot hit the last record and every mark behind it. A damaged copy
//! that kept a mark's length or kind byte (a record's header, torn or not, has
//! neither) is skipped (one mark's length): right after an odd number of copies,
//! with a mark's length of file left (the copies were one append, and a torn append
//! would have ended the file earlier); or right before an intact copy naming the
//! last record before the damage. `open` keeps the copies paired: when a crash tore
//! a mark's append between its copies, it appends the missing copy before anything
//! else, or the next record's first bytes would later pass for that copy.
//!
//! The snapshot of a compacted segment was synced before its rename: any bad frame
//! in it is [`WalError::SnapshotDamaged`]. After the pass, `open` appends a sync
//! mark if the last records are not covered by one (a process crash can leave
//! records written and never synced), or the missing copy of a torn mark, syncs
//! the segment, removes leftovers and syncs the directory: every record it returns
//! is durable and marked, so a driver may act on all of them.
//!
//! What the rule can and cannot tell apart:
//!
//! - Damage to any record that a completed sync covered is an error, as long as a
//!   copy of the mark of that sync (or of any later sync) is intact. Damage that
//!   covers a record *and* every later mark (contiguous damage of at least 19 bytes
//!   running to the end of the file through both copies of the last mark) looks
//!   exactly like a torn write and is cut off: that record is lost silently.
//! - Damage to one copy of a mark is skipped if the copy kept its length or kind;
//!   damage to both copies of the last mark is cut off as a torn tail. No record is
//!   lost either way.
//! - Damage to records that no sync covered is cut off with everything after it,
//!   even if valid unsynced records follow: they were never acknowledged.
//! - The rule assumes that a crash keeps a *prefix* of the unsynced writes (see
//!   [`crate::disk::SimDisk`]). A file system that wrote back pages of an
//!   unfinished sync out of order could leave a hole before the mark of that sync;
//!   that is reported as `Corrupt` (refusing to guess), although the records in
//!   the hole were never acknowledged.
//! - A torn record whose surviving bytes contain a valid sync mark frame (17
//!   specific bytes with a matching crc32c) is reported as `Corrupt`. For random
//!   bytes the chance is about 2⁻⁷² per offset; a payload could embed one on
//!   purpose, which makes a torn write of it a refusal to open (not a loss, and
//!   never a record taken from its payload).
//!
//! Recovery is linear: each frame is checksummed once, and the search for a mark
//! after a bad frame does constant work per offset. Memory is one frame plus one
//! [`READ_CHUNK_LEN`] read buffer, plus the snapshot reassembled; [`Wal::open_with`]
//! hands each record to a closure so that nothing else is held, and [`Wal::open`]
//! collects them into a [`Recovered`]. [`Wal::recovery_stats`] counts the work.
//!
//! # Compaction
//!
//! [`Wal::compact`] replaces the log by one snapshot, atomically:
//!
//! 1. write the header and the snapshot's parts to `wal-<b>.tmp` (`b` = last LSN
//!    + 1) and sync it;
//! 2. rename it to `wal-<b>.log` and sync the directory;
//! 3. switch appends to the new segment, remove the old one, sync the directory.
//!
//! A crash before the rename is durable leaves the old log (and maybe a `.tmp`,
//! removed at recovery); after it, the new log, complete because it was synced
//! before the rename. Never neither, never a mixture. Compaction makes everything
//! durable: the snapshot stands for every record appended before it.
//!
//! # Positions
//!
//! [`Wal::append`] returns the record's LSN; [`Wal::sync`] returns the durable LSN;
//! [`Wal::lsn_durable`] says how far the log is durable. [`GroupCommit`] adds an
//! append that does not wait and [`GroupCommit::wait_durable`], for threads.
//!
//! # Errors and poisoning
//!
//! After any I/O error the log is *poisoned*: every later call returns
//! [`WalError::Poisoned`]. A failed `fdatasync` may have dropped dirty pages that
//! a retry would then report as synced (PostgreSQL's "fsyncgate"), so the only
//! safe continuation is to reopen the log and recover from what is on disk.

mod format;
mod group_commit;
mod recovery;

pub use format::{
    FORMAT_VERSION, HEADER_LEN, LSN_MAX, RECORD_LEN_MAX, SEGMENT_HEADER_LEN, SEGMENT_MAGIC,
    SNAPSHOT_LEN_MAX, SYNC_MARK_COPIES, SYNC_MARK_LEN,
};
pub use group_commit::GroupCommit;
pub use recovery::READ_CHUNK_LEN;

use crate::disk::{Disk, FileSync};
use format::{
    encode_frame, encode_header, encode_sync_mark, parse_name, parse_name_base, segment_name,
    tmp_name, FileKind, Kind,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;

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

/// Why the bytes at some offset are not a valid frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer than `HEADER_LEN` bytes remain in the file.
    #[error("incomplete header ({available} bytes left)")]
    HeaderTorn { available: usize },
    /// The length field exceeds `RECORD_LEN_MAX`.
    #[error("length {len} exceeds the record size limit")]
    LenTooLarge { len: u32 },
    /// The frame would end past the end of the file.
    #[error("length {len} runs past the end of the file ({available} bytes left)")]
    PastEof { len: u32, available: usize },
    /// The stored checksum does not match the length, kind and body.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
    /// The checksum matches but the kind is unknown, or cannot be at this place
    /// (a record inside a snapshot, a sync mark of the wrong length).
    #[error("frame kind {kind} is unknown or out of place")]
    Kind { kind: u8 },
    /// The parts of a snapshot add up to more than `SNAPSHOT_LEN_MAX`.
    #[error("snapshot parts add up to {len} bytes, above the snapshot size limit")]
    SnapshotTooLarge { len: u64 },
}

/// Why a file named like a segment is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The file is shorter than a segment header.
    #[error("{len} bytes, shorter than a segment header")]
    TooShort { len: usize },
    /// The file does not start with `SEGMENT_MAGIC`.
    #[error("no segment magic (found {found:02x?})")]
    Magic { found: [u8; 8] },
    /// The header's checksum does not match.
    #[error("header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
    /// A format version this code does not read.
    #[error("format version {found} (this code reads version 1)")]
    Version { found: u32 },
    /// The header's base is not the base in the file name (or is above `LSN_MAX`).
    #[error("header base {header} does not match the file name's base {name}")]
    Base { name: Lsn, header: Lsn },
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
    /// A bad frame is followed by a valid sync mark: damage to data that a sync
    /// covered (or was covering), not a torn write. Nothing was truncated.
    #[error("corrupt log {segment:?} at offset {offset}: {reason}; a valid sync mark follows at offset {next_valid}")]
    Corrupt {
        segment: String,
        offset: u64,
        reason: FrameError,
        next_valid: u64,
    },
    /// The snapshot at the head of a compacted segment is missing or invalid.
    #[error("damaged snapshot in {segment:?}: {reason}")]
    SnapshotDamaged { segment: String, reason: FrameError },
    /// A file named like a segment does not carry a valid segment header for its
    /// name: it was not written by this log (or not by this format version).
    #[error("{segment:?} is not a log segment: {reason}")]
    NotASegment {
        segment: String,
        reason: HeaderError,
    },
    /// A valid sync mark names another LSN than that of the record before it.
    #[error("sync mark at offset {offset} of {segment:?} names {mark}, but the record before it is {expected}")]
    MarkMismatch {
        segment: String,
        offset: u64,
        mark: Lsn,
        expected: Lsn,
    },
    /// A valid snapshot frame in the tail of a segment.
    #[error("snapshot frame (kind {kind}) after the snapshot at offset {offset} of {segment:?}")]
    Misplaced {
        segment: String,
        offset: u64,
        kind: u8,
    },
    /// A payload longer than `RECORD_LEN_MAX` was refused.
    #[error("record of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge { len: usize, max: usize },
    /// A snapshot longer than `SNAPSHOT_LEN_MAX` was refused.
    #[error("snapshot of {len} bytes exceeds the limit of {max} bytes")]
    SnapshotTooLarge { len: u64, max: u64 },
    /// A wait for an LSN that was never appended.
    #[error("cannot wait for {lsn}: the last appended record is {lsn_last}")]
    NotAppended { lsn: Lsn, lsn_last: Lsn },
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
// Recovery results
// ---------------------------------------------------------------------------------

/// What [`Wal::open`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// LSN of the snapshot, or `Lsn(0)` if the log was never compacted.
    pub base: Lsn,
    /// The snapshot the log was last compacted to, reassembled from its parts.
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
    /// Where the first bad frame started: the file's new length.
    pub offset: u64,
    /// How many bytes were cut off.
    pub len: u64,
    /// Why the first cut-off frame was bad.
    pub reason: FrameError,
}

/// One recovered payload, as [`Wal::open_with`] hands it over.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    /// The record's LSN (the snapshot's is the segment's base).
    pub lsn: Lsn,
    /// True for the snapshot, which comes first and stands for every earlier LSN.
    pub snapshot: bool,
    /// The payload, valid for this call only.
    pub payload: &'a [u8],
}

/// What a streaming recovery ([`Wal::open_with`]) found, apart from the records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// LSN of the snapshot, or `Lsn(0)` if the log was never compacted.
    pub base: Lsn,
    /// The last recovered LSN (the snapshot's if there is no tail).
    pub lsn_last: Lsn,
    /// The torn tail that was cut off (and the cut synced), if any.
    pub truncated: Option<Truncation>,
}

/// The work of the last recovery, for tests and measurements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Bytes read from the segment.
    pub bytes_read: u64,
    /// Frames decoded by the main pass.
    pub frames: u64,
    /// Bytes fed to crc32c (frames and sync-mark candidates).
    pub crc_bytes: u64,
    /// Offsets examined by the search for a sync mark after a bad frame.
    pub offsets_probed: u64,
    /// The largest capacity of the read buffer, in bytes.
    pub buffer_len_max: usize,
    /// Damaged first copies of a sync mark, skipped because the second copy is
    /// intact and names the same record.
    pub marks_skipped: u64,
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
    /// This life of the log: fresh at each open (see [`crate::release::LogId`]).
    pub(crate) log_id: crate::release::LogId,
    /// Name of the live segment.
    segment: String,
    /// LSN of the live segment's snapshot; `Lsn(0)` if none.
    base: Lsn,
    /// LSN of the last appended record.
    lsn_last: Lsn,
    /// Every record up to this LSN is durable.
    lsn_durable: Lsn,
    /// Bytes in the live segment, header included.
    len_bytes: u64,
    /// `fdatasync`s of log files since `open`.
    sync_count: u64,
    poisoned: bool,
    /// Reused buffer for framing.
    frame: Vec<u8>,
    /// The work `open` did.
    recovery_stats: RecoveryStats,
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

/// Writes a new segment as `wal-<base>.tmp` (header, then the snapshot's parts if
/// any), syncs it, renames it to `wal-<base>.log` and syncs the directory. Returns
/// the segment's length. Errors name the operation and file that failed.
fn write_segment<D: Disk>(
    disk: &mut D,
    base: Lsn,
    snapshot: Option<&[u8]>,
    frame: &mut Vec<u8>,
) -> Result<u64, (&'static str, String, io::Error)> {
    let tmp = tmp_name(base);
    let segment = segment_name(base);
    let on_tmp = |op| {
        let tmp = tmp.clone();
        move |e| (op, tmp, e)
    };
    disk.create(&tmp).map_err(on_tmp("create"))?;
    disk.append(&tmp, &encode_header(base))
        .map_err(on_tmp("append"))?;
    let mut len = SEGMENT_HEADER_LEN as u64;
    if let Some(snapshot) = snapshot {
        let mut parts = snapshot.chunks(RECORD_LEN_MAX).peekable();
        if parts.peek().is_none() {
            frame.clear();
            encode_frame(Kind::SnapshotEnd, &[], frame);
            disk.append(&tmp, frame).map_err(on_tmp("append"))?;
            len += frame.len() as u64;
        }
        while let Some(part) = parts.next() {
            let kind = if parts.peek().is_some() {
                Kind::SnapshotPart
            } else {
                Kind::SnapshotEnd
            };
            frame.clear();
            encode_frame(kind, part, frame);
            disk.append(&tmp, frame).map_err(on_tmp("append"))?;
            len += frame.len() as u64;
        }
    }
    disk.sync(&tmp).map_err(on_tmp("sync"))?;
    disk.rename(&tmp, &segment).map_err(on_tmp("rename"))?;
    disk.sync_dir()
        .map_err(|e| ("sync_dir", segment.clone(), e))?;
    Ok(len)
}

impl<D: Disk> Wal<D> {
    /// Opens the log on `disk`, creating an empty one if there is none, and
    /// recovers it (see the module docs). Every recovered record is durable when
    /// this returns. Holds every record in memory; see [`Wal::open_with`] for a
    /// streaming recovery.
    pub fn open(disk: D) -> Result<(Wal<D>, Recovered), WalError> {
        let mut snapshot = None;
        let mut records = Vec::new();
        let (wal, recovery) = Wal::open_with(disk, |entry| {
            if entry.snapshot {
                snapshot = Some(entry.payload.to_vec());
            } else {
                records.push(entry.payload.to_vec());
            }
            Ok(())
        })?;
        let recovered = Recovered {
            base: recovery.base,
            snapshot,
            records,
            truncated: recovery.truncated,
        };
        assert_eq!(recovered.lsn_last(), wal.lsn_last());
        Ok((wal, recovered))
    }

    /// Opens the log like [`Wal::open`] but hands each recovered payload, the
    /// snapshot first, to `visit` as it is read, holding only one frame (and the
    /// snapshot) in memory. An error from `visit` stops recovery and is returned.
    ///
    /// Records are handed over before the end of the segment has been checked: if
    /// this returns an error, discard whatever `visit` built.
    pub fn open_with(
        mut disk: D,
        mut visit: impl FnMut(Entry<'_>) -> Result<(), WalError>,
    ) -> Result<(Wal<D>, Recovery), WalError> {
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
        let mut frame = Vec::new();
        let base = match segments.pop() {
            Some(base) => base,
            None => {
                // A `.tmp` of a creation that did not finish is reused, not a leftover.
                let tmp = tmp_name(Lsn::ZERO);
                leftovers.retain(|name| *name != tmp);
                write_segment(&mut disk, Lsn::ZERO, None, &mut frame)
                    .map_err(|(op, file, source)| WalError::Io { op, file, source })?;
                Lsn::ZERO
            }
        };
        // Older segments are superseded by `base`; they are removed below, but only
        // if they are segments: a file this log did not write is never deleted.
        for old in segments {
            let name = segment_name(old);
            let len = disk.file_len(&name).map_err(io_error("stat", &name))?;
            let mut header = vec![0u8; len.min(SEGMENT_HEADER_LEN as u64) as usize];
            disk.read_exact_at(&name, 0, &mut header)
                .map_err(io_error("read", &name))?;
            format::decode_header(&header, old).map_err(|reason| WalError::NotASegment {
                segment: name.clone(),
                reason,
            })?;
            leftovers.push(name);
        }

        let segment = segment_name(base);
        let mut stats = RecoveryStats::default();
        let scan = recovery::scan(&disk, &segment, base, &mut stats, &mut visit)?;
        let truncated = match scan.torn {
            Some(reason) => {
                disk.truncate(&segment, scan.valid_len)
                    .map_err(io_error("truncate", &segment))?;
                let truncation = Truncation {
                    segment: segment.clone(),
                    offset: scan.valid_len,
                    len: scan.file_len - scan.valid_len,
                    reason,
                };
                tracing::warn!(?truncation, "truncated a torn tail of the log");
                Some(truncation)
            }
            None => None,
        };
        let mut len_bytes = scan.valid_len;
        let copies_missing = if scan.lsn_marked < scan.lsn_last {
            // Written but never covered by a sync mark (a process crash): mark them,
            // so that damage to them after this sync is an error, not a torn tail.
            SYNC_MARK_COPIES
        } else {
            // A crash tore the last mark's append between its copies: complete the
            // mark, or recovery would later take the next record's first bytes for
            // the missing copy and skip them.
            scan.copies_missing
        };
        if copies_missing > 0 {
            frame.clear();
            encode_sync_mark(scan.lsn_last, &mut frame);
            // The copies are identical: the last `copies_missing` are the same bytes.
            frame.truncate(copies_missing * SYNC_MARK_LEN);
            disk.append(&segment, &frame)
                .map_err(io_error("append", &segment))?;
            len_bytes += frame.len() as u64;
        }
        // Durable before anything is returned: the truncation, the mark, and
        // records that a process crash may have left only in the operating
        // system's cache.
        disk.sync(&segment).map_err(io_error("sync", &segment))?;
        if !leftovers.is_empty() {
            for name in &leftovers {
                disk.remove(name).map_err(io_error("remove", name))?;
            }
            disk.sync_dir().map_err(io_error("sync_dir", &segment))?;
        }

        let recovery = Recovery {
            base,
            lsn_last: scan.lsn_last,
            truncated,
        };
        tracing::info!(%segment, lsn_last = %scan.lsn_last, bytes = len_bytes, "opened the log");
        let wal = Wal {
            disk,
            log_id: crate::release::LogId::fresh(),
            segment,
            base,
            lsn_last: scan.lsn_last,
            lsn_durable: scan.lsn_last,
            len_bytes,
            sync_count: 0,
            poisoned: false,
            frame,
            recovery_stats: stats,
        };
        wal.assert_invariants();
        Ok((wal, recovery))
    }

    /// Opens the log like [`Wal::open_with`], decoding each payload with postcard
    /// and handing it to `visit` with its LSN (the snapshot first).
    pub fn open_decode<T: DeserializeOwned>(
        disk: D,
        mut visit: impl FnMut(Lsn, T),
    ) -> Result<(Wal<D>, Recovery), WalError> {
        Wal::open_with(disk, |entry| {
            let value = postcard::from_bytes(entry.payload).map_err(|source| WalError::Decode {
                lsn: entry.lsn,
                source,
            })?;
            visit(entry.lsn, value);
            Ok(())
        })
    }

    /// Appends one record and returns its LSN. It is written but not durable until
    /// [`Wal::sync`] returns an LSN at or past it.
    pub fn append(&mut self, payload: &[u8]) -> Result<Lsn, WalError> {
        self.check_usable()?;
        check_len(payload.len())?;
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        encode_frame(Kind::Record, payload, &mut frame);
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

    /// Writes a sync mark and `fdatasync`s: every record appended so far is durable
    /// when this returns. Returns the durable LSN. Does no I/O if nothing is
    /// waiting to be synced.
    pub fn sync(&mut self) -> Result<Lsn, WalError> {
        self.check_usable()?;
        if self.lsn_durable == self.lsn_last {
            return Ok(self.lsn_durable);
        }
        let job = self.sync_begin()?;
        let result = job.syncer.sync_data();
        self.sync_end(job.target, result)
    }

    /// Appends the sync mark for everything appended so far and takes a handle to
    /// sync it. The mark goes before the sync: a completed sync always has its
    /// mark on disk behind the records it made durable.
    fn sync_begin(&mut self) -> Result<SyncJob<D::Syncer>, WalError> {
        self.check_usable()?;
        let target = self.lsn_last;
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        encode_sync_mark(target, &mut frame);
        let result = self.disk.append(&self.segment, &frame);
        self.frame = frame;
        self.io(result, "append")?;
        self.len_bytes += (SYNC_MARK_COPIES * SYNC_MARK_LEN) as u64;
        let result = self.disk.syncer(&self.segment);
        let syncer = self.io(result, "sync")?;
        self.sync_count += 1;
        Ok(SyncJob { target, syncer })
    }

    fn sync_end(&mut self, target: Lsn, result: io::Result<()>) -> Result<Lsn, WalError> {
        self.io(result, "sync")?;
        // A compaction may have run meanwhile and made more durable already.
        self.lsn_durable = self.lsn_durable.max(target);
        self.assert_invariants();
        tracing::debug!(lsn_durable = %self.lsn_durable, "synced the log");
        Ok(self.lsn_durable)
    }

    /// Replaces the whole log by one snapshot, durably and atomically (see the
    /// module docs). A snapshot longer than [`RECORD_LEN_MAX`] is split into parts
    /// and reassembled at recovery; one longer than [`SNAPSHOT_LEN_MAX`] is
    /// refused. Afterwards the log holds the snapshot, with LSN `lsn_last() + 1`,
    /// and everything is durable.
    pub fn compact(&mut self, snapshot: &[u8]) -> Result<(), WalError> {
        self.check_usable()?;
        if snapshot.len() as u64 > SNAPSHOT_LEN_MAX {
            return Err(WalError::SnapshotTooLarge {
                len: snapshot.len() as u64,
                max: SNAPSHOT_LEN_MAX,
            });
        }
        let base = self.lsn_last.next();
        let mut frame = std::mem::take(&mut self.frame);
        let result = write_segment(&mut self.disk, base, Some(snapshot), &mut frame);
        self.frame = frame;
        let len = match result {
            Ok(len) => len,
            Err((op, file, e)) => return self.io_on(Err(e), op, &file),
        };
        self.sync_count += 1;

        // The new segment is durable and has the largest base: it is the log now.
        let old = std::mem::replace(&mut self.segment, segment_name(base));
        self.base = base;
        self.lsn_last = base;
        self.lsn_durable = base;
        self.len_bytes = len;
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

    /// Size of the live segment in bytes (header, snapshot and sync marks
    /// included): what recovery reads.
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

    /// The work that `open` did to recover the log.
    pub fn recovery_stats(&self) -> RecoveryStats {
        self.recovery_stats
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
        assert!(self.len_bytes >= SEGMENT_HEADER_LEN as u64);
        // A snapshot segment always holds at least its snapshot frame.
        assert!(
            self.base == Lsn::ZERO || self.len_bytes >= (SEGMENT_HEADER_LEN + HEADER_LEN) as u64
        );
    }
}
