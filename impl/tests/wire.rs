//! The wire, end to end and under attack: scripted handshakes (success and each
//! refusal), and proptest feeding random and adversarial bytes to the frame decoder
//! and the handshake — never a panic, never an allocation above the frame limit.

use eo_impl::runtime::frame::{
    decode_frame, Frame, FrameDecoder, FrameError, FrameKind, FRAME_LEN_MAX, HEADER_LEN,
    WIRE_VERSION,
};
use eo_impl::runtime::handshake::{
    Acceptor, ClusterKey, HandshakeConfig, HandshakeError, Identity, Initiator, Nonce, Peer,
    Protocol, CLUSTER_KEY_LEN_MAX, CLUSTER_KEY_LEN_MIN, HANDSHAKE_VERSION, NONCE_LEN,
};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha2::Sha256;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

// ---------------------------------------------------------------------------
// The largest single allocation made by this thread, so that a test can measure
// what the decoder allocates for a given input.

struct PeakAlloc;

thread_local! {
    static PEAK_BYTES: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = PEAK_BYTES.try_with(|peak| peak.set(peak.get().max(size)));
}

unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// Runs `f` and returns its result with the largest single allocation it made.
fn peak_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    PEAK_BYTES.with(|peak| peak.set(0));
    let result = f();
    (result, PEAK_BYTES.with(Cell::get))
}

// ---------------------------------------------------------------------------
// Handshake fixtures: a cluster of nodes 1 (dialer) and 2 (listener).

const CLUSTER: u64 = 7;
const KEY: &[u8] = b"sixteen byte key, and a few more";
const OTHER_KEY: &[u8] = b"another key, also long enough...";

fn key(bytes: &[u8]) -> Option<ClusterKey> {
    Some(ClusterKey::new(bytes.to_vec()).unwrap())
}

fn config(node_id: u32, peers: &[u32], key: Option<ClusterKey>) -> HandshakeConfig {
    HandshakeConfig {
        local: Identity {
            protocol: Protocol::AckRetry,
            cluster_id: CLUSTER,
            node_id,
            incarnation: u64::from(node_id) * 100,
        },
        peers: peers.iter().copied().collect(),
        key,
    }
}

fn nonce(byte: u8) -> Nonce {
    Nonce([byte; NONCE_LEN])
}

/// The frames of one handshake between `dialer` (dialing node 2) and `listener`.
struct Transcript {
    hello: Frame,
    challenge: Frame,
    finish: Frame,
}

/// Runs a whole handshake; returns what each side established and the transcript.
fn handshake(
    dialer: &HandshakeConfig,
    listener: &HandshakeConfig,
    nonces: (u8, u8),
) -> Result<(Peer, Peer, Transcript), HandshakeError> {
    let (initiator, hello) = Initiator::start(dialer.clone(), 2, nonce(nonces.0))?;
    let (acceptor, challenge) = Acceptor::accept(listener, nonce(nonces.1), &hello)?;
    let (dialer_sees, finish) = initiator.handle_challenge(&challenge)?;
    let listener_sees = acceptor.handle_finish(&finish)?;
    Ok((
        dialer_sees,
        listener_sees,
        Transcript {
            hello,
            challenge,
            finish,
        },
    ))
}

fn with_byte(frame: &Frame, index: usize, byte: u8) -> Frame {
    let mut payload = frame.payload().to_vec();
    payload[index] = byte;
    Frame::new(frame.kind(), payload).unwrap()
}

/// Offsets in a Hello payload (type byte first, then the identity).
const HELLO_VERSION: usize = 1;
const HELLO_PROTOCOL: usize = 2;
const HELLO_AUTH: usize = 3;
const HELLO_INCARNATION: usize = 1 + 3 + 8 + 4;
/// version, protocol, auth, cluster id, node id, incarnation, nonce.
const IDENTITY_LEN: usize = 3 + 8 + 4 + 8 + NONCE_LEN;

#[test]
fn handshake_with_and_without_key_names_both_peers() {
    for k in [None, key(KEY)] {
        let (dialer_sees, listener_sees, transcript) = handshake(
            &config(1, &[2], k.clone()),
            &config(2, &[1, 3], k.clone()),
            (1, 2),
        )
        .unwrap();
        assert_eq!(
            dialer_sees,
            Peer {
                node_id: 2,
                incarnation: 200
            }
        );
        assert_eq!(
            listener_sees,
            Peer {
                node_id: 1,
                incarnation: 100
            }
        );
        let mac_len = if k.is_some() { 32 } else { 0 };
        assert_eq!(transcript.hello.payload().len(), 1 + IDENTITY_LEN);
        assert_eq!(
            transcript.challenge.payload().len(),
            1 + IDENTITY_LEN + 32 + mac_len
        );
        assert_eq!(transcript.finish.payload().len(), 1 + 32 + mac_len);
    }
}

#[test]
fn handshake_over_the_byte_stream() {
    // Every message goes through encode → streaming decoder, byte by byte.
    fn carry(frame: &Frame) -> Frame {
        let mut decoder = FrameDecoder::new();
        let mut frames = Vec::new();
        for byte in frame.to_bytes() {
            frames.extend(decoder.decode(&[byte]).unwrap().frame);
        }
        assert_eq!(frames.len(), 1);
        frames.pop().unwrap()
    }
    let (initiator, hello) = Initiator::start(config(1, &[2], key(KEY)), 2, nonce(1)).unwrap();
    let (acceptor, challenge) =
        Acceptor::accept(&config(2, &[1], key(KEY)), nonce(2), &carry(&hello)).unwrap();
    let (_, finish) = initiator.handle_challenge(&carry(&challenge)).unwrap();
    assert_eq!(acceptor.handle_finish(&carry(&finish)).unwrap().node_id, 1);
}

#[test]
fn unknown_peer_id_is_refused() {
    // The listener knows only node 3; node 1 says hello.
    assert_eq!(
        handshake(
            &config(1, &[2], key(KEY)),
            &config(2, &[3], key(KEY)),
            (1, 2)
        )
        .err(),
        Some(HandshakeError::UnknownPeer { node_id: 1 })
    );
    // A node does not dial an id outside its configuration.
    assert_eq!(
        Initiator::start(config(1, &[3], None), 2, nonce(1)).err(),
        Some(HandshakeError::UnknownPeer { node_id: 2 })
    );
    // The dialer knows nodes 2 and 3 and dialed 2, but node 3 answered.
    let (initiator, hello) = Initiator::start(config(1, &[2, 3], None), 2, nonce(1)).unwrap();
    let (_, challenge) = Acceptor::accept(&config(3, &[1], None), nonce(2), &hello).unwrap();
    assert_eq!(
        initiator.handle_challenge(&challenge).err(),
        Some(HandshakeError::UnexpectedPeer {
            expected: 2,
            got: 3
        })
    );
}

#[test]
fn wrong_key_is_refused_by_the_dialer() {
    // The listener holds another key: its Challenge's MAC does not verify.
    assert_eq!(
        handshake(
            &config(1, &[2], key(KEY)),
            &config(2, &[1], key(OTHER_KEY)),
            (1, 2)
        )
        .err(),
        Some(HandshakeError::WrongKey)
    );
}

#[test]
fn wrong_key_is_refused_by_the_listener() {
    // A dialer with another key that ignores the Challenge's MAC and answers
    // with its own: the listener refuses its Finish.
    let (_, _, transcript) = handshake(
        &config(1, &[2], key(KEY)),
        &config(2, &[1], key(KEY)),
        (1, 2),
    )
    .unwrap();
    let (acceptor, challenge) =
        Acceptor::accept(&config(2, &[1], key(KEY)), nonce(2), &transcript.hello).unwrap();
    let challenge_body = &challenge.payload()[..challenge.payload().len() - 32];
    let mut mac = Hmac::<Sha256>::new_from_slice(OTHER_KEY).unwrap();
    mac.update(b"eo-wire/1 initiator");
    mac.update(transcript.hello.payload());
    mac.update(challenge_body);
    let mut finish = vec![3];
    finish.extend_from_slice(&[2; NONCE_LEN]);
    finish.extend_from_slice(&mac.finalize().into_bytes());
    let finish = Frame::new(FrameKind::Handshake, finish).unwrap();
    assert_eq!(
        acceptor.handle_finish(&finish).err(),
        Some(HandshakeError::WrongKey)
    );
}

#[test]
fn replayed_handshake_is_refused() {
    let dialer = config(1, &[2], key(KEY));
    let listener = config(2, &[1], key(KEY));
    let (_, _, recorded) = handshake(&dialer, &listener, (1, 2)).unwrap();

    // The recorded Hello and Finish replayed against a fresh challenge (nonce 9).
    let (acceptor, _) = Acceptor::accept(&listener, nonce(9), &recorded.hello).unwrap();
    assert_eq!(
        acceptor.handle_finish(&recorded.finish).err(),
        Some(HandshakeError::Replayed)
    );
    // Echoing the fresh nonce instead does not help: the MAC covers it.
    let (acceptor, _) = Acceptor::accept(&listener, nonce(9), &recorded.hello).unwrap();
    let mut forged = recorded.finish.payload().to_vec();
    forged[1..1 + NONCE_LEN].copy_from_slice(&[9; NONCE_LEN]);
    let forged = Frame::new(FrameKind::Handshake, forged).unwrap();
    assert_eq!(
        acceptor.handle_finish(&forged).err(),
        Some(HandshakeError::WrongKey)
    );
    // The recorded Challenge replayed to a dialer with a fresh nonce (8).
    let (initiator, _) = Initiator::start(dialer, 2, nonce(8)).unwrap();
    assert_eq!(
        initiator.handle_challenge(&recorded.challenge).err(),
        Some(HandshakeError::Replayed)
    );
}

#[test]
fn reflected_mac_is_refused() {
    // A process without the key says hello as node 1, then answers the Challenge
    // with the listener's own MAC: the two directions use distinct labels.
    let (_, hello) = Initiator::start(config(1, &[2], key(KEY)), 2, nonce(1)).unwrap();
    let (acceptor, challenge) =
        Acceptor::accept(&config(2, &[1], key(KEY)), nonce(2), &hello).unwrap();
    let listener_mac = &challenge.payload()[challenge.payload().len() - 32..];
    let mut finish = vec![3];
    finish.extend_from_slice(&[2; NONCE_LEN]);
    finish.extend_from_slice(listener_mac);
    let finish = Frame::new(FrameKind::Handshake, finish).unwrap();
    assert_eq!(
        acceptor.handle_finish(&finish).err(),
        Some(HandshakeError::WrongKey)
    );
}

#[test]
fn tampered_identity_is_refused() {
    // A man in the middle without the key raises the dialer's incarnation in its
    // Hello: the listener answers, but its MAC covers the tampered Hello.
    let (initiator, hello) = Initiator::start(config(1, &[2], key(KEY)), 2, nonce(1)).unwrap();
    let tampered = with_byte(&hello, HELLO_INCARNATION, 0xff);
    let (_, challenge) = Acceptor::accept(&config(2, &[1], key(KEY)), nonce(2), &tampered).unwrap();
    assert_eq!(
        initiator.handle_challenge(&challenge).err(),
        Some(HandshakeError::WrongKey)
    );
}

#[test]
fn wrong_cluster_protocol_version_or_key_use_is_refused() {
    let listener = config(2, &[1], None);
    let mut other_cluster = config(1, &[2], None);
    other_cluster.local.cluster_id = CLUSTER + 1;
    assert_eq!(
        handshake(&other_cluster, &listener, (1, 2)).err(),
        Some(HandshakeError::WrongCluster {
            ours: CLUSTER,
            theirs: CLUSTER + 1
        })
    );
    let mut other_protocol = config(1, &[2], None);
    other_protocol.local.protocol = Protocol::TwoPhaseCommit;
    assert_eq!(
        handshake(&other_protocol, &listener, (1, 2)).err(),
        Some(HandshakeError::WrongProtocol {
            ours: Protocol::AckRetry as u8,
            theirs: Protocol::TwoPhaseCommit as u8
        })
    );
    assert_eq!(
        handshake(&config(1, &[2], key(KEY)), &listener, (1, 2)).err(),
        Some(HandshakeError::KeyMismatch {
            ours: false,
            theirs: true
        })
    );
    let (_, hello) = Initiator::start(config(1, &[2], None), 2, nonce(1)).unwrap();
    let newer = with_byte(&hello, HELLO_VERSION, HANDSHAKE_VERSION + 1);
    assert_eq!(
        Acceptor::accept(&listener, nonce(2), &newer).err(),
        Some(HandshakeError::VersionMismatch {
            ours: HANDSHAKE_VERSION,
            theirs: HANDSHAKE_VERSION + 1
        })
    );
    // A frame of a newer wire version is refused by the decoder, before any handshake.
    let mut bytes = hello.to_bytes();
    bytes[0] = WIRE_VERSION + 1;
    assert_eq!(
        FrameDecoder::new().decode_all(&bytes),
        Err(FrameError::UnsupportedVersion {
            version: WIRE_VERSION + 1
        })
    );
}

#[test]
fn malformed_messages_are_typed_errors() {
    let listener = config(2, &[1], None);
    let (_, hello) = Initiator::start(config(1, &[2], None), 2, nonce(1)).unwrap();
    let message = Frame::new(FrameKind::Message, hello.payload().to_vec()).unwrap();
    assert_eq!(
        Acceptor::accept(&listener, nonce(2), &message).err(),
        Some(HandshakeError::NotHandshake {
            kind: FrameKind::Message
        })
    );
    assert_eq!(
        Acceptor::accept(&listener, nonce(2), &with_byte(&hello, 0, 3)).err(),
        Some(HandshakeError::UnexpectedMessage {
            expected: "Hello",
            got: 3
        })
    );
    assert_eq!(
        Acceptor::accept(&listener, nonce(2), &with_byte(&hello, HELLO_PROTOCOL, 0)).err(),
        Some(HandshakeError::WrongProtocol { ours: 1, theirs: 0 })
    );
    assert!(matches!(
        Acceptor::accept(&listener, nonce(2), &with_byte(&hello, HELLO_AUTH, 7)),
        Err(HandshakeError::Malformed { .. })
    ));
    let mut short = hello.payload().to_vec();
    short.pop();
    let mut long = hello.payload().to_vec();
    long.push(0);
    for payload in [short, long, vec![]] {
        let frame = Frame::new(FrameKind::Handshake, payload).unwrap();
        assert!(matches!(
            Acceptor::accept(&listener, nonce(2), &frame),
            Err(HandshakeError::Malformed { .. })
        ));
    }
}

#[test]
fn cluster_key_length_is_bounded() {
    for len in [0, CLUSTER_KEY_LEN_MIN - 1, CLUSTER_KEY_LEN_MAX + 1] {
        assert_eq!(
            ClusterKey::new(vec![1; len]),
            Err(HandshakeError::KeyLength { len })
        );
    }
    for len in [CLUSTER_KEY_LEN_MIN, CLUSTER_KEY_LEN_MAX] {
        assert!(ClusterKey::new(vec![1; len]).is_ok());
    }
    assert_eq!(
        format!("{:?}", key(KEY).unwrap()),
        "ClusterKey(32 bytes)",
        "the key's bytes never reach a log"
    );
}

#[test]
fn an_oversized_header_allocates_nothing() {
    let mut header = vec![WIRE_VERSION, FrameKind::Message as u8];
    header.extend_from_slice(&u32::MAX.to_le_bytes());
    let mut decoder = FrameDecoder::new();
    let (result, peak) = peak_allocation(|| decoder.decode(&header));
    assert_eq!(
        result,
        Err(FrameError::TooLong {
            len: u64::from(u32::MAX)
        })
    );
    assert_eq!(peak, 0, "refused before anything is allocated");
    let (result, peak) = peak_allocation(|| decode_frame(&header));
    assert!(result.is_err());
    assert_eq!(peak, 0);
    // The measurement sees allocations: an accepted header reserves its payload.
    let mut header = vec![WIRE_VERSION, FrameKind::Message as u8];
    header.extend_from_slice(&1000u32.to_le_bytes());
    let (result, peak) = peak_allocation(|| FrameDecoder::new().decode(&header));
    assert_eq!(result.map(|decoded| decoded.consumed), Ok(HEADER_LEN));
    assert_eq!(peak, 1000);
}

// ---------------------------------------------------------------------------
// Property tests.

/// Bytes that start with a plausible header (any version/kind byte close to the
/// valid ones, any length) followed by random bytes, or just random bytes.
fn adversarial_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        (
            0u8..=3,
            0u8..=3,
            prop_oneof![
                any::<u32>(),
                FRAME_LEN_MAX - 2..=FRAME_LEN_MAX + 2,
                0u32..64
            ],
            prop::collection::vec(any::<u8>(), 0..256),
        )
            .prop_map(|(version, kind, len, tail)| {
                let mut bytes = vec![version, kind];
                bytes.extend_from_slice(&len.to_le_bytes());
                bytes.extend_from_slice(&tail);
                bytes
            }),
    ]
}

fn frames() -> impl Strategy<Value = Vec<Frame>> {
    prop::collection::vec(
        (
            prop_oneof![Just(FrameKind::Handshake), Just(FrameKind::Message)],
            prop::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(kind, payload)| Frame::new(kind, payload).unwrap()),
        0..8,
    )
}

/// The most one handshake step may allocate at once: its own message (at most
/// 1 + 55 + 32 + 32 bytes), far below a frame.
const HANDSHAKE_ALLOCATION_MAX_BYTES: usize = 256;

/// Feeds `bytes` to a fresh decoder in chunks of `chunk` bytes; checks the bounds
/// after every call; returns the frames decoded and the first error, if any.
fn feed(bytes: &[u8], chunk: usize) -> (Vec<Frame>, Option<FrameError>) {
    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        let mut rest = piece;
        while !rest.is_empty() {
            let (result, peak) = peak_allocation(|| decoder.decode(rest));
            assert!(peak <= FRAME_LEN_MAX as usize, "allocated {peak} bytes");
            assert!(decoder.buffered_capacity() <= HEADER_LEN + FRAME_LEN_MAX as usize);
            match result {
                Ok(decoded) => {
                    assert!(decoded.consumed > 0 && decoded.consumed <= rest.len());
                    rest = &rest[decoded.consumed..];
                    frames.extend(decoded.frame);
                }
                Err(error) => return (frames, Some(error)),
            }
        }
    }
    (frames, None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoder_survives_any_bytes(bytes in adversarial_bytes(), chunk in 1usize..64) {
        let (frames, error) = feed(&bytes, chunk);
        // The streaming decoder and the one-shot parser agree on the first frame.
        match decode_frame(&bytes) {
            Ok(Some((frame, _))) => prop_assert_eq!(frames.first(), Some(&frame)),
            Ok(None) => prop_assert!(frames.is_empty() && error.is_none()),
            Err(one_shot) => prop_assert_eq!(error, Some(one_shot)),
        }
    }

    #[test]
    fn frames_round_trip_through_any_chunking(frames in frames(), chunk in 1usize..700) {
        let mut bytes = Vec::new();
        for frame in &frames {
            frame.encode(&mut bytes);
        }
        let (decoded, error) = feed(&bytes, chunk);
        prop_assert_eq!(error, None);
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn handshake_survives_any_bytes(payload in prop::collection::vec(any::<u8>(), 0..200)) {
        let frame = Frame::new(FrameKind::Handshake, payload).unwrap();
        for k in [None, key(KEY)] {
            let dialer = config(1, &[2], k.clone());
            let listener = config(2, &[1], k.clone());
            // Each step allocates only its own small messages, whatever it is fed.
            let (_, peak) = peak_allocation(|| Acceptor::accept(&listener, nonce(2), &frame));
            prop_assert!(peak <= HANDSHAKE_ALLOCATION_MAX_BYTES, "allocated {} bytes", peak);
            let (initiator, hello) = Initiator::start(dialer, 2, nonce(1)).unwrap();
            let (_, peak) = peak_allocation(|| initiator.handle_challenge(&frame));
            prop_assert!(peak <= HANDSHAKE_ALLOCATION_MAX_BYTES, "allocated {} bytes", peak);
            let (accepted, peak) = peak_allocation(|| Acceptor::accept(&listener, nonce(2), &hello));
            prop_assert!(peak <= HANDSHAKE_ALLOCATION_MAX_BYTES, "allocated {} bytes", peak);
            let (acceptor, _) = accepted.unwrap();
            let (_, peak) = peak_allocation(|| acceptor.handle_finish(&frame));
            prop_assert!(peak <= HANDSHAKE_ALLOCATION_MAX_BYTES, "allocated {} bytes", peak);
        }
    }

    #[test]
    fn with_a_key_any_changed_byte_fails_the_handshake(
        message in 0usize..3,
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let dialer = config(1, &[2], key(KEY));
        let listener = config(2, &[1], key(KEY));
        let (initiator, hello) = Initiator::start(dialer, 2, nonce(1)).unwrap();
        let flip_in = |frame: &Frame| {
            let i = index.index(frame.payload().len());
            with_byte(frame, i, frame.payload()[i] ^ flip)
        };
        let hello = if message == 0 { flip_in(&hello) } else { hello };
        let outcome = Acceptor::accept(&listener, nonce(2), &hello).and_then(|(acceptor, challenge)| {
            let challenge = if message == 1 { flip_in(&challenge) } else { challenge };
            let (_, finish) = initiator.handle_challenge(&challenge)?;
            let finish = if message == 2 { flip_in(&finish) } else { finish };
            acceptor.handle_finish(&finish)
        });
        prop_assert!(outcome.is_err(), "accepted with a changed byte: {:?}", outcome);
    }
}
