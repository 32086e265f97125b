//! The bytes of a segment: its header, its frames, and its file name.
//!
//! ```text
//! segment = header | frame*
//! header  = magic: "EOWALSEG" | version: u32 LE | base: u64 LE | crc: u32 LE
//!           (24 bytes; crc = crc32c of the 20 bytes before it)
//! frame   = len: u32 LE | crc: u32 LE | kind: u8 | body: [u8; len]
//! crc     = crc32c(len as 4 LE bytes ++ kind ++ body)
//! kind    = 1 record | 2 snapshot part (more follow) | 3 snapshot end | 4 sync mark
//! ```
//!
//! A sync mark's body is the LSN of the last record before it (u64 LE): "a sync
//! of everything up to here was started". Nothing else is ever written.

use super::{FrameError, HeaderError, Lsn};
use std::ops::Range;

/// The first eight bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"EOWALSEG";

/// The segment format this code writes and reads. Version 0 (segments without a
/// header, before this one) is refused as not a segment.
pub const FORMAT_VERSION: u32 = 1;

/// Bytes of the segment header: magic, version, base, checksum.
pub const SEGMENT_HEADER_LEN: usize = 24;

/// Bytes before each frame's body: `len: u32 LE | crc: u32 LE | kind: u8`.
pub const HEADER_LEN: usize = 9;

/// The largest body of one frame: one record, or one part of a snapshot (1 MiB).
pub const RECORD_LEN_MAX: usize = 1 << 20;

/// The largest snapshot `compact` accepts and recovery reassembles (1 GiB). A
/// snapshot is split into parts of at most [`RECORD_LEN_MAX`] bytes.
pub const SNAPSHOT_LEN_MAX: u64 = 1 << 30;

/// The largest base a segment header may carry: far from `u64::MAX`, so that
/// counting records after it cannot overflow.
pub const LSN_MAX: u64 = 1 << 62;

/// Bytes of a sync mark's body: the LSN it covers.
pub const SYNC_MARK_BODY_LEN: usize = 8;

/// Bytes of a whole sync-mark frame.
pub const SYNC_MARK_LEN: usize = HEADER_LEN + SYNC_MARK_BODY_LEN;

/// Copies of the sync mark written before each sync. Two, so that one contiguous
/// overwrite shorter than `SYNC_MARK_LEN + 2` bytes cannot damage the last synced
/// record and every mark behind it.
pub const SYNC_MARK_COPIES: usize = 2;

const _: () = assert!(RECORD_LEN_MAX <= u32::MAX as usize);
const _: () = assert!(SNAPSHOT_LEN_MAX >= RECORD_LEN_MAX as u64);

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One record of the tail.
    Record = 1,
    /// A part of the snapshot; more parts follow.
    SnapshotPart = 2,
    /// The last (or only) part of the snapshot.
    SnapshotEnd = 3,
    /// A sync was started for every record before this frame.
    SyncMark = 4,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Record),
            2 => Some(Kind::SnapshotPart),
            3 => Some(Kind::SnapshotEnd),
            4 => Some(Kind::SyncMark),
            _ => None,
        }
    }

    fn body_len_max(self) -> usize {
        match self {
            Kind::SyncMark => SYNC_MARK_BODY_LEN,
            _ => RECORD_LEN_MAX,
        }
    }
}

// ---------------------------------------------------------------------------------
// Segment header
// ---------------------------------------------------------------------------------

pub(crate) fn encode_header(base: Lsn) -> [u8; SEGMENT_HEADER_LEN] {
    assert!(base.0 <= LSN_MAX, "bases stay far below u64::MAX");
    let mut out = [0u8; SEGMENT_HEADER_LEN];
    out[0..8].copy_from_slice(&SEGMENT_MAGIC);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[12..20].copy_from_slice(&base.0.to_le_bytes());
    let crc = crc32c::crc32c(&out[0..20]);
    out[20..24].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(decode_header(&out, base), Ok(()));
    out
}

/// Checks that `bytes` (the start of a file named for `base`) is a segment header
/// of this format for that base.
pub(crate) fn decode_header(bytes: &[u8], base: Lsn) -> Result<(), HeaderError> {
    let Some(header) = bytes.get(..SEGMENT_HEADER_LEN) else {
        return Err(HeaderError::TooShort { len: bytes.len() });
    };
    let magic: [u8; 8] = header[0..8].try_into().expect("8 bytes");
    if magic != SEGMENT_MAGIC {
        return Err(HeaderError::Magic { found: magic });
    }
    let stored = u32::from_le_bytes(header[20..24].try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(&header[0..20]);
    if stored != computed {
        return Err(HeaderError::Checksum { stored, computed });
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(HeaderError::Version { found: version });
    }
    let found = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
    if found != base.0 || found > LSN_MAX {
        return Err(HeaderError::Base {
            name: base,
            header: Lsn(found),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------

fn frame_crc(len_le: [u8; 4], kind: u8, body: &[u8]) -> u32 {
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len_le), &[kind]);
    crc32c::crc32c_append(crc, body)
}

/// Appends one frame to `out`.
pub(crate) fn encode_frame(kind: Kind, body: &[u8], out: &mut Vec<u8>) {
    assert!(body.len() <= kind.body_len_max(), "callers check lengths");
    let len_le = u32::try_from(body.len())
        .expect("RECORD_LEN_MAX fits in u32")
        .to_le_bytes();
    let start = out.len();
    out.extend_from_slice(&len_le);
    out.extend_from_slice(&frame_crc(len_le, kind as u8, body).to_le_bytes());
    out.push(kind as u8);
    out.extend_from_slice(body);
    // A frame must read back as written before it goes to disk.
    let frame = decode_frame(&out[start..]).expect("a frame just encoded decodes");
    assert_eq!((frame.kind, frame.len), (kind, out.len() - start));
}

/// Appends the sync mark for `lsn`, [`SYNC_MARK_COPIES`] times, to `out`.
pub(crate) fn encode_sync_mark(lsn: Lsn, out: &mut Vec<u8>) {
    for _ in 0..SYNC_MARK_COPIES {
        encode_frame(Kind::SyncMark, &lsn.0.to_le_bytes(), out);
    }
}

/// A valid frame at the start of a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub kind: Kind,
    /// The body's range within the buffer.
    pub body: Range<usize>,
    /// Bytes of the whole frame.
    pub len: usize,
}

impl Frame {
    /// The LSN a sync mark carries.
    pub fn mark_lsn(&self, data: &[u8]) -> Lsn {
        assert_eq!(self.kind, Kind::SyncMark);
        Lsn(u64::from_le_bytes(
            data[self.body.clone()].try_into().expect("checked length"),
        ))
    }
}

/// Reads the frame at the start of `data`. `data` must hold the whole rest of
/// the file, or at least `HEADER_LEN + RECORD_LEN_MAX` bytes of it, for
/// [`FrameError::PastEof`] to mean what it says.
pub(crate) fn decode_frame(data: &[u8]) -> Result<Frame, FrameError> {
    let available = data.len();
    if available < HEADER_LEN {
        return Err(FrameError::HeaderTorn { available });
    }
    let len_le: [u8; 4] = data[0..4].try_into().expect("4 bytes");
    let stored = u32::from_le_bytes(data[4..8].try_into().expect("4 bytes"));
    let kind_byte = data[8];
    let len = u32::from_le_bytes(len_le);
    let len_usize = len as usize;
    if len_usize > RECORD_LEN_MAX {
        return Err(FrameError::LenTooLarge { len });
    }
    if len_usize > available - HEADER_LEN {
        return Err(FrameError::PastEof { len, available });
    }
    let body = HEADER_LEN..HEADER_LEN + len_usize;
    let computed = frame_crc(len_le, kind_byte, &data[body.clone()]);
    if computed != stored {
        return Err(FrameError::Checksum { stored, computed });
    }
    let kind = Kind::from_byte(kind_byte).ok_or(FrameError::Kind { kind: kind_byte })?;
    if len_usize > kind.body_len_max() || (kind == Kind::SyncMark && len_usize != 8) {
        return Err(FrameError::Kind { kind: kind_byte });
    }
    Ok(Frame {
        kind,
        len: body.end,
        body,
    })
}

/// Whether `window` (at least [`SYNC_MARK_LEN`] bytes) starts with the length and
/// kind of a sync mark: the cheap filter before its checksum is computed.
pub(crate) fn may_be_sync_mark(window: &[u8]) -> bool {
    window[0..4] == (SYNC_MARK_BODY_LEN as u32).to_le_bytes() && window[8] == Kind::SyncMark as u8
}

/// Whether `window` starts with a valid sync mark. Constant work per call: this is
/// what keeps the search after a bad frame linear in the length of the tail.
pub(crate) fn is_sync_mark(window: &[u8]) -> bool {
    let window = &window[..SYNC_MARK_LEN];
    may_be_sync_mark(window) && decode_frame(window).is_ok()
}

// ---------------------------------------------------------------------------------
// File names
// ---------------------------------------------------------------------------------

const NAME_PREFIX: &str = "wal-";
const SEGMENT_SUFFIX: &str = ".log";
const TMP_SUFFIX: &str = ".tmp";
const NAME_DIGITS: usize = 20;

pub(crate) fn segment_name(base: Lsn) -> String {
    format!("{NAME_PREFIX}{:020}{SEGMENT_SUFFIX}", base.0)
}

pub(crate) fn tmp_name(base: Lsn) -> String {
    format!("{NAME_PREFIX}{:020}{TMP_SUFFIX}", base.0)
}

pub(crate) enum FileKind {
    Segment(Lsn),
    Tmp,
    Other,
}

pub(crate) fn parse_name(name: &str) -> FileKind {
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

pub(crate) fn parse_name_base(name: &str) -> Option<Lsn> {
    match parse_name(name) {
        FileKind::Segment(base) => Some(base),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_layout_is_len_crc_kind_body() {
        let mut out = Vec::new();
        encode_frame(Kind::Record, b"abc", &mut out);
        assert_eq!(&out[0..4], &3u32.to_le_bytes());
        let mut covered = 3u32.to_le_bytes().to_vec();
        covered.push(1);
        covered.extend_from_slice(b"abc");
        assert_eq!(&out[4..8], &crc32c::crc32c(&covered).to_le_bytes());
        assert_eq!(out[8], 1);
        assert_eq!(&out[9..], b"abc");
    }

    #[test]
    fn zeros_are_not_a_frame() {
        assert!(matches!(
            decode_frame(&[0u8; 64]),
            Err(FrameError::Checksum { .. })
        ));
        assert!(!is_sync_mark(&[0u8; 64]));
    }

    #[test]
    fn header_round_trips_and_refuses_every_single_flip() {
        let header = encode_header(Lsn(42));
        assert_eq!(decode_header(&header, Lsn(42)), Ok(()));
        assert!(matches!(
            decode_header(&header, Lsn(41)),
            Err(HeaderError::Base { .. })
        ));
        for at in 0..SEGMENT_HEADER_LEN {
            let mut bad = header;
            bad[at] ^= 0x10;
            assert!(decode_header(&bad, Lsn(42)).is_err(), "at={at}");
        }
        assert_eq!(
            decode_header(&header[..5], Lsn(42)),
            Err(HeaderError::TooShort { len: 5 })
        );
    }

    #[test]
    fn sync_marks_are_recognised_in_constant_work() {
        let mut out = Vec::new();
        encode_sync_mark(Lsn(7), &mut out);
        assert_eq!(out.len(), SYNC_MARK_COPIES * SYNC_MARK_LEN);
        assert!(is_sync_mark(&out[SYNC_MARK_LEN..]));
        assert!(is_sync_mark(&out));
        let frame = decode_frame(&out).unwrap();
        assert_eq!(frame.mark_lsn(&out), Lsn(7));
        let mut record = Vec::new();
        encode_frame(Kind::Record, &7u64.to_le_bytes(), &mut record);
        assert!(!is_sync_mark(&record), "a record of 8 bytes is not a mark");
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
            "wal-99999999999999999999.log",
        ] {
            assert!(matches!(parse_name(other), FileKind::Other), "{other}");
        }
    }
}
