//! TCP transport: the framed wire ([`super::frame`]) and the handshake
//! ([`super::handshake`]) over real sockets, with plain threads.
//!
//! Every ordered pair of nodes has its own connection: a node *dials* each peer it
//! sends to (lazily, at its first message) and only writes on that connection;
//! it *accepts* connections from its peers and only reads on those. So one side of
//! each connection writes and the other reads, and neither can block the other.
//!
//! - **Accepting** ([`spawn_listener`]): one thread accepts; each connection gets
//!   a reader thread, at most [`INBOUND_CONNECTIONS_MAX`] at once. The reader runs
//!   the acceptor's handshake within [`HANDSHAKE_TIMEOUT`], then decodes message
//!   frames and hands each message to the node. Anything wrong — a handshake
//!   refused (unknown peer id, wrong key, replayed Finish, other cluster or
//!   protocol), a frame the decoder refuses (garbage, unknown version or kind,
//!   oversized length), a payload that is not a message of the protocol, a peer
//!   that stalls for [`STALL_TIMEOUT`] in the middle of a frame — is logged once
//!   at `warn` with the remote address and reason, counted in [`TransportStats`],
//!   and closes that connection only. A connection that is idle between frames is
//!   kept.
//! - **Dialing** ([`Outbound`]): per peer, a bounded queue of encoded frames
//!   ([`OUTBOUND_QUEUE_LEN`]) and a writer thread that connects, runs the
//!   initiator's handshake, and writes. A failed dial or write drops the
//!   connection and retries after a backoff from [`DIAL_BACKOFF_MIN`] doubling to
//!   [`DIAL_BACKOFF_MAX`], with jitter (a uniform draw in `[b/2, b]`) from a
//!   ChaCha8 generator seeded by the node's seed and the peer id. A message that
//!   finds its queue full is dropped and counted: the protocols retransmit, so the
//!   transport may lose messages, as the models' network does.
//!
//! The payload of a message frame is a [`WireMessage`]: the sender's Lamport
//! timestamp and the protocol message, postcard-encoded.

use super::frame::{Frame, FrameDecoder, FrameError, FrameKind};
use super::handshake::{Acceptor, HandshakeConfig, HandshakeError, Initiator, Nonce, NONCE_LEN};
use super::trace::Lamport;
use crate::core::NodeId;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A handshake must complete within this time, or the connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A peer that sent part of a frame and then nothing for this long is dropped, so
/// that a stalled peer cannot hold a frame buffer.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often blocked socket reads and queue waits wake up to check for shutdown.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A dial that does not connect within this time fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A write that blocks this long (the peer stopped reading) fails; the writer
/// reconnects.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The first reconnection delay after a failed dial or write.
pub const DIAL_BACKOFF_MIN: Duration = Duration::from_millis(20);

/// Reconnection delays double up to this bound.
pub const DIAL_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The most inbound connections served at once; more are closed at once.
pub const INBOUND_CONNECTIONS_MAX: usize = 64;

/// The most encoded frames waiting for one peer's connection; more are dropped.
pub const OUTBOUND_QUEUE_LEN: usize = 4096;

/// How many refusal reasons [`TransportStats::recent_refusals`] keeps.
pub const REFUSALS_KEPT: usize = 16;

/// Bytes read from a socket per call.
const READ_CHUNK_LEN: usize = 64 * 1024;

/// The payload of a [`FrameKind::Message`] frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireMessage<M> {
    /// The sender's Lamport clock when the message left ([`super::trace`]).
    pub stamp: Lamport,
    /// The protocol message.
    pub msg: M,
}

/// Why a connection was closed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The byte stream is not a sequence of valid frames.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// The handshake was refused.
    #[error("handshake refused: {0}")]
    Handshake(#[from] HandshakeError),
    /// The handshake did not complete within [`HANDSHAKE_TIMEOUT`].
    #[error("handshake not completed within {HANDSHAKE_TIMEOUT:?}")]
    HandshakeTimeout,
    /// The peer closed the connection during the handshake.
    #[error("closed during the handshake")]
    ClosedInHandshake,
    /// The peer closed the connection in the middle of a frame.
    #[error("closed in the middle of a frame (truncated frame)")]
    Truncated,
    /// The peer sent part of a frame and then nothing for [`STALL_TIMEOUT`].
    #[error("stalled in the middle of a frame for {STALL_TIMEOUT:?}")]
    Stalled,
    /// A handshake frame after the handshake.
    #[error("unexpected {kind:?} frame after the handshake")]
    UnexpectedFrame {
        /// The frame's kind.
        kind: FrameKind,
    },
    /// A message frame whose payload is not a message of this protocol.
    #[error("undecodable message payload ({len} bytes): {source}")]
    Payload {
        /// The payload's length.
        len: usize,
        /// What postcard said.
        #[source]
        source: postcard::Error,
    },
    /// A message frame with bytes after the message.
    #[error("{extra} trailing bytes after the message")]
    TrailingBytes {
        /// Bytes left over.
        extra: usize,
    },
    /// The connection limit was reached.
    #[error("{INBOUND_CONNECTIONS_MAX} inbound connections already open")]
    TooManyConnections,
}

/// Counters of one node's transport, for tests, progress lines and reports.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Inbound connections whose handshake succeeded.
    pub accepted: AtomicU64,
    /// Inbound connections closed because of bad input (any [`ConnectionError`]
    /// except a plain close or socket error after the handshake).
    pub refused: AtomicU64,
    /// Of `refused`: handshakes refused (unknown peer, wrong key, replay, …).
    pub handshakes_refused: AtomicU64,
    /// Outbound connections established.
    pub dialed: AtomicU64,
    /// Dials or handshakes that failed (each followed by a backoff).
    pub dial_failures: AtomicU64,
    /// Messages received and handed to the node.
    pub messages_in: AtomicU64,
    /// Messages written to a socket.
    pub messages_out: AtomicU64,
    /// Messages dropped: queue full, connection lost with the message, no peer.
    pub messages_dropped: AtomicU64,
    /// The reasons of the last [`REFUSALS_KEPT`] refused inbound connections.
    refusals: Mutex<VecDeque<String>>,
}

impl TransportStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn note_refusal(&self, error: &ConnectionError) {
        if let Ok(mut refusals) = self.refusals.lock() {
            if refusals.len() == REFUSALS_KEPT {
                refusals.pop_front();
            }
            refusals.push_back(error.to_string());
        }
    }

    /// Why the last refused inbound connections were closed, oldest first.
    pub fn recent_refusals(&self) -> Vec<String> {
        self.refusals
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A plain-number copy.
    pub fn snapshot(&self) -> TransportCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportCounts {
            accepted: get(&self.accepted),
            refused: get(&self.refused),
            handshakes_refused: get(&self.handshakes_refused),
            dialed: get(&self.dialed),
            dial_failures: get(&self.dial_failures),
            messages_in: get(&self.messages_in),
            messages_out: get(&self.messages_out),
            messages_dropped: get(&self.messages_dropped),
        }
    }
}

/// [`TransportStats`] as plain numbers.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TransportCounts {
    pub accepted: u64,
    pub refused: u64,
    pub handshakes_refused: u64,
    pub dialed: u64,
    pub dial_failures: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub messages_dropped: u64,
}

/// Hands a received message to the node; returns false once the node stopped.
pub type Deliver<M> = Arc<dyn Fn(NodeId, Lamport, M) -> bool + Send + Sync>;

/// A fresh handshake nonce from the operating system's generator (through
/// `rand`'s thread-local ChaCha, reseeded from the OS).
fn fresh_nonce() -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut bytes);
    Nonce(bytes)
}

/// Reads frames from a socket whose read timeout is [`POLL_INTERVAL`].
struct FrameReader {
    stream: TcpStream,
    decoder: FrameDecoder,
    chunk: Vec<u8>,
    frames: VecDeque<Frame>,
    last_progress: Instant,
}

impl FrameReader {
    fn new(stream: TcpStream) -> FrameReader {
        FrameReader {
            stream,
            decoder: FrameDecoder::new(),
            chunk: vec![0; READ_CHUNK_LEN],
            frames: VecDeque::new(),
            last_progress: Instant::now(),
        }
    }

    /// The next frame; `Ok(None)` on a clean close between frames, or once
    /// `stop` is set, or (with a deadline) when the deadline passes — the caller
    /// tells these apart.
    fn next(
        &mut self,
        stop: &AtomicBool,
        deadline: Option<Instant>,
    ) -> Result<Option<Frame>, ConnectionError> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Ok(Some(frame));
            }
            if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            match self.stream.read(&mut self.chunk) {
                Ok(0) if self.decoder.in_frame() => return Err(ConnectionError::Truncated),
                Ok(0) => return Ok(None),
                Ok(n) => {
                    self.last_progress = Instant::now();
                    let frames = self.decoder.decode_all(&self.chunk[..n])?;
                    self.frames.extend(frames);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.decoder.in_frame() && self.last_progress.elapsed() >= STALL_TIMEOUT {
                        return Err(ConnectionError::Stalled);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next frame within the handshake's deadline.
    fn next_in_handshake(
        &mut self,
        stop: &AtomicBool,
        deadline: Instant,
    ) -> Result<Frame, ConnectionError> {
        match self.next(stop, Some(deadline))? {
            Some(frame) => Ok(frame),
            None if Instant::now() >= deadline => Err(ConnectionError::HandshakeTimeout),
            None => Err(ConnectionError::ClosedInHandshake),
        }
    }
}

/// The listening side of a node.
pub struct Listener {
    local_addr: SocketAddr,
    thread: JoinHandle<()>,
}

impl Listener {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits for the accept thread to end (after `stop` was set). Reader threads
    /// end on their own within [`POLL_INTERVAL`].
    pub fn join(self) {
        // Wake the blocking accept: a connection to ourselves, closed at once.
        let _ = TcpStream::connect_timeout(&self.local_addr, CONNECT_TIMEOUT);
        let _ = self.thread.join();
    }
}

/// Starts accepting on `listener`: a reader thread per connection hands each
/// decoded message to `deliver`. Stops accepting once `stop` is set.
pub fn spawn_listener<M>(
    listener: TcpListener,
    config: Arc<HandshakeConfig>,
    deliver: Deliver<M>,
    stop: Arc<AtomicBool>,
    stats: Arc<TransportStats>,
) -> io::Result<Listener>
where
    M: DeserializeOwned + Send + 'static,
{
    let local_addr = listener.local_addr()?;
    let node = config.local.node_id;
    let open = Arc::new(AtomicUsize::new(0));
    let thread = thread::Builder::new()
        .name(format!("eo-accept-{node}"))
        .spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let stream = match stream {
                    Ok(stream) => stream,
                    Err(error) => {
                        tracing::warn!(node, %error, "accept failed");
                        continue;
                    }
                };
                let remote = stream
                    .peer_addr()
                    .map_or_else(|_| "?".to_owned(), |a| a.to_string());
                if open.load(Ordering::Relaxed) >= INBOUND_CONNECTIONS_MAX {
                    TransportStats::bump(&stats.refused);
                    tracing::warn!(node, %remote, error = %ConnectionError::TooManyConnections, "closing connection");
                    continue;
                }
                open.fetch_add(1, Ordering::Relaxed);
                let (config, deliver, stop, stats, open, open_count) = (
                    Arc::clone(&config),
                    Arc::clone(&deliver),
                    Arc::clone(&stop),
                    Arc::clone(&stats),
                    Arc::clone(&open),
                    Arc::clone(&open),
                );
                let spawned = thread::Builder::new()
                    .name(format!("eo-read-{node}"))
                    .spawn(move || {
                        let result = serve(stream, &config, &deliver, &stop, &stats);
                        open.fetch_sub(1, Ordering::Relaxed);
                        match result {
                            Ok(peer) => {
                                tracing::debug!(node, %remote, peer, "inbound connection closed")
                            }
                            Err((peer, error)) => {
                                let peer = peer.map_or_else(|| "?".to_owned(), |p| p.to_string());
                                tracing::warn!(node, %remote, %peer, %error, "closing inbound connection");
                            }
                        }
                    });
                if let Err(error) = spawned {
                    open_count.fetch_sub(1, Ordering::Relaxed);
                    tracing::error!(node, %error, "cannot start a reader thread");
                }
            }
        })?;
    Ok(Listener { local_addr, thread })
}

/// Serves one inbound connection: handshake, then messages until it closes.
/// Returns the peer id, or the error (with the peer id if the handshake passed).
fn serve<M: DeserializeOwned>(
    stream: TcpStream,
    config: &HandshakeConfig,
    deliver: &Deliver<M>,
    stop: &AtomicBool,
    stats: &TransportStats,
) -> Result<NodeId, (Option<NodeId>, ConnectionError)> {
    let refused = |peer, error: ConnectionError| {
        match &error {
            ConnectionError::Io(_) => {}
            ConnectionError::Handshake(_)
            | ConnectionError::HandshakeTimeout
            | ConnectionError::ClosedInHandshake => {
                TransportStats::bump(&stats.refused);
                TransportStats::bump(&stats.handshakes_refused);
            }
            _ => TransportStats::bump(&stats.refused),
        }
        if !matches!(error, ConnectionError::Io(_)) {
            stats.note_refusal(&error);
        }
        (peer, error)
    };
    let setup = || -> io::Result<TcpStream> {
        stream.set_read_timeout(Some(POLL_INTERVAL))?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        stream.set_nodelay(true)?;
        stream.try_clone()
    };
    let mut writer = setup().map_err(|e| (None, e.into()))?;
    let mut reader = FrameReader::new(stream);
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let peer = (|| -> Result<NodeId, ConnectionError> {
        let hello = reader.next_in_handshake(stop, deadline)?;
        let (acceptor, challenge) = Acceptor::accept(config, fresh_nonce(), &hello)?;
        writer.write_all(&challenge.to_bytes())?;
        let finish = reader.next_in_handshake(stop, deadline)?;
        Ok(acceptor.handle_finish(&finish)?.node_id)
    })()
    .map_err(|e| refused(None, e))?;
    TransportStats::bump(&stats.accepted);
    tracing::debug!(
        node = config.local.node_id,
        peer,
        "inbound connection established"
    );
    loop {
        let frame = match reader.next(stop, None) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(peer),
            Err(error) => return Err(refused(Some(peer), error)),
        };
        if frame.kind() != FrameKind::Message {
            let kind = frame.kind();
            return Err(refused(
                Some(peer),
                ConnectionError::UnexpectedFrame { kind },
            ));
        }
        let payload = frame.payload();
        let (message, rest) =
            postcard::take_from_bytes::<WireMessage<M>>(payload).map_err(|source| {
                refused(
                    Some(peer),
                    ConnectionError::Payload {
                        len: payload.len(),
                        source,
                    },
                )
            })?;
        if !rest.is_empty() {
            let extra = rest.len();
            return Err(refused(
                Some(peer),
                ConnectionError::TrailingBytes { extra },
            ));
        }
        TransportStats::bump(&stats.messages_in);
        if !deliver(peer, message.stamp, message.msg) {
            return Ok(peer);
        }
    }
}

/// Encodes a message as one frame, ready for [`Outbound::send`].
pub fn encode_message<M: Serialize>(stamp: Lamport, msg: &M) -> Result<Vec<u8>, EncodeError> {
    let payload =
        postcard::to_allocvec(&WireMessage { stamp, msg }).map_err(EncodeError::Postcard)?;
    Ok(Frame::new(FrameKind::Message, payload)?.to_bytes())
}

/// Why a message could not be put on the wire.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// postcard refused the message.
    #[error("cannot encode message: {0}")]
    Postcard(postcard::Error),
    /// The message is above the frame size limit.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// The dialing side of a node: a queue and a writer thread per peer.
pub struct Outbound {
    node: NodeId,
    queues: BTreeMap<NodeId, SyncSender<Vec<u8>>>,
    /// Set by [`Outbound::close`]: a writer that is not connected gives up.
    closing: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<TransportStats>,
}

impl Outbound {
    /// Starts a writer thread per peer. Each dials its peer at its first message.
    pub fn start(
        config: Arc<HandshakeConfig>,
        peers: &BTreeMap<NodeId, SocketAddr>,
        seed: u64,
        stop: Arc<AtomicBool>,
        stats: Arc<TransportStats>,
    ) -> io::Result<Outbound> {
        let node = config.local.node_id;
        let mut queues = BTreeMap::new();
        let mut threads = Vec::new();
        let closing = Arc::new(AtomicBool::new(false));
        for (&peer, &addr) in peers {
            let (tx, rx) = mpsc::sync_channel(OUTBOUND_QUEUE_LEN);
            queues.insert(peer, tx);
            let writer = Writer {
                node,
                peer,
                addr,
                config: Arc::clone(&config),
                rx,
                stop: Arc::clone(&stop),
                closing: Arc::clone(&closing),
                stats: Arc::clone(&stats),
                rng: ChaCha8Rng::seed_from_u64(seed ^ u64::from(peer).rotate_left(32)),
            };
            threads.push(
                thread::Builder::new()
                    .name(format!("eo-write-{node}-{peer}"))
                    .spawn(move || writer.run())?,
            );
        }
        Ok(Outbound {
            node,
            queues,
            closing,
            threads,
            stats,
        })
    }

    /// Queues an encoded frame for `peer`; drops it (counted) if the queue is full
    /// or the peer is not configured.
    pub fn send(&self, peer: NodeId, frame: Vec<u8>) {
        let Some(queue) = self.queues.get(&peer) else {
            TransportStats::bump(&self.stats.messages_dropped);
            tracing::warn!(
                node = self.node,
                peer,
                "message to a node that is not a configured peer dropped"
            );
            return;
        };
        match queue.try_send(frame) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                TransportStats::bump(&self.stats.messages_dropped);
            }
        }
    }

    /// Closes the queues and waits for the writers, which write what is queued
    /// (if connected) and close their connections. A writer that is not connected
    /// drops what it holds.
    pub fn close(self) {
        self.closing.store(true, Ordering::Relaxed);
        drop(self.queues);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// The writer thread of one peer.
struct Writer {
    node: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    config: Arc<HandshakeConfig>,
    rx: Receiver<Vec<u8>>,
    stop: Arc<AtomicBool>,
    closing: Arc<AtomicBool>,
    stats: Arc<TransportStats>,
    rng: ChaCha8Rng,
}

/// What ended a connected writer.
enum Ended {
    /// The queue closed or the node stops: the thread ends.
    Closed,
    /// The connection failed: reconnect.
    Failed(io::Error),
}

impl Writer {
    fn run(mut self) {
        let mut carry: Option<Vec<u8>> = None;
        let mut backoff = DIAL_BACKOFF_MIN;
        let mut failures = 0u64;
        loop {
            if carry.is_none() {
                match self.next_frame() {
                    Some(frame) => carry = Some(frame),
                    None => return,
                }
            }
            match self.dial() {
                Ok(stream) => {
                    TransportStats::bump(&self.stats.dialed);
                    if failures > 0 {
                        tracing::info!(
                            node = self.node,
                            peer = self.peer,
                            failures,
                            "connected after failed dials"
                        );
                    }
                    failures = 0;
                    backoff = DIAL_BACKOFF_MIN;
                    match self.write_loop(stream, &mut carry) {
                        Ended::Closed => return,
                        Ended::Failed(error) => {
                            tracing::info!(node = self.node, peer = self.peer, %error, "connection lost; reconnecting");
                        }
                    }
                }
                Err(error) => {
                    TransportStats::bump(&self.stats.dial_failures);
                    if self.closing.load(Ordering::Relaxed) {
                        return;
                    }
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(node = self.node, peer = self.peer, addr = %self.addr, %error, "cannot connect; retrying with backoff");
                    } else {
                        tracing::debug!(node = self.node, peer = self.peer, %error, failures, "cannot connect");
                    }
                    let jittered = self
                        .rng
                        .random_range(backoff.as_micros() as u64 / 2..=backoff.as_micros() as u64);
                    if !self.sleep(Duration::from_micros(jittered)) {
                        return;
                    }
                    backoff = (backoff * 2).min(DIAL_BACKOFF_MAX);
                }
            }
        }
    }

    /// Waits for the next queued frame; `None` once the queue closed or the node
    /// stops.
    fn next_frame(&self) -> Option<Vec<u8>> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return None;
            }
            match self.rx.recv_timeout(POLL_INTERVAL) {
                Ok(frame) => return Some(frame),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Sleeps `delay` in steps, returning false if the node stops meanwhile.
    fn sleep(&self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        while Instant::now() < until {
            if self.stop.load(Ordering::Relaxed) || self.closing.load(Ordering::Relaxed) {
                return false;
            }
            thread::sleep(POLL_INTERVAL.min(until.saturating_duration_since(Instant::now())));
        }
        !self.stop.load(Ordering::Relaxed) && !self.closing.load(Ordering::Relaxed)
    }

    fn dial(&self) -> Result<TcpStream, ConnectionError> {
        let stream = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(POLL_INTERVAL))?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let mut writer = stream.try_clone()?;
        let (initiator, hello) = Initiator::start(
            HandshakeConfig::clone(&self.config),
            self.peer,
            fresh_nonce(),
        )?;
        writer.write_all(&hello.to_bytes())?;
        let mut reader = FrameReader::new(stream);
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let challenge = reader.next_in_handshake(&self.stop, deadline)?;
        let (_peer, finish) = initiator.handle_challenge(&challenge)?;
        writer.write_all(&finish.to_bytes())?;
        Ok(writer)
    }

    fn write_loop(&self, stream: TcpStream, carry: &mut Option<Vec<u8>>) -> Ended {
        let mut out = BufWriter::new(stream);
        loop {
            let mut written = 0u64;
            if let Some(frame) = carry.take() {
                if let Err(e) = out.write_all(&frame) {
                    TransportStats::bump(&self.stats.messages_dropped);
                    return Ended::Failed(e);
                }
                written += 1;
            }
            while let Ok(frame) = self.rx.try_recv() {
                if let Err(e) = out.write_all(&frame) {
                    TransportStats::bump(&self.stats.messages_dropped);
                    return Ended::Failed(e);
                }
                written += 1;
            }
            if let Err(e) = out.flush() {
                return Ended::Failed(e);
            }
            self.stats
                .messages_out
                .fetch_add(written, Ordering::Relaxed);
            match self.next_frame() {
                Some(frame) => *carry = Some(frame),
                None => return Ended::Closed,
            }
        }
    }
}
