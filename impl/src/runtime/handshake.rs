//! The connection handshake (sans-IO): who is speaking, in which protocol and
//! cluster, and — with a cluster key — proof that both sides hold the key.
//!
//! Three messages, each the payload of one [`FrameKind::Handshake`] frame; the
//! dialing node is the *initiator*, the listening node the *acceptor*:
//!
//! ```text
//! initiator                                   acceptor
//!   Hello     {identity_i, nonce_i}      ──▶
//!                                        ◀──  Challenge {identity_a, nonce_a,
//!                                                        echo = nonce_i, mac_a}
//!   Finish    {echo = nonce_a, mac_i}    ──▶
//! ```
//!
//! An identity is the handshake version, the [`Protocol`], whether a cluster key is
//! used, the cluster id, the node id and its incarnation. Each side refuses a peer
//! whose version, protocol, cluster or key use differs from its own, or whose node
//! id is not in its configured peers (the initiator also refuses any node but the
//! one it dialed).
//!
//! With a [`ClusterKey`], `mac_a = HMAC-SHA256(key, "eo-wire/1 acceptor" | hello |
//! challenge_body)` and `mac_i = HMAC-SHA256(key, "eo-wire/1 initiator" | hello |
//! challenge_body)`, where `hello` is the Hello payload and `challenge_body` the
//! Challenge payload without its MAC. Both MACs cover both nonces, so each side
//! proves it holds the key *now*, in answer to the other's fresh nonce: a recorded
//! Hello and Finish replayed against a new challenge fail (the Finish echoes the
//! old nonce), and the distinct labels stop a MAC from being reflected back.
//! MACs are compared in constant time (`verify_slice`). Without a key the same
//! messages only name the peer: anyone who can reach the port can claim any id.
//!
//! Nonces come from the caller (the core holds no randomness); they must be
//! unpredictable and never reused, e.g. 32 bytes from the operating system's
//! generator per connection.
//!
//! Payload layouts (integers little-endian):
//!
//! ```text
//! identity  = version: u8 | protocol: u8 | auth: u8 (0 none, 1 HMAC-SHA256)
//!           | cluster_id: u64 | node_id: u32 | incarnation: u64 | nonce: [u8; 32]
//! Hello     = 1: u8 | identity
//! Challenge = 2: u8 | identity | echo: [u8; 32] | mac: [u8; 32] (only if auth = 1)
//! Finish    = 3: u8 | echo: [u8; 32] | mac: [u8; 32] (only if auth = 1)
//! ```

use super::frame::{Frame, FrameKind};
use crate::core::NodeId;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeSet;
use std::fmt;
use thiserror::Error;

/// The handshake version this code speaks.
pub const HANDSHAKE_VERSION: u8 = 1;

/// Bytes in a nonce.
pub const NONCE_LEN: usize = 32;

/// Bytes in an HMAC-SHA256 tag.
pub const MAC_LEN: usize = 32;

/// The shortest cluster key accepted, in bytes (128 bits).
pub const CLUSTER_KEY_LEN_MIN: usize = 16;

/// The longest cluster key accepted, in bytes.
pub const CLUSTER_KEY_LEN_MAX: usize = 1024;

const LABEL_ACCEPTOR: &[u8] = b"eo-wire/1 acceptor";
const LABEL_INITIATOR: &[u8] = b"eo-wire/1 initiator";

const TYPE_HELLO: u8 = 1;
const TYPE_CHALLENGE: u8 = 2;
const TYPE_FINISH: u8 = 3;

const AUTH_NONE: u8 = 0;
const AUTH_HMAC_SHA256: u8 = 1;

/// The protocol a connection carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Protocol {
    /// Ack-retry messaging (`crate::ack_retry`).
    AckRetry = 1,
    /// Two-phase commit (`crate::two_phase_commit`).
    TwoPhaseCommit = 2,
}

/// A handshake nonce, supplied by the caller: unpredictable, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nonce(pub [u8; NONCE_LEN]);

/// The secret shared by a cluster's nodes. Its bytes never appear in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey(Vec<u8>);

impl ClusterKey {
    /// A key of [`CLUSTER_KEY_LEN_MIN`]..=[`CLUSTER_KEY_LEN_MAX`] bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self, HandshakeError> {
        if !(CLUSTER_KEY_LEN_MIN..=CLUSTER_KEY_LEN_MAX).contains(&bytes.len()) {
            return Err(HandshakeError::KeyLength { len: bytes.len() });
        }
        Ok(Self(bytes))
    }

    fn mac(&self, label: &[u8], hello: &[u8], challenge_body: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(label);
        mac.update(hello);
        mac.update(challenge_body);
        mac
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterKey({} bytes)", self.0.len())
    }
}

/// Who a node is on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The protocol this node runs.
    pub protocol: Protocol,
    /// The cluster this node belongs to.
    pub cluster_id: u64,
    /// This node's id.
    pub node_id: NodeId,
    /// This node's current life; the runtime fences older ones.
    pub incarnation: u64,
}

/// A node's handshake configuration.
#[derive(Clone, Debug)]
pub struct HandshakeConfig {
    /// This node.
    pub local: Identity,
    /// The node ids allowed to connect (and to be dialed).
    pub peers: BTreeSet<NodeId>,
    /// With a key, both sides must prove they hold it.
    pub key: Option<ClusterKey>,
}

/// The peer a handshake established (authenticated if a key is configured).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The peer's node id, one of the configured peers.
    pub node_id: NodeId,
    /// The incarnation the peer announced.
    pub incarnation: u64,
}

/// Why a handshake was refused. The connection must be closed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// A frame of another kind arrived during the handshake.
    #[error("expected a handshake frame, got a {kind:?} frame")]
    NotHandshake {
        /// The kind received.
        kind: FrameKind,
    },
    /// The handshake message is not the one expected at this step.
    #[error("expected handshake message {expected}, got type {got}")]
    UnexpectedMessage {
        /// The message expected.
        expected: &'static str,
        /// The type byte received.
        got: u8,
    },
    /// The payload does not parse (wrong length, bad field value).
    #[error("malformed handshake message: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// The peer speaks another handshake version.
    #[error("handshake version mismatch: ours {ours}, theirs {theirs}")]
    VersionMismatch {
        /// Our version.
        ours: u8,
        /// The peer's version.
        theirs: u8,
    },
    /// The peer runs another protocol.
    #[error("wrong protocol: ours {ours}, theirs {theirs}")]
    WrongProtocol {
        /// Our protocol's byte.
        ours: u8,
        /// The peer's protocol byte.
        theirs: u8,
    },
    /// The peer belongs to another cluster.
    #[error("wrong cluster: ours {ours}, theirs {theirs}")]
    WrongCluster {
        /// Our cluster id.
        ours: u64,
        /// The peer's cluster id.
        theirs: u64,
    },
    /// Exactly one side has a cluster key configured.
    #[error("cluster key configured on one side only (ours: {ours}, theirs: {theirs})")]
    KeyMismatch {
        /// Whether we use a key.
        ours: bool,
        /// Whether the peer uses one.
        theirs: bool,
    },
    /// The peer's node id is not in our configured peers.
    #[error("unknown peer id {node_id}")]
    UnknownPeer {
        /// The id the peer claimed.
        node_id: NodeId,
    },
    /// The node answering a dial is not the node dialed.
    #[error("dialed node {expected}, but node {got} answered")]
    UnexpectedPeer {
        /// The node dialed.
        expected: NodeId,
        /// The node that answered.
        got: NodeId,
    },
    /// The message answers another challenge than ours: a recorded handshake replayed.
    #[error("replayed handshake: the message answers another challenge")]
    Replayed,
    /// The peer's MAC does not verify: it does not hold our cluster key.
    #[error("wrong cluster key: the peer's MAC does not verify")]
    WrongKey,
    /// A cluster key outside [`CLUSTER_KEY_LEN_MIN`]..=[`CLUSTER_KEY_LEN_MAX`] bytes.
    #[error("cluster key of {len} bytes (allowed {CLUSTER_KEY_LEN_MIN}..={CLUSTER_KEY_LEN_MAX})")]
    KeyLength {
        /// The key's length, in bytes.
        len: usize,
    },
}

/// Reads fixed-width fields; running out of bytes is [`HandshakeError::Malformed`].
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], HandshakeError> {
        let (head, rest) =
            self.bytes
                .split_first_chunk::<N>()
                .ok_or(HandshakeError::Malformed {
                    reason: "message too short",
                })?;
        self.bytes = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, HandshakeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, HandshakeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, HandshakeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn end(&self) -> Result<(), HandshakeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(HandshakeError::Malformed {
                reason: "trailing bytes",
            })
        }
    }
}

fn payload_of(frame: &Frame) -> Result<&[u8], HandshakeError> {
    match frame.kind() {
        FrameKind::Handshake => Ok(frame.payload()),
        kind => Err(HandshakeError::NotHandshake { kind }),
    }
}

fn expect_type(
    reader: &mut Reader,
    expected: u8,
    name: &'static str,
) -> Result<(), HandshakeError> {
    let got = reader.u8()?;
    if got != expected {
        return Err(HandshakeError::UnexpectedMessage {
            expected: name,
            got,
        });
    }
    Ok(())
}

fn auth_byte(key: &Option<ClusterKey>) -> u8 {
    if key.is_some() {
        AUTH_HMAC_SHA256
    } else {
        AUTH_NONE
    }
}

fn write_identity(out: &mut Vec<u8>, config: &HandshakeConfig, nonce: &Nonce) {
    out.push(HANDSHAKE_VERSION);
    out.push(config.local.protocol as u8);
    out.push(auth_byte(&config.key));
    out.extend_from_slice(&config.local.cluster_id.to_le_bytes());
    out.extend_from_slice(&config.local.node_id.to_le_bytes());
    out.extend_from_slice(&config.local.incarnation.to_le_bytes());
    out.extend_from_slice(&nonce.0);
}

/// Reads an identity and checks it against ours, in the order a reader of the
/// error expects: version, protocol, cluster, key use, node id.
fn read_identity(
    reader: &mut Reader,
    config: &HandshakeConfig,
) -> Result<(Peer, Nonce), HandshakeError> {
    let version = reader.u8()?;
    if version != HANDSHAKE_VERSION {
        return Err(HandshakeError::VersionMismatch {
            ours: HANDSHAKE_VERSION,
            theirs: version,
        });
    }
    let protocol = reader.u8()?;
    if protocol != config.local.protocol as u8 {
        return Err(HandshakeError::WrongProtocol {
            ours: config.local.protocol as u8,
            theirs: protocol,
        });
    }
    let theirs = match reader.u8()? {
        AUTH_NONE => false,
        AUTH_HMAC_SHA256 => true,
        _ => {
            return Err(HandshakeError::Malformed {
                reason: "unknown authentication byte",
            })
        }
    };
    let cluster_id = reader.u64()?;
    if cluster_id != config.local.cluster_id {
        return Err(HandshakeError::WrongCluster {
            ours: config.local.cluster_id,
            theirs: cluster_id,
        });
    }
    let ours = config.key.is_some();
    if ours != theirs {
        return Err(HandshakeError::KeyMismatch { ours, theirs });
    }
    let node_id = reader.u32()?;
    if !config.peers.contains(&node_id) {
        return Err(HandshakeError::UnknownPeer { node_id });
    }
    let incarnation = reader.u64()?;
    let nonce = Nonce(reader.array()?);
    Ok((
        Peer {
            node_id,
            incarnation,
        },
        nonce,
    ))
}

fn handshake_frame(payload: Vec<u8>) -> Frame {
    Frame::new(FrameKind::Handshake, payload).expect("handshake messages are far below the limit")
}

/// The dialing side, after sending Hello and before the Challenge arrived.
#[derive(Debug)]
#[must_use = "the handshake continues with handle_challenge"]
pub struct Initiator {
    config: HandshakeConfig,
    expected: NodeId,
    nonce: Nonce,
    hello: Vec<u8>,
}

impl Initiator {
    /// Starts a handshake with `peer` (one of the configured peers): returns the
    /// state and the Hello frame to send.
    pub fn start(
        config: HandshakeConfig,
        peer: NodeId,
        nonce: Nonce,
    ) -> Result<(Self, Frame), HandshakeError> {
        if !config.peers.contains(&peer) {
            return Err(HandshakeError::UnknownPeer { node_id: peer });
        }
        let mut hello = vec![TYPE_HELLO];
        write_identity(&mut hello, &config, &nonce);
        let frame = handshake_frame(hello.clone());
        Ok((
            Self {
                config,
                expected: peer,
                nonce,
                hello,
            },
            frame,
        ))
    }

    /// Handles the acceptor's Challenge: returns the established peer and the
    /// Finish frame to send. The connection is established once Finish is sent.
    pub fn handle_challenge(self, frame: &Frame) -> Result<(Peer, Frame), HandshakeError> {
        let payload = payload_of(frame)?;
        let mut reader = Reader { bytes: payload };
        expect_type(&mut reader, TYPE_CHALLENGE, "Challenge")?;
        let (peer, acceptor_nonce) = read_identity(&mut reader, &self.config)?;
        if peer.node_id != self.expected {
            return Err(HandshakeError::UnexpectedPeer {
                expected: self.expected,
                got: peer.node_id,
            });
        }
        let echo: [u8; NONCE_LEN] = reader.array()?;
        let body_len = payload.len() - reader.bytes.len();
        let challenge_body = &payload[..body_len];
        let tag: Option<[u8; MAC_LEN]> = match self.config.key {
            Some(_) => Some(reader.array()?),
            None => None,
        };
        reader.end()?;
        if echo != self.nonce.0 {
            return Err(HandshakeError::Replayed);
        }
        let mut finish = vec![TYPE_FINISH];
        finish.extend_from_slice(&acceptor_nonce.0);
        if let (Some(key), Some(tag)) = (&self.config.key, tag) {
            key.mac(LABEL_ACCEPTOR, &self.hello, challenge_body)
                .verify_slice(&tag)
                .map_err(|_| HandshakeError::WrongKey)?;
            let mac = key.mac(LABEL_INITIATOR, &self.hello, challenge_body);
            finish.extend_from_slice(&mac.finalize().into_bytes());
        }
        Ok((peer, handshake_frame(finish)))
    }
}

/// The listening side, after sending its Challenge and before Finish arrived.
#[derive(Debug)]
#[must_use = "the handshake continues with handle_finish"]
pub struct Acceptor {
    key: Option<ClusterKey>,
    peer: Peer,
    nonce: Nonce,
    hello: Vec<u8>,
    challenge_body: Vec<u8>,
}

impl Acceptor {
    /// Handles an initiator's Hello with a fresh `nonce`: returns the state and the
    /// Challenge frame to send.
    pub fn accept(
        config: &HandshakeConfig,
        nonce: Nonce,
        hello: &Frame,
    ) -> Result<(Self, Frame), HandshakeError> {
        let payload = payload_of(hello)?;
        let mut reader = Reader { bytes: payload };
        expect_type(&mut reader, TYPE_HELLO, "Hello")?;
        let (peer, initiator_nonce) = read_identity(&mut reader, config)?;
        reader.end()?;
        let mut challenge = vec![TYPE_CHALLENGE];
        write_identity(&mut challenge, config, &nonce);
        challenge.extend_from_slice(&initiator_nonce.0);
        let challenge_body = challenge.clone();
        if let Some(key) = &config.key {
            let mac = key.mac(LABEL_ACCEPTOR, payload, &challenge_body);
            challenge.extend_from_slice(&mac.finalize().into_bytes());
        }
        Ok((
            Self {
                key: config.key.clone(),
                peer,
                nonce,
                hello: payload.to_vec(),
                challenge_body,
            },
            handshake_frame(challenge),
        ))
    }

    /// Handles the initiator's Finish: returns the established peer.
    pub fn handle_finish(self, frame: &Frame) -> Result<Peer, HandshakeError> {
        let mut reader = Reader {
            bytes: payload_of(frame)?,
        };
        expect_type(&mut reader, TYPE_FINISH, "Finish")?;
        let echo: [u8; NONCE_LEN] = reader.array()?;
        let tag: Option<[u8; MAC_LEN]> = match self.key {
            Some(_) => Some(reader.array()?),
            None => None,
        };
        reader.end()?;
        if echo != self.nonce.0 {
            return Err(HandshakeError::Replayed);
        }
        if let (Some(key), Some(tag)) = (&self.key, tag) {
            key.mac(LABEL_INITIATOR, &self.hello, &self.challenge_body)
                .verify_slice(&tag)
                .map_err(|_| HandshakeError::WrongKey)?;
        }
        Ok(self.peer)
    }
}
