//! Length-prefixed, versioned frames over a byte stream (sans-IO).
//!
//! Byte layout of one frame, all integers little-endian:
//!
//! ```text
//! version: u8 | kind: u8 | len: u32 LE | payload: [u8; len]
//! ```
//!
//! The 6-byte header is checked as soon as it is complete: an unknown version, an
//! unknown kind or a `len` above [`FRAME_LEN_MAX`] is refused with a typed
//! [`FrameError`] before a single byte of payload is buffered or allocated. Input
//! that ends inside a frame is not an error, only "need more bytes".
//!
//! [`decode_frame`] parses one frame from a buffer the caller owns;
//! [`FrameDecoder`] is the streaming form for a connection: it buffers at most one
//! frame (header plus at most [`FRAME_LEN_MAX`] payload bytes) and, once it has
//! refused its input, refuses everything after it (the connection must be closed).

use thiserror::Error;

/// The frame format version this code writes and accepts.
pub const WIRE_VERSION: u8 = 1;

/// Bytes in a frame header: version, kind and the payload length.
pub const HEADER_LEN: usize = 6;

/// The largest payload a frame may carry, in bytes (1 MiB). A header announcing
/// more is refused before anything is allocated.
pub const FRAME_LEN_MAX: u32 = 1 << 20;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// A handshake message ([`super::handshake`]).
    Handshake = 1,
    /// A protocol message, sent only after the handshake succeeded.
    Message = 2,
}

impl FrameKind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Handshake),
            2 => Some(Self::Message),
            _ => None,
        }
    }
}

/// Why bytes are not a frame.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// The header's version byte is not [`WIRE_VERSION`].
    #[error("unsupported frame version {version} (this node speaks {WIRE_VERSION})")]
    UnsupportedVersion {
        /// The version byte received.
        version: u8,
    },
    /// The header's kind byte names no [`FrameKind`].
    #[error("unknown frame kind {kind}")]
    UnknownKind {
        /// The kind byte received.
        kind: u8,
    },
    /// The payload length is above [`FRAME_LEN_MAX`] (announced by a header, or
    /// asked of [`Frame::new`]).
    #[error("frame payload of {len} bytes is above the limit of {FRAME_LEN_MAX} bytes")]
    TooLong {
        /// The payload length announced or asked for, in bytes.
        len: u64,
    },
}

/// One frame: a kind and a payload of at most [`FRAME_LEN_MAX`] bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    kind: FrameKind,
    payload: Vec<u8>,
}

impl Frame {
    /// A frame, or [`FrameError::TooLong`] if the payload is above [`FRAME_LEN_MAX`].
    pub fn new(kind: FrameKind, payload: Vec<u8>) -> Result<Self, FrameError> {
        if payload.len() as u64 > u64::from(FRAME_LEN_MAX) {
            return Err(FrameError::TooLong {
                len: payload.len() as u64,
            });
        }
        Ok(Self { kind, payload })
    }

    /// What the frame carries.
    pub fn kind(&self) -> FrameKind {
        self.kind
    }

    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload, taken out of the frame.
    pub fn into_payload(self) -> Vec<u8> {
        self.payload
    }

    /// Appends the encoded frame (header and payload) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // `new` bounded the payload, so the length fits in a u32.
        let len = u32::try_from(self.payload.len()).expect("payload bounded by Frame::new");
        out.reserve(HEADER_LEN + self.payload.len());
        out.push(WIRE_VERSION);
        out.push(self.kind as u8);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&self.payload);
    }

    /// The encoded frame as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Checks a complete header; returns the kind and the payload length.
fn parse_header(header: &[u8; HEADER_LEN]) -> Result<(FrameKind, usize), FrameError> {
    let [version, kind, l0, l1, l2, l3] = *header;
    if version != WIRE_VERSION {
        return Err(FrameError::UnsupportedVersion { version });
    }
    let kind = FrameKind::from_byte(kind).ok_or(FrameError::UnknownKind { kind })?;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    if len > FRAME_LEN_MAX {
        return Err(FrameError::TooLong {
            len: u64::from(len),
        });
    }
    // FRAME_LEN_MAX fits in usize on every supported target.
    Ok((kind, len as usize))
}

/// Decodes the frame at the start of `buf`: `Ok(Some((frame, bytes used)))`, or
/// `Ok(None)` if `buf` ends before the frame does (need more bytes). The header is
/// checked as soon as it is present, even if the payload is not.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let (kind, len) = parse_header(header)?;
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    Ok(Some((
        Frame {
            kind,
            payload: payload.to_vec(),
        },
        HEADER_LEN + len,
    )))
}

/// What one [`FrameDecoder::decode`] call did.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "the bytes not consumed must be fed again"]
pub struct Decoded {
    /// Input bytes consumed; the rest belongs to later frames and must be fed again.
    pub consumed: usize,
    /// The frame completed by this call, if any.
    pub frame: Option<Frame>,
}

/// The payload being collected once its header was accepted.
#[derive(Debug)]
struct Partial {
    kind: FrameKind,
    len: usize,
    payload: Vec<u8>,
}

/// A streaming frame decoder for one connection. It holds at most one frame:
/// [`HEADER_LEN`] header bytes, then a payload buffer of exactly the announced
/// length (at most [`FRAME_LEN_MAX`]), allocated only after the header passed.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    header: [u8; HEADER_LEN],
    header_filled: usize,
    partial: Option<Partial>,
    refused: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes bytes from `input` up to the end of the current frame. Returns
    /// the frame if this call completed one; call again with the unconsumed rest.
    /// After an error every later call returns the same error.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, FrameError> {
        if let Some(error) = &self.refused {
            return Err(error.clone());
        }
        let mut consumed = 0;
        if self.partial.is_none() {
            let want = HEADER_LEN - self.header_filled;
            let take = want.min(input.len());
            self.header[self.header_filled..self.header_filled + take]
                .copy_from_slice(&input[..take]);
            self.header_filled += take;
            consumed += take;
            if self.header_filled < HEADER_LEN {
                return Ok(Decoded {
                    consumed,
                    frame: None,
                });
            }
            match parse_header(&self.header) {
                Ok((kind, len)) => {
                    self.partial = Some(Partial {
                        kind,
                        len,
                        payload: Vec::with_capacity(len),
                    });
                }
                Err(error) => {
                    self.refused = Some(error.clone());
                    return Err(error);
                }
            }
        }
        let partial = self
            .partial
            .as_mut()
            .expect("set above or on an earlier call");
        let rest = &input[consumed..];
        let take = (partial.len - partial.payload.len()).min(rest.len());
        partial.payload.extend_from_slice(&rest[..take]);
        consumed += take;
        if partial.payload.len() < partial.len {
            return Ok(Decoded {
                consumed,
                frame: None,
            });
        }
        let Partial { kind, payload, .. } = self.partial.take().expect("checked above");
        self.header_filled = 0;
        Ok(Decoded {
            consumed,
            frame: Some(Frame { kind, payload }),
        })
    }

    /// True while the decoder holds part of a frame (some header or payload bytes
    /// of a frame not yet complete): a connection that stops here is stalled, not
    /// idle.
    pub fn in_frame(&self) -> bool {
        self.header_filled > 0 || self.partial.is_some()
    }

    /// Bytes the decoder holds allocated or reserved right now: the header plus the
    /// payload buffer's capacity. Never above `HEADER_LEN + FRAME_LEN_MAX`.
    pub fn buffered_capacity(&self) -> usize {
        HEADER_LEN + self.partial.as_ref().map_or(0, |p| p.payload.capacity())
    }

    /// Feeds all of `input`, returning every frame it completes, in order, or the
    /// first error (the frames completed before it are dropped with the connection).
    pub fn decode_all(&mut self, mut input: &[u8]) -> Result<Vec<Frame>, FrameError> {
        let mut frames = Vec::new();
        while !input.is_empty() {
            let decoded = self.decode(input)?;
            input = &input[decoded.consumed..];
            frames.extend(decoded.frame);
        }
        Ok(frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: FrameKind, payload: &[u8]) -> Frame {
        Frame::new(kind, payload.to_vec()).unwrap()
    }

    #[test]
    fn layout_is_version_kind_len_payload() {
        let bytes = frame(FrameKind::Message, b"abc").to_bytes();
        assert_eq!(bytes, [1, 2, 3, 0, 0, 0, b'a', b'b', b'c']);
    }

    #[test]
    fn round_trip_one_shot_and_streaming() {
        let frames = [
            frame(FrameKind::Handshake, b""),
            frame(FrameKind::Message, b"hello"),
            frame(FrameKind::Message, &[7; 300]),
        ];
        let mut stream = Vec::new();
        for f in &frames {
            f.encode(&mut stream);
        }
        let (first, used) = decode_frame(&stream).unwrap().unwrap();
        assert_eq!((first, used), (frames[0].clone(), HEADER_LEN));
        // One byte at a time: every frame comes out, in order.
        let mut decoder = FrameDecoder::new();
        let mut out = Vec::new();
        for byte in &stream {
            let decoded = decoder.decode(std::slice::from_ref(byte)).unwrap();
            assert_eq!(decoded.consumed, 1);
            out.extend(decoded.frame);
        }
        assert_eq!(out, frames);
    }

    #[test]
    fn truncated_input_needs_more_bytes() {
        let bytes = frame(FrameKind::Message, b"hello").to_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(decode_frame(&bytes[..cut]), Ok(None), "cut at {cut}");
            let mut decoder = FrameDecoder::new();
            assert_eq!(decoder.decode_all(&bytes[..cut]), Ok(vec![]));
        }
    }

    #[test]
    fn oversized_length_refused_from_the_header_alone() {
        let mut header = vec![WIRE_VERSION, FrameKind::Message as u8];
        header.extend_from_slice(&(FRAME_LEN_MAX + 1).to_le_bytes());
        let too_long = FrameError::TooLong {
            len: u64::from(FRAME_LEN_MAX) + 1,
        };
        assert_eq!(decode_frame(&header), Err(too_long.clone()));
        let mut decoder = FrameDecoder::new();
        assert_eq!(decoder.decode(&header), Err(too_long.clone()));
        assert_eq!(decoder.buffered_capacity(), HEADER_LEN);
        // Refused for good: the connection must be closed.
        assert_eq!(decoder.decode(&[0]), Err(too_long));
    }

    #[test]
    fn the_limit_itself_is_accepted() {
        let mut header = vec![WIRE_VERSION, FrameKind::Message as u8];
        header.extend_from_slice(&FRAME_LEN_MAX.to_le_bytes());
        let mut decoder = FrameDecoder::new();
        let decoded = decoder.decode(&header).unwrap();
        assert_eq!((decoded.consumed, decoded.frame), (HEADER_LEN, None));
        assert_eq!(
            decoder.buffered_capacity(),
            HEADER_LEN + FRAME_LEN_MAX as usize
        );
        let big = Frame::new(FrameKind::Message, vec![0; FRAME_LEN_MAX as usize]).unwrap();
        assert_eq!(decode_frame(&big.to_bytes()).unwrap().unwrap().0, big);
    }

    #[test]
    fn frame_new_refuses_an_oversized_payload() {
        let len = FRAME_LEN_MAX as usize + 1;
        assert_eq!(
            Frame::new(FrameKind::Message, vec![0; len]),
            Err(FrameError::TooLong { len: len as u64 })
        );
    }

    #[test]
    fn garbage_headers_are_typed_errors() {
        assert_eq!(
            decode_frame(&[2, 1, 0, 0, 0, 0]),
            Err(FrameError::UnsupportedVersion { version: 2 })
        );
        assert_eq!(
            decode_frame(&[WIRE_VERSION, 9, 0, 0, 0, 0]),
            Err(FrameError::UnknownKind { kind: 9 })
        );
        assert_eq!(
            FrameDecoder::new().decode_all(&[0, 0, 0, 0, 0, 0]),
            Err(FrameError::UnsupportedVersion { version: 0 })
        );
    }
}
