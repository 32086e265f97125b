//! Recovery: one streaming pass over the live segment, in bounded memory.
//!
//! The segment is read in chunks of [`READ_CHUNK_LEN`] bytes through
//! [`Disk::read_exact_at`]; the buffer holds at most one frame plus one chunk.
//! Every byte is checksummed at most once by the main pass; after a bad frame the
//! search for a later sync mark looks at each offset once, with constant work per
//! offset (a sync mark has a fixed length), so a torn tail costs time linear in its
//! length whatever its content.

use super::format::{
    decode_frame, decode_header, is_sync_mark, may_be_sync_mark, Frame, Kind, HEADER_LEN,
    RECORD_LEN_MAX, SEGMENT_HEADER_LEN, SNAPSHOT_LEN_MAX, SYNC_MARK_BODY_LEN, SYNC_MARK_COPIES,
    SYNC_MARK_LEN,
};
use super::{io_error, Entry, FrameError, Lsn, RecoveryStats, WalError};
use crate::disk::Disk;

/// Bytes read from the disk at a time during recovery (1 MiB).
pub const READ_CHUNK_LEN: usize = 1 << 20;

/// How the pass over a segment ended.
#[derive(Debug)]
pub(crate) struct Scan {
    /// LSN of the last valid record (or of the snapshot, or `base`).
    pub lsn_last: Lsn,
    /// The last LSN that a sync mark (or the synced snapshot) covers.
    pub lsn_marked: Lsn,
    /// End of the last valid frame: where a torn tail is cut.
    pub valid_len: u64,
    /// Length of the file.
    pub file_len: u64,
    /// The first bad frame, if any, and why: a torn tail (no valid sync mark after it).
    pub torn: Option<FrameError>,
    /// Copies of the last sync mark that the pass ended without (0 unless a crash
    /// tore a mark's append between its copies): `open` appends them before any
    /// record, so that every mark on disk has all its copies behind one another.
    pub copies_missing: usize,
}

/// A window onto a file, refilled chunk by chunk.
struct Reader<'a, D: Disk> {
    disk: &'a D,
    name: &'a str,
    file_len: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_start: u64,
    stats: &'a mut RecoveryStats,
}

impl<D: Disk> Reader<'_, D> {
    /// The bytes from `offset` on: at least `need` of them, or all that remain.
    fn window(&mut self, offset: u64, need: usize) -> Result<&[u8], WalError> {
        assert!(offset <= self.file_len, "callers stay inside the file");
        let want_end = self.file_len.min(offset.saturating_add(need as u64));
        let buf_end = self.buf_start + self.buf.len() as u64;
        if offset < self.buf_start || offset > buf_end {
            self.buf.clear();
            self.buf_start = offset;
        } else if want_end > buf_end {
            // Keep the bytes from `offset` on, drop the ones already consumed.
            let consumed = (offset - self.buf_start) as usize;
            self.buf.drain(..consumed);
            self.buf_start = offset;
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if want_end > buf_end {
            let read_end = self
                .file_len
                .min(want_end.max(offset.saturating_add(READ_CHUNK_LEN as u64)));
            let old_len = self.buf.len();
            let new_len = usize::try_from(read_end - self.buf_start)
                .expect("a window is at most a frame plus a chunk");
            self.buf.reserve_exact(new_len - old_len);
            self.buf.resize(new_len, 0);
            self.disk
                .read_exact_at(self.name, buf_end, &mut self.buf[old_len..])
                .map_err(io_error("read", self.name))?;
            self.stats.bytes_read += (new_len - old_len) as u64;
            self.stats.buffer_len_max = self.stats.buffer_len_max.max(self.buf.capacity());
        }
        let start = (offset - self.buf_start) as usize;
        Ok(&self.buf[start..])
    }

    /// The frame at `offset` (or why there is none) and the bytes it lies in.
    fn frame_at(&mut self, offset: u64) -> Result<(Result<Frame, FrameError>, &[u8]), WalError> {
        let head = self.window(offset, HEADER_LEN)?;
        let need = match head.get(0..4) {
            Some(len) => {
                let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
                // Too large a length is refused from the header alone.
                HEADER_LEN + if len > RECORD_LEN_MAX { 0 } else { len }
            }
            None => HEADER_LEN,
        };
        self.stats.frames += 1;
        let (frame, len) = {
            let window = self.window(offset, need)?;
            let window = &window[..window.len().min(need)];
            (decode_frame(window), window.len())
        };
        if matches!(frame, Ok(_) | Err(FrameError::Checksum { .. })) {
            self.stats.crc_bytes += (len - 4) as u64;
        }
        // Already buffered: no second read.
        let window = self.window(offset, need)?;
        Ok((frame, &window[..len]))
    }

    /// Whether a valid sync mark naming `lsn` starts exactly at `at`.
    fn is_mark_copy_at(&mut self, at: u64, lsn: Lsn) -> Result<bool, WalError> {
        if at + SYNC_MARK_LEN as u64 > self.file_len {
            return Ok(false);
        }
        let window = self.window(at, SYNC_MARK_LEN)?;
        let window = &window[..SYNC_MARK_LEN];
        Ok(is_sync_mark(window)
            && decode_frame(window).expect("a valid mark").mark_lsn(window) == lsn)
    }

    /// The offset of the first valid sync mark at or after `from`, if any. Looks
    /// at each offset once, with constant work: linear in the bytes searched.
    fn find_sync_mark(&mut self, from: u64) -> Result<Option<u64>, WalError> {
        let mut at = from;
        while at + SYNC_MARK_LEN as u64 <= self.file_len {
            let window = self.window(at, SYNC_MARK_LEN)?;
            let candidates = window.len() - SYNC_MARK_LEN + 1;
            let mut probes = 0u64;
            let mut found = None;
            for i in 0..candidates {
                let candidate = &window[i..i + SYNC_MARK_LEN];
                if !may_be_sync_mark(candidate) {
                    continue;
                }
                probes += 1;
                if is_sync_mark(candidate) {
                    found = Some(at + i as u64);
                    break;
                }
            }
            self.stats.offsets_probed += found.map_or(candidates as u64, |f| f - at + 1);
            self.stats.crc_bytes += probes * (SYNC_MARK_LEN - 4) as u64;
            if found.is_some() {
                return Ok(found);
            }
            at += candidates as u64;
        }
        Ok(None)
    }
}

/// Reads the segment `name` (named for `base`), hands every snapshot and record to
/// `visit` in order, and stops at the first bad frame: a torn tail if no valid
/// sync mark follows it, [`WalError::Corrupt`] if one does.
pub(crate) fn scan<D: Disk>(
    disk: &D,
    name: &str,
    base: Lsn,
    stats: &mut RecoveryStats,
    visit: &mut dyn FnMut(Entry<'_>) -> Result<(), WalError>,
) -> Result<Scan, WalError> {
    let file_len = disk.file_len(name).map_err(io_error("stat", name))?;
    let mut reader = Reader {
        disk,
        name,
        file_len,
        buf: Vec::new(),
        buf_start: 0,
        stats,
    };
    let header = reader.window(0, SEGMENT_HEADER_LEN)?;
    decode_header(header, base).map_err(|reason| WalError::NotASegment {
        segment: name.to_owned(),
        reason,
    })?;
    let mut offset = SEGMENT_HEADER_LEN as u64;
    let damaged = |reason| WalError::SnapshotDamaged {
        segment: name.to_owned(),
        reason,
    };

    if base > Lsn::ZERO {
        // The snapshot was synced before its segment was renamed into place: any
        // damage to it is damage to durable data.
        let mut snapshot = Vec::new();
        loop {
            let (frame, window) = reader.frame_at(offset)?;
            let frame = frame.map_err(damaged)?;
            if !matches!(frame.kind, Kind::SnapshotPart | Kind::SnapshotEnd) {
                return Err(damaged(FrameError::Kind {
                    kind: frame.kind as u8,
                }));
            }
            let len = snapshot.len() as u64 + frame.body.len() as u64;
            if len > SNAPSHOT_LEN_MAX {
                return Err(damaged(FrameError::SnapshotTooLarge { len }));
            }
            snapshot.extend_from_slice(&window[frame.body.clone()]);
            offset += frame.len as u64;
            if frame.kind == Kind::SnapshotEnd {
                break;
            }
        }
        visit(Entry {
            lsn: base,
            snapshot: true,
            payload: &snapshot,
        })?;
    }

    let mut lsn_last = base;
    let mut lsn_marked = base;
    // Copies of the current sync mark seen (valid or skipped) since the last record.
    let mut copies = 0usize;
    while offset < file_len {
        let (frame, window) = reader.frame_at(offset)?;
        let kept_a_mark_header = kept_a_mark_header(window);
        let frame = match frame {
            Ok(frame) => frame,
            Err(_)
                if kept_a_mark_header
                    && copies % SYNC_MARK_COPIES != 0
                    && offset + SYNC_MARK_LEN as u64 <= file_len =>
            {
                // A damaged later copy of a mark: the copies are written in one
                // append, so after a first copy the next `SYNC_MARK_LEN` bytes were
                // the next copy, and they are all on disk (a torn append would end
                // the file before them). Nothing is lost; the first copy stands.
                // This needs every mark on disk to have all its copies: a lone
                // first copy left by a torn append is completed by `open` before
                // anything else is appended (`Scan::copies_missing`), or the
                // next record's first bytes would be skipped here as a copy.
                tracing::warn!(
                    segment = name,
                    offset,
                    "skipped a damaged copy of a sync mark"
                );
                reader.stats.marks_skipped += 1;
                copies += 1;
                offset += SYNC_MARK_LEN as u64;
                continue;
            }
            Err(_)
                if kept_a_mark_header
                    && reader.is_mark_copy_at(offset + SYNC_MARK_LEN as u64, lsn_last)? =>
            {
                // A damaged first copy of a mark: the intact copy right after it
                // names the last record before the damage, so the damaged bytes
                // held no record (a record there would make the copy name a later
                // LSN). Nothing is lost; the copy stands for both. The intact copy
                // alone proves nothing: a torn record may hold a valid mark at that
                // place in its payload, and what follows it would be taken for
                // records. Both rules therefore skip only bytes that kept a mark's
                // length or kind (`kept_a_mark_header`), which a record's header,
                // torn or not, never has unless damage changed it.
                tracing::warn!(
                    segment = name,
                    offset,
                    "skipped a damaged copy of a sync mark"
                );
                reader.stats.marks_skipped += 1;
                copies += 1;
                offset += SYNC_MARK_LEN as u64;
                continue;
            }
            Err(reason) => {
                return match reader.find_sync_mark(offset + 1)? {
                    Some(next_valid) => Err(WalError::Corrupt {
                        segment: name.to_owned(),
                        offset,
                        reason,
                        next_valid,
                    }),
                    None => Ok(Scan {
                        lsn_last,
                        lsn_marked,
                        valid_len: offset,
                        file_len,
                        torn: Some(reason),
                        copies_missing: copies_missing(copies),
                    }),
                };
            }
        };
        match frame.kind {
            Kind::Record => {
                copies = 0;
                lsn_last = Lsn(lsn_last.0 + 1);
                visit(Entry {
                    lsn: lsn_last,
                    snapshot: false,
                    payload: &window[frame.body.clone()],
                })?;
            }
            Kind::SyncMark => {
                let mark = frame.mark_lsn(window);
                if mark != lsn_last {
                    return Err(WalError::MarkMismatch {
                        segment: name.to_owned(),
                        offset,
                        mark,
                        expected: lsn_last,
                    });
                }
                lsn_marked = mark;
                copies += 1;
            }
            Kind::SnapshotPart | Kind::SnapshotEnd => {
                return Err(WalError::Misplaced {
                    segment: name.to_owned(),
                    offset,
                    kind: frame.kind as u8,
                });
            }
        }
        offset += frame.len as u64;
    }
    Ok(Scan {
        lsn_last,
        lsn_marked,
        valid_len: offset,
        file_len,
        torn: None,
        copies_missing: copies_missing(copies),
    })
}

/// Whether the bad frame in `window` still has a sync mark's length field or its
/// kind byte: damage to a mark copy that left either intact. A record's header has
/// neither (a record with an 8-byte body is a whole frame of `SYNC_MARK_LEN` bytes,
/// so if it is torn the file ends before any copy could follow it); so a crash
/// that tears a record never makes its bytes pass for a damaged copy.
fn kept_a_mark_header(window: &[u8]) -> bool {
    window.get(0..4) == Some(&(SYNC_MARK_BODY_LEN as u32).to_le_bytes()[..])
        || window.get(8) == Some(&(Kind::SyncMark as u8))
}

/// How many copies complete the last mark, given the copies seen since the last record.
fn copies_missing(copies: usize) -> usize {
    (SYNC_MARK_COPIES - copies % SYNC_MARK_COPIES) % SYNC_MARK_COPIES
}
