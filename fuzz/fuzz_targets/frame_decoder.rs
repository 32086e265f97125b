//! The frame decoder on arbitrary bytes, fed in arbitrary chunks: it never
//! panics, never holds more than one frame's worth of memory, and the streaming
//! decoder agrees with the one-shot `decode_frame` on the first frame.
#![no_main]

use eo_impl::runtime::frame::{decode_frame, FrameDecoder, FRAME_LEN_MAX, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so that splits land everywhere.
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split).max(1);
    let one_shot = decode_frame(bytes);
    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    let mut error = None;
    'feed: for piece in bytes.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            match decoder.decode(rest) {
                Ok(decoded) => {
                    assert!(decoded.consumed > 0 || decoded.frame.is_some());
                    rest = &rest[decoded.consumed..];
                    frames.extend(decoded.frame);
                }
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
            assert!(decoder.buffered_capacity() <= HEADER_LEN + FRAME_LEN_MAX as usize);
        }
    }
    match one_shot {
        Ok(Some((frame, _))) => assert_eq!(frames.first(), Some(&frame)),
        Ok(None) => assert!(frames.is_empty() && error.is_none()),
        Err(e) => assert!(frames.is_empty() && error == Some(e)),
    }
});
