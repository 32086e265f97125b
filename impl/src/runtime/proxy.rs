//! A fault-injecting TCP proxy for one directed peer link, for `eo run` and tests.
//!
//! A node that would dial a peer at `target` dials the proxy instead; the proxy
//! accepts, dials `target` and forwards both directions of the connection **frame by
//! frame** ([`FrameDecoder`]): a frame is never split or merged with another, so the
//! nodes only ever see whole frames. Handshake frames ([`FrameKind::Handshake`])
//! pass intact, in order and without delay — the faults are those of a network, not
//! of an attacker. Every data frame ([`FrameKind::Message`]) is, from a seeded rng:
//!
//! - dropped with probability [`Faults::drop`];
//! - otherwise duplicated with probability [`Faults::dup`] (two copies);
//! - each copy delayed by a uniform `0..=delay_ms_max` milliseconds. Frames leave
//!   in order of their due time, so a delay also reorders them.
//!
//! Each direction of each connection has its own rng, derived from the proxy's seed,
//! the connection number and the direction, so the fault *decisions* on a given
//! stream of frames are reproducible (the interleaving with the nodes is not).
//!
//! Bytes that are not frames (the decoder refuses them) close the connection in both
//! directions, as the node itself would. Everything is bounded: at most
//! [`QUEUE_FRAMES_MAX`] frames wait per direction (the reader then blocks: TCP
//! backpressure), at most [`CONNECTIONS_MAX`] connections are open at once (more are
//! closed on accept), and delays are at most [`DELAY_MS_MAX`].
//!
//! Plain threads: one acceptor per proxy, a reader and a writer per direction of a
//! connection. A proxy serves a handful of connections of one link; threads keep it
//! obvious and free of an async runtime.

use super::frame::{FrameDecoder, FrameKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use thiserror::Error;

/// The longest delay a proxy may add to one frame, in milliseconds.
pub const DELAY_MS_MAX: u64 = 10_000;

/// The most frames waiting to be written per direction of a connection.
pub const QUEUE_FRAMES_MAX: usize = 4_096;

/// The most connections one proxy holds open at once.
pub const CONNECTIONS_MAX: usize = 64;

/// How long the proxy waits to reach the target, in milliseconds.
pub const CONNECT_TIMEOUT_MS: u64 = 2_000;

/// Bytes read from a socket at once.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// What the proxy does to data frames.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Probability in `[0, 1]` that a data frame is dropped.
    pub drop: f64,
    /// Probability in `[0, 1]` that a data frame not dropped is sent twice.
    pub dup: f64,
    /// Each copy of a data frame is delayed by a uniform `0..=delay_ms_max` ms.
    pub delay_ms_max: u64,
}

impl Faults {
    /// No faults: the proxy forwards every frame at once.
    pub const NONE: Faults = Faults {
        drop: 0.0,
        dup: 0.0,
        delay_ms_max: 0,
    };

    /// Checks the bounds: probabilities in `[0, 1]`, a delay of at most [`DELAY_MS_MAX`].
    pub fn check(&self) -> Result<(), ProxyError> {
        for (name, p) in [("drop", self.drop), ("dup", self.dup)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ProxyError::Probability { name, value: p });
            }
        }
        if self.delay_ms_max > DELAY_MS_MAX {
            return Err(ProxyError::DelayTooLong {
                delay_ms: self.delay_ms_max,
            });
        }
        Ok(())
    }

    /// Whether any fault is on.
    pub fn any(&self) -> bool {
        self.drop > 0.0 || self.dup > 0.0 || self.delay_ms_max > 0
    }
}

/// Why a proxy could not start.
#[derive(Debug, Error)]
pub enum ProxyError {
    /// A probability outside `[0, 1]` (or not a number).
    #[error("--{name} {value} is not a probability in [0, 1]")]
    Probability {
        /// The option's name.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// A delay above [`DELAY_MS_MAX`].
    #[error("a delay of {delay_ms} ms is above the limit of {DELAY_MS_MAX} ms")]
    DelayTooLong {
        /// The delay asked for, in milliseconds.
        delay_ms: u64,
    },
    /// The proxy's listening socket could not be opened.
    #[error("proxy: cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
}

/// Counts of what a proxy did, over all its connections so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProxyStats {
    /// Connections accepted and joined to the target.
    pub connections: u64,
    /// Connections closed at once: the target was unreachable or the limit reached.
    pub refused: u64,
    /// Handshake frames forwarded (intact, undelayed).
    pub handshake_frames: u64,
    /// Data frames read from either side.
    pub data_frames: u64,
    /// Data frames dropped.
    pub dropped: u64,
    /// Data frames sent twice.
    pub duplicated: u64,
    /// Copies of data frames held back by a non-zero delay.
    pub delayed: u64,
    /// Connections closed because bytes were not frames.
    pub bad_frames: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    refused: AtomicU64,
    handshake_frames: AtomicU64,
    data_frames: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    delayed: AtomicU64,
    bad_frames: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ProxyStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProxyStats {
            connections: get(&self.connections),
            refused: get(&self.refused),
            handshake_frames: get(&self.handshake_frames),
            data_frames: get(&self.data_frames),
            dropped: get(&self.dropped),
            duplicated: get(&self.duplicated),
            delayed: get(&self.delayed),
            bad_frames: get(&self.bad_frames),
        }
    }
}

/// What the proxy's threads share.
struct Shared {
    target: SocketAddr,
    faults: Faults,
    seed: u64,
    stopped: AtomicBool,
    counters: Counters,
    /// A clone of every open socket, to shut them all down on [`Proxy::stop`].
    open: Mutex<Vec<(u64, TcpStream)>>,
}

/// A running proxy for one link: listens on loopback, forwards to its target.
/// Dropping it stops it (every connection is closed and every thread joined).
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy on an ephemeral loopback port that forwards to `target`.
    pub fn start(target: SocketAddr, faults: Faults, seed: u64) -> Result<Proxy, ProxyError> {
        let listen: SocketAddr = (std::net::Ipv4Addr::LOCALHOST, 0).into();
        Proxy::start_on(listen, target, faults, seed)
    }

    /// Starts a proxy listening on `listen` that forwards to `target`.
    pub fn start_on(
        listen: SocketAddr,
        target: SocketAddr,
        faults: Faults,
        seed: u64,
    ) -> Result<Proxy, ProxyError> {
        faults.check()?;
        let listener = TcpListener::bind(listen).map_err(|source| ProxyError::Listen {
            addr: listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| ProxyError::Listen {
            addr: listen,
            source,
        })?;
        let shared = Arc::new(Shared {
            target,
            faults,
            seed,
            stopped: AtomicBool::new(false),
            counters: Counters::default(),
            open: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("proxy-{addr}"))
                .spawn(move || accept_loop(&listener, &shared))
                .map_err(|source| ProxyError::Listen {
                    addr: listen,
                    source,
                })?
        };
        Ok(Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address nodes dial instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the proxy forwards to.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> ProxyStats {
        self.shared.counters.snapshot()
    }

    /// Stops accepting, closes every connection and joins every thread; returns the
    /// final counts.
    pub fn stop(mut self) -> ProxyStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the acceptor blocked in `accept`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(CONNECT_TIMEOUT_MS));
        for (_, stream) in lock(&self.shared.open).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let _ = acceptor.join();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a proxy thread panicked; the data (sockets,
    // queues) is still usable for shutting down.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    let mut connection: u64 = 0;
    for incoming in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            break;
        }
        workers.retain(|w| !w.is_finished());
        let Ok(client) = incoming else { continue };
        if workers.len() >= CONNECTIONS_MAX {
            Counters::bump(&shared.counters.refused);
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
        let Ok(server) = TcpStream::connect_timeout(&shared.target, timeout) else {
            Counters::bump(&shared.counters.refused);
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        connection += 1;
        Counters::bump(&shared.counters.connections);
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        {
            let mut open = lock(&shared.open);
            for s in [&client, &server] {
                if let Ok(clone) = s.try_clone() {
                    open.push((connection, clone));
                }
            }
        }
        let shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name(format!("proxy-conn-{connection}"))
            .spawn(move || serve(client, server, connection, &shared));
        if let Ok(worker) = spawned {
            workers.push(worker);
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
}

/// Runs both directions of one connection until either side closes.
fn serve(client: TcpStream, server: TcpStream, connection: u64, shared: &Arc<Shared>) {
    let pipes = [
        (client.try_clone(), server.try_clone(), 0u64),
        (server.try_clone(), client.try_clone(), 1u64),
    ];
    let mut handles = Vec::new();
    for (from, to, direction) in pipes {
        let (Ok(from), Ok(to)) = (from, to) else {
            continue;
        };
        let shared = Arc::clone(shared);
        let seed = shared
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(connection.wrapping_mul(2).wrapping_add(direction));
        if let Ok(handle) = thread::Builder::new()
            .name(format!("proxy-pipe-{connection}-{direction}"))
            .spawn(move || pipe(from, to, seed, &shared))
        {
            handles.push(handle);
        }
    }
    for handle in handles {
        let _ = handle.join();
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    lock(&shared.open).retain(|(c, _)| *c != connection);
}

/// A frame waiting for its due time; ordered so that the heap pops the earliest
/// (ties by arrival order).
struct Pending {
    due: Instant,
    order: u64,
    bytes: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.order) == (other.due, other.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.order).cmp(&(self.due, self.order))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Pending>,
    /// The reader is done: write what is queued, then close.
    closed: bool,
    /// The writer failed: the reader stops.
    broken: bool,
}

/// One direction: a reader thread (this one) decodes frames and decides their
/// fate; a writer thread sends them when due.
fn pipe(mut from: TcpStream, to: TcpStream, seed: u64, shared: &Arc<Shared>) {
    let queue = Arc::new((Mutex::new(Queue::default()), Condvar::new()));
    let writer = {
        let queue = Arc::clone(&queue);
        thread::Builder::new().spawn(move || write_due(to, &queue))
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let mut order: u64 = 0;
    let faults = shared.faults;
    let counters = &shared.counters;
    'read: loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut input = &buf[..n];
        while !input.is_empty() {
            let decoded = match decoder.decode(input) {
                Ok(decoded) => decoded,
                Err(_) => {
                    Counters::bump(&counters.bad_frames);
                    let _ = from.shutdown(Shutdown::Both);
                    break 'read;
                }
            };
            input = &input[decoded.consumed..];
            let Some(frame) = decoded.frame else { continue };
            let bytes = frame.to_bytes();
            let now = Instant::now();
            let mut copies: Vec<Instant> = Vec::with_capacity(2);
            match frame.kind() {
                FrameKind::Handshake => {
                    Counters::bump(&counters.handshake_frames);
                    copies.push(now);
                }
                FrameKind::Message => {
                    Counters::bump(&counters.data_frames);
                    if rng.random_bool(faults.drop) {
                        Counters::bump(&counters.dropped);
                    } else {
                        let n_copies = if rng.random_bool(faults.dup) {
                            Counters::bump(&counters.duplicated);
                            2
                        } else {
                            1
                        };
                        for _ in 0..n_copies {
                            let delay_ms = if faults.delay_ms_max > 0 {
                                rng.random_range(0..=faults.delay_ms_max)
                            } else {
                                0
                            };
                            if delay_ms > 0 {
                                Counters::bump(&counters.delayed);
                            }
                            copies.push(now + Duration::from_millis(delay_ms));
                        }
                    }
                }
            }
            let (lock_, ready) = &*queue;
            let mut q = lock(lock_);
            for due in copies {
                while q.heap.len() >= QUEUE_FRAMES_MAX && !q.broken {
                    q = ready
                        .wait(q)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if q.broken {
                    break 'read;
                }
                order += 1;
                q.heap.push(Pending {
                    due,
                    order,
                    bytes: bytes.clone(),
                });
            }
            ready.notify_all();
        }
    }
    {
        let (lock_, ready) = &*queue;
        lock(lock_).closed = true;
        ready.notify_all();
    }
    if let Ok(writer) = writer {
        let _ = writer.join();
    }
}

/// Writes each queued frame once it is due; on the reader's close, writes the rest
/// (waiting out their delays) and shuts the write half.
fn write_due(mut to: TcpStream, queue: &(Mutex<Queue>, Condvar)) {
    let (lock_, ready) = queue;
    let mut q = lock(lock_);
    loop {
        let now = Instant::now();
        match q.heap.peek() {
            Some(top) if top.due <= now => {
                let frame = q.heap.pop().expect("peeked");
                ready.notify_all();
                drop(q);
                if to.write_all(&frame.bytes).is_err() {
                    let mut q = lock(lock_);
                    q.broken = true;
                    ready.notify_all();
                    return;
                }
                q = lock(lock_);
            }
            Some(top) => {
                let wait = top.due - now;
                q = ready
                    .wait_timeout(q, wait)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            None if q.closed => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            None => {
                q = ready
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::frame::Frame;

    /// How long a test waits for any one read before failing.
    const READ_TIMEOUT: Duration = Duration::from_secs(10);

    fn frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
        Frame::new(kind, payload.to_vec()).unwrap().to_bytes()
    }

    /// A target that accepts one connection and returns its socket.
    fn target() -> (SocketAddr, JoinHandle<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            s
        });
        (addr, accept)
    }

    /// Reads frames until the stream ends or the payload `end` arrives.
    fn read_frames(stream: &mut TcpStream, end: &[u8]) -> Vec<Frame> {
        let mut decoder = FrameDecoder::new();
        let mut frames = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).expect("read within the timeout");
            if n == 0 {
                return frames;
            }
            for f in decoder.decode_all(&buf[..n]).unwrap() {
                let last = f.payload() == end;
                frames.push(f);
                if last {
                    return frames;
                }
            }
        }
    }

    fn connect(proxy: &Proxy) -> TcpStream {
        let s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        s
    }

    #[test]
    fn without_faults_frames_pass_in_order_both_ways() {
        let (addr, accept) = target();
        let proxy = Proxy::start(addr, Faults::NONE, 1).unwrap();
        let mut client = connect(&proxy);
        let mut server = accept.join().unwrap();
        let mut sent = frame(FrameKind::Handshake, b"hello");
        for i in 0..100u32 {
            sent.extend(frame(FrameKind::Message, &i.to_le_bytes()));
        }
        sent.extend(frame(FrameKind::Message, b"end"));
        // Written one byte at a time: the proxy reassembles whole frames.
        for b in &sent {
            client.write_all(std::slice::from_ref(b)).unwrap();
        }
        let got = read_frames(&mut server, b"end");
        assert_eq!(got.len(), 102);
        assert_eq!(got[0].kind(), FrameKind::Handshake);
        for (i, f) in got[1..101].iter().enumerate() {
            assert_eq!(f.payload(), (i as u32).to_le_bytes());
        }
        server
            .write_all(&frame(FrameKind::Message, b"back"))
            .unwrap();
        assert_eq!(read_frames(&mut client, b"back")[0].payload(), b"back");
        let stats = proxy.stop();
        assert_eq!(stats.connections, 1);
        assert_eq!(stats.handshake_frames, 1);
        assert_eq!(stats.data_frames, 102);
        assert_eq!((stats.dropped, stats.duplicated, stats.delayed), (0, 0, 0));
    }

    /// Sends `n` numbered data frames after a handshake frame, then closes; returns
    /// what the target received and the proxy's counts.
    fn through(faults: Faults, n: u32, seed: u64) -> (Vec<Frame>, ProxyStats) {
        let (addr, accept) = target();
        let proxy = Proxy::start(addr, faults, seed).unwrap();
        let mut client = connect(&proxy);
        let mut server = accept.join().unwrap();
        let mut sent = frame(FrameKind::Handshake, b"hello");
        for i in 0..n {
            sent.extend(frame(FrameKind::Message, &i.to_le_bytes()));
        }
        client.write_all(&sent).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        // The proxy writes every queued frame, then closes: read to the end.
        let got = read_frames(&mut server, b"never");
        (got, proxy.stop())
    }

    fn numbers(frames: &[Frame]) -> Vec<u32> {
        frames
            .iter()
            .filter(|f| f.kind() == FrameKind::Message)
            .map(|f| u32::from_le_bytes(f.payload().try_into().unwrap()))
            .collect()
    }

    #[test]
    fn drop_loses_about_p_of_data_frames_and_no_handshake() {
        let faults = Faults {
            drop: 0.3,
            ..Faults::NONE
        };
        let (got, stats) = through(faults, 1000, 7);
        assert_eq!(got[0].kind(), FrameKind::Handshake, "handshake intact");
        let nums = numbers(&got);
        assert_eq!(stats.dropped as usize, 1000 - nums.len());
        assert!((200..400).contains(&stats.dropped), "{stats:?}");
        assert!(nums.windows(2).all(|w| w[0] < w[1]), "no delay: in order");
    }

    #[test]
    fn dup_sends_about_p_twice() {
        let faults = Faults {
            dup: 0.2,
            ..Faults::NONE
        };
        let (got, stats) = through(faults, 1000, 8);
        let nums = numbers(&got);
        assert_eq!(nums.len() as u64, 1000 + stats.duplicated);
        assert!((100..300).contains(&stats.duplicated), "{stats:?}");
        let mut unique = nums.clone();
        unique.dedup();
        assert_eq!(unique, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn delay_reorders_but_loses_nothing() {
        let faults = Faults {
            delay_ms_max: 20,
            ..Faults::NONE
        };
        let (got, stats) = through(faults, 300, 9);
        assert_eq!(got[0].kind(), FrameKind::Handshake, "handshake not delayed");
        let nums = numbers(&got);
        assert!(stats.delayed > 0);
        assert!(nums.windows(2).any(|w| w[0] > w[1]), "some reordering");
        let mut sorted = nums.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..300).collect::<Vec<_>>());
    }

    #[test]
    fn the_same_seed_makes_the_same_decisions() {
        let faults = Faults {
            drop: 0.25,
            dup: 0.25,
            delay_ms_max: 0,
        };
        let a = numbers(&through(faults, 500, 42).0);
        let b = numbers(&through(faults, 500, 42).0);
        let c = numbers(&through(faults, 500, 43).0);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn garbage_closes_the_connection() {
        let (addr, accept) = target();
        let proxy = Proxy::start(addr, Faults::NONE, 1).unwrap();
        let mut client = connect(&proxy);
        let mut server = accept.join().unwrap();
        client.write_all(&[9, 9, 9, 9, 9, 9, 9]).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(server.read(&mut buf).unwrap(), 0, "target sees a close");
        assert_eq!(proxy.stop().bad_frames, 1);
    }

    #[test]
    fn bad_fault_options_are_typed_errors() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let bad = |faults| Proxy::start(addr, faults, 0).err().unwrap();
        assert!(matches!(
            bad(Faults {
                drop: 1.5,
                ..Faults::NONE
            }),
            ProxyError::Probability { name: "drop", .. }
        ));
        assert!(matches!(
            bad(Faults {
                dup: f64::NAN,
                ..Faults::NONE
            }),
            ProxyError::Probability { name: "dup", .. }
        ));
        assert!(matches!(
            bad(Faults {
                delay_ms_max: DELAY_MS_MAX + 1,
                ..Faults::NONE
            }),
            ProxyError::DelayTooLong { .. }
        ));
    }
}
