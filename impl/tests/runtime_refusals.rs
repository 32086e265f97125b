//! Who may connect, and what bad input does: each refusal closes only its own
//! connection, with its reason, and the node keeps serving its real peers.

use eo_impl::ack_retry::Msg;
use eo_impl::runtime::frame::{decode_frame, Frame, FrameKind};
use eo_impl::runtime::handshake::{
    ClusterKey, HandshakeConfig, Identity, Initiator, Nonce, Protocol,
};
use eo_impl::runtime::node::{Node, NodeConfig, RoleConfig, RoleStatus, Status};
use eo_impl::runtime::transport::encode_message;
use eo_impl::runtime::workload::{self, ack_retry_transfer};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

const SENDER: u32 = 1;
const RECEIVER: u32 = 2;
/// A configured peer id that the test itself plays.
const IMPOSTOR: u32 = 3;
const SEED: u64 = 5;
/// Every wait in these tests ends within this bound.
const WAIT_MAX: Duration = Duration::from_secs(10);

fn key(byte: u8) -> ClusterKey {
    ClusterKey::new(vec![byte; 32]).unwrap()
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A keyed receiver whose peers are the real sender and `IMPOSTOR`, and the real
/// sender (with the same key).
fn cluster(dir: &Path) -> (Node, Node) {
    let (s, r, i) = (free_addr(), free_addr(), free_addr());
    let mut receiver = NodeConfig::new(RECEIVER, RoleConfig::Receiver, dir.join("r"));
    receiver.listen = r;
    receiver.peers.insert(SENDER, s);
    receiver.peers.insert(IMPOSTOR, i);
    receiver.cluster_key = Some(key(1));
    let mut sender = NodeConfig::new(
        SENDER,
        RoleConfig::Sender { receiver: RECEIVER },
        dir.join("s"),
    );
    sender.listen = s;
    sender.peers.insert(RECEIVER, r);
    sender.cluster_key = Some(key(1));
    (Node::start(receiver).unwrap(), Node::start(sender).unwrap())
}

fn identity(node_id: u32) -> HandshakeConfig {
    HandshakeConfig {
        local: Identity {
            protocol: Protocol::AckRetry,
            cluster_id: 0,
            node_id,
            incarnation: 1,
        },
        peers: BTreeSet::from([RECEIVER]),
        key: Some(key(1)),
    }
}

fn connect(node: &Node) -> TcpStream {
    let stream = TcpStream::connect(node.local_addr()).unwrap();
    stream.set_read_timeout(Some(WAIT_MAX)).unwrap();
    stream
}

fn read_frame(stream: &mut TcpStream) -> Frame {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((frame, _)) = decode_frame(&buf).unwrap() {
            return frame;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before a frame");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The node closes the connection (EOF or reset) within the bound.
fn assert_closed(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("connection still open: {other:?}"),
    }
}

/// The node's status once `done` holds, within the bound.
fn status_when(node: &Node, done: impl Fn(&Status) -> bool) -> Status {
    let started = Instant::now();
    loop {
        let status = node.handle().status().unwrap();
        if done(&status) {
            return status;
        }
        assert!(started.elapsed() < WAIT_MAX, "never reached: {status:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The refusal's reason, the only one so far.
fn only_refusal(receiver: &Node) -> String {
    let status = status_when(receiver, |s| !s.refusals.is_empty());
    assert_eq!(status.refusals.len(), 1, "{:?}", status.refusals);
    status.refusals[0].clone()
}

/// The real sender still delivers: the refused connection hurt nobody else.
fn assert_still_serving(sender: &mut Node, receiver: &Node, n: u64) {
    let outcomes = sender.take_outcomes();
    let stop = AtomicBool::new(false);
    workload::run_sender(
        &sender.handle(),
        outcomes.as_ref(),
        SENDER,
        n,
        SEED,
        &stop,
        |_| {},
    )
    .unwrap()
    .unwrap();
    let status = receiver.handle().status().unwrap();
    let RoleStatus::Receiver { stats, .. } = status.role else {
        unreachable!()
    };
    assert_eq!(stats.applied, n);
}

/// A completed, keyed handshake as `IMPOSTOR`; returns the stream and the bytes
/// the test sent (Hello, then Finish).
fn handshake(receiver: &Node) -> (TcpStream, Vec<u8>, Vec<u8>) {
    let mut stream = connect(receiver);
    let (initiator, hello) =
        Initiator::start(identity(IMPOSTOR), RECEIVER, Nonce([7; 32])).unwrap();
    stream.write_all(&hello.to_bytes()).unwrap();
    let challenge = read_frame(&mut stream);
    let (_, finish) = initiator.handle_challenge(&challenge).unwrap();
    stream.write_all(&finish.to_bytes()).unwrap();
    (stream, hello.to_bytes(), finish.to_bytes())
}

#[test]
fn an_unknown_peer_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, mut sender) = cluster(dir.path());
    let mut stream = connect(&receiver);
    let (_, hello) = Initiator::start(identity(99), RECEIVER, Nonce([1; 32])).unwrap();
    stream.write_all(&hello.to_bytes()).unwrap();
    assert_closed(&mut stream);
    assert_eq!(
        only_refusal(&receiver),
        "handshake refused: unknown peer id 99"
    );
    assert_still_serving(&mut sender, &receiver, 50);
}

#[test]
fn a_wrong_cluster_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, mut sender) = cluster(dir.path());
    // The test plays a configured peer with a wrong key: its Finish carries a MAC
    // the receiver cannot verify.
    let mut stream = connect(&receiver);
    let mut config = identity(IMPOSTOR);
    config.key = Some(key(2));
    let (_, hello) = Initiator::start(config, RECEIVER, Nonce([2; 32])).unwrap();
    stream.write_all(&hello.to_bytes()).unwrap();
    let challenge = read_frame(&mut stream);
    // Challenge = type | version, protocol, auth, cluster u64, node u32,
    // incarnation u64 | nonce [32] | echo | mac: answer its nonce with a bad MAC.
    let nonce = &challenge.payload()[24..56];
    let mut finish = vec![3u8];
    finish.extend_from_slice(nonce);
    finish.extend_from_slice(&[0xAB; 32]);
    let finish = Frame::new(FrameKind::Handshake, finish).unwrap();
    stream.write_all(&finish.to_bytes()).unwrap();
    assert_closed(&mut stream);
    assert_eq!(
        only_refusal(&receiver),
        "handshake refused: wrong cluster key: the peer's MAC does not verify"
    );
    assert_still_serving(&mut sender, &receiver, 50);
}

#[test]
fn a_node_with_another_key_cannot_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let (r, i) = (free_addr(), free_addr());
    let mut config = NodeConfig::new(RECEIVER, RoleConfig::Receiver, dir.path().join("r"));
    config.listen = r;
    config.peers.insert(IMPOSTOR, i);
    config.cluster_key = Some(key(1));
    let receiver = Node::start(config).unwrap();
    // A sender process with key 2 dialing the receiver with key 1, as IMPOSTOR.
    let mut config = NodeConfig::new(
        IMPOSTOR,
        RoleConfig::Sender { receiver: RECEIVER },
        dir.path().join("x"),
    );
    config.peers.insert(RECEIVER, receiver.local_addr());
    config.cluster_key = Some(key(2));
    config.listen = i;
    let intruder = Node::start(config).unwrap();
    let status = status_when(&intruder, |s| s.transport.dial_failures >= 2);
    assert_eq!(status.transport.dialed, 0);
    let status = status_when(&receiver, |s| s.transport.handshakes_refused >= 1);
    let RoleStatus::Receiver { stats, .. } = status.role else {
        unreachable!()
    };
    assert_eq!(stats.granted, 0, "the intruder's request never got in");
}

#[test]
fn a_replayed_handshake_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, mut sender) = cluster(dir.path());
    let (stream, hello, finish) = handshake(&receiver);
    drop(stream);
    // Replay the recorded Hello and Finish on a new connection, then a message.
    let mut replay = connect(&receiver);
    replay.write_all(&hello).unwrap();
    let _challenge = read_frame(&mut replay);
    replay.write_all(&finish).unwrap();
    let data = encode_message(1, &Msg::NewIncarnation { nonce: 9 }).unwrap();
    let _ = replay.write_all(&data);
    assert_closed(&mut replay);
    assert_eq!(
        only_refusal(&receiver),
        "handshake refused: replayed handshake: the message answers another challenge"
    );
    assert_still_serving(&mut sender, &receiver, 50);
    let RoleStatus::Receiver { stats, .. } = receiver.handle().status().unwrap().role else {
        unreachable!()
    };
    assert_eq!(stats.granted, 1, "only the real sender got an incarnation");
}

/// Garbage, an oversized length and a truncated frame, each after a valid
/// handshake, close only their own connection.
#[test]
fn bad_frames_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, mut sender) = cluster(dir.path());
    let cases: [(&[u8], bool, &str); 3] = [
        (
            b"GET / HTTP/1.1\r\n\r\n",
            false,
            "bad frame: unsupported frame version 71 (this node speaks 1)",
        ),
        (
            &[1, 2, 0xFF, 0xFF, 0xFF, 0x7F],
            false,
            "bad frame: frame payload of 2147483647 bytes is above the limit of 1048576 bytes",
        ),
        (
            &[1, 2, 100, 0, 0, 0, 1, 2, 3],
            true,
            "closed in the middle of a frame (truncated frame)",
        ),
    ];
    // The real sender's connection is open throughout: it delivers before and after.
    let outcomes = sender.take_outcomes();
    let stop = AtomicBool::new(false);
    let handle = sender.handle();
    workload::run_sender(&handle, outcomes.as_ref(), SENDER, 20, SEED, &stop, |_| {}).unwrap();
    for (i, (bytes, then_close, reason)) in cases.into_iter().enumerate() {
        let (mut stream, _, _) = handshake(&receiver);
        stream.write_all(bytes).unwrap();
        if then_close {
            stream.shutdown(std::net::Shutdown::Write).unwrap();
        }
        assert_closed(&mut stream);
        let status = status_when(&receiver, |s| s.refusals.len() > i);
        assert_eq!(status.refusals[i], reason);
    }
    workload::run_sender(&handle, outcomes.as_ref(), SENDER, 60, SEED, &stop, |_| {}).unwrap();
    let status = receiver.handle().status().unwrap();
    let RoleStatus::Receiver { stats, .. } = status.role else {
        unreachable!()
    };
    assert_eq!(stats.applied, 60);
    assert_eq!(status.transport.refused, 3);
    // The sender never lost its connection to the receiver.
    assert_eq!(sender.handle().status().unwrap().transport.dialed, 1);
    let _ = ack_retry_transfer;
}
