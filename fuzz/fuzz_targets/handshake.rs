//! The handshake on arbitrary messages, from both sides, with and without a
//! cluster key: it never panics, and a forged message never establishes a peer
//! when a key is configured (the fuzzer does not know the key).
#![no_main]

use eo_impl::runtime::frame::{Frame, FrameKind};
use eo_impl::runtime::handshake::{
    Acceptor, ClusterKey, HandshakeConfig, Identity, Initiator, Nonce, Protocol,
};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;

fn config(node_id: u32, peer: u32, key: bool) -> HandshakeConfig {
    HandshakeConfig {
        local: Identity {
            protocol: Protocol::AckRetry,
            cluster_id: 7,
            node_id,
            incarnation: 1,
        },
        peers: BTreeSet::from([peer]),
        key: key.then(|| ClusterKey::new(vec![0x5A; 32]).unwrap()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let keyed = mode & 1 == 1;
    let kind = if mode & 2 == 0 {
        FrameKind::Handshake
    } else {
        FrameKind::Message
    };
    let Ok(frame) = Frame::new(kind, bytes.to_vec()) else {
        return;
    };
    // Acceptor: the bytes as a Hello, then (if accepted) as a Finish.
    let acceptor = config(2, 1, keyed);
    if let Ok((state, _challenge)) = Acceptor::accept(&acceptor, Nonce([3; 32]), &frame) {
        let finished = state.handle_finish(&frame);
        if keyed {
            assert!(finished.is_err(), "a forged Finish passed the MAC check");
        }
    }
    // Initiator: the bytes as the acceptor's Challenge.
    let (initiator, _hello) = Initiator::start(config(1, 2, keyed), 2, Nonce([4; 32])).unwrap();
    let answered = initiator.handle_challenge(&frame);
    if keyed {
        assert!(answered.is_err(), "a forged Challenge passed the MAC check");
    }
});
