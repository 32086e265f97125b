//! The NATS JetStream peer of `benches/peers/run.sh`: a tiny synchronous client
//! of the NATS text protocol (no dependency: the only ones on crates.io are
//! async and would pull in an async runtime, and Debian has no `nats` CLI).
//!
//! ```text
//! eo-bench-nats HOST:PORT MESSAGES SIZE WINDOW
//! ```
//!
//! It creates a file-storage stream with a deduplication window, then on two
//! connections at once: a publisher keeps WINDOW publishes in flight, each with
//! a `Nats-Msg-Id` header and waiting for the server's PubAck (stored, not a
//! duplicate); a consumer pulls from a durable explicit-ack consumer and acks
//! each message with a reply subject, so the server confirms every ack
//! (`AckSync`). A message is done when its ack is confirmed; latency runs from
//! its publish to that confirmation. Prints
//! `ROW nats-jetstream <messages/s> <p50 us> <p99 us> <note>`.

use eo_benches::latency::Latencies;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The stream and consumer names, and the subject published to.
const STREAM: &str = "EOBENCH";
const CONSUMER: &str = "C";
const SUBJECT: &str = "eobench.data";
/// Longest protocol line or payload accepted from the server.
const FRAME_MAX: usize = 8 << 20;
/// How long the server holds an unanswered pull (nanoseconds: 1 s).
const PULL_EXPIRES_NS: u64 = 1_000_000_000;
/// How long a read may block before the run is declared stalled.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

type Result<T> = std::result::Result<T, String>;

/// One message from the server.
struct Incoming {
    subject: String,
    /// The subscription it arrived on.
    sid: String,
    reply: Option<String>,
    headers: Vec<u8>,
    payload: Vec<u8>,
}

struct Conn {
    r: BufReader<TcpStream>,
    w: BufWriter<TcpStream>,
}

impl Conn {
    fn open(addr: &str) -> Result<Conn> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut conn = Conn {
            r: BufReader::new(stream.try_clone().map_err(|e| e.to_string())?),
            w: BufWriter::new(stream),
        };
        let info = conn.line()?;
        if !info.starts_with("INFO ") {
            return Err(format!("expected INFO, got {info}"));
        }
        conn.raw(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\"lang\":\"eo-bench\",\"version\":\"0.1\"}\r\nPING\r\n")?;
        conn.flush()?;
        loop {
            match conn.line()?.as_str() {
                "PONG" => return Ok(conn),
                "+OK" => continue,
                other => return Err(format!("connect refused: {other}")),
            }
        }
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        let n = self
            .r
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        if n > FRAME_MAX {
            return Err("a line beyond FRAME_MAX".into());
        }
        Ok(line.trim_end().to_string())
    }

    fn bytes(&mut self, n: usize) -> Result<Vec<u8>> {
        if n > FRAME_MAX {
            return Err(format!("a payload of {n} bytes, beyond FRAME_MAX"));
        }
        let mut buf = vec![0; n + 2];
        self.r
            .read_exact(&mut buf)
            .map_err(|e| format!("read: {e}"))?;
        buf.truncate(n);
        Ok(buf)
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.w.write_all(bytes).map_err(|e| format!("write: {e}"))
    }

    fn flush(&mut self) -> Result<()> {
        self.w.flush().map_err(|e| format!("write: {e}"))
    }

    /// Flushes when nothing is buffered to read, i.e. before a read would block.
    fn flush_if_idle(&mut self) -> Result<()> {
        if self.r.buffer().is_empty() {
            self.flush()?;
        }
        Ok(())
    }

    fn sub(&mut self, subject: &str, sid: u32) -> Result<()> {
        self.raw(format!("SUB {subject} {sid}\r\n").as_bytes())
    }

    fn publish(
        &mut self,
        subject: &str,
        reply: &str,
        headers: &[u8],
        payload: &[u8],
    ) -> Result<()> {
        if headers.is_empty() {
            self.raw(format!("PUB {subject} {reply} {}\r\n", payload.len()).as_bytes())?;
        } else {
            let total = headers.len() + payload.len();
            self.raw(format!("HPUB {subject} {reply} {} {total}\r\n", headers.len()).as_bytes())?;
            self.raw(headers)?;
        }
        self.raw(payload)?;
        self.raw(b"\r\n")
    }

    /// The next message, answering pings and skipping `+OK`.
    fn next(&mut self) -> Result<Incoming> {
        loop {
            self.flush_if_idle()?;
            let line = self.line()?;
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.first().copied() {
                Some("PING") => self.raw(b"PONG\r\n")?,
                Some("PONG") | Some("+OK") => {}
                Some("-ERR") => return Err(format!("server error: {line}")),
                Some("MSG") if parts.len() == 4 || parts.len() == 5 => {
                    let n: usize = parts[parts.len() - 1].parse().map_err(|_| line.clone())?;
                    let payload = self.bytes(n)?;
                    return Ok(Incoming {
                        subject: parts[1].to_string(),
                        sid: parts[2].to_string(),
                        reply: (parts.len() == 5).then(|| parts[3].to_string()),
                        headers: Vec::new(),
                        payload,
                    });
                }
                Some("HMSG") if parts.len() == 5 || parts.len() == 6 => {
                    let h: usize = parts[parts.len() - 2].parse().map_err(|_| line.clone())?;
                    let n: usize = parts[parts.len() - 1].parse().map_err(|_| line.clone())?;
                    if h > n {
                        return Err(format!("header longer than message: {line}"));
                    }
                    let mut all = self.bytes(n)?;
                    let payload = all.split_off(h);
                    return Ok(Incoming {
                        subject: parts[1].to_string(),
                        sid: parts[2].to_string(),
                        reply: (parts.len() == 6).then(|| parts[3].to_string()),
                        headers: all,
                        payload,
                    });
                }
                _ => return Err(format!("unexpected from the server: {line}")),
            }
        }
    }

    /// A request with a JSON body; returns the reply's body.
    fn request(&mut self, subject: &str, body: &str) -> Result<String> {
        self.sub("_INBOX.eobench.req", 99)?;
        self.publish(subject, "_INBOX.eobench.req", b"", body.as_bytes())?;
        self.flush()?;
        let reply = self.next()?;
        self.raw(b"UNSUB 99\r\n")?;
        let text = String::from_utf8_lossy(&reply.payload).to_string();
        if text.contains("\"error\"") {
            return Err(format!("{subject}: {text}"));
        }
        Ok(text)
    }
}

fn setup(addr: &str) -> Result<()> {
    let mut c = Conn::open(addr)?;
    let _ = c.request(&format!("$JS.API.STREAM.DELETE.{STREAM}"), "");
    c.request(
        &format!("$JS.API.STREAM.CREATE.{STREAM}"),
        &format!(
            "{{\"name\":\"{STREAM}\",\"subjects\":[\"{SUBJECT}\"],\"storage\":\"file\",\
             \"retention\":\"limits\",\"num_replicas\":1,\"duplicate_window\":120000000000}}"
        ),
    )?;
    c.request(
        &format!("$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.{CONSUMER}"),
        &format!(
            "{{\"stream_name\":\"{STREAM}\",\"config\":{{\"durable_name\":\"{CONSUMER}\",\
             \"ack_policy\":\"explicit\",\"deliver_policy\":\"all\",\"max_ack_pending\":100000,\
             \"ack_wait\":30000000000}}}}"
        ),
    )?;
    Ok(())
}

fn publisher(
    addr: &str,
    n: u64,
    size: usize,
    window: u64,
    sent: &Mutex<HashMap<u64, Instant>>,
) -> Result<()> {
    let mut c = Conn::open(addr)?;
    c.sub("_INBOX.eobench.puback", 1)?;
    let (mut published, mut acked, mut duplicates) = (0u64, 0u64, 0u64);
    while acked < n {
        while published < n && published - acked < window {
            published += 1;
            let mut payload = format!("{published:020}").into_bytes();
            payload.resize(size.max(20), b'x');
            let headers = format!("NATS/1.0\r\nNats-Msg-Id: {published}\r\n\r\n");
            sent.lock()
                .map_err(|_| "poisoned")?
                .insert(published, Instant::now());
            c.publish(
                SUBJECT,
                "_INBOX.eobench.puback",
                headers.as_bytes(),
                &payload,
            )?;
        }
        let ack = c.next()?;
        let text = String::from_utf8_lossy(&ack.payload);
        if !text.contains("\"seq\"") {
            return Err(format!("publish refused: {text}"));
        }
        if text.contains("\"duplicate\":true") {
            duplicates += 1;
        }
        acked += 1;
    }
    if duplicates > 0 {
        return Err(format!("{duplicates} publishes were taken as duplicates"));
    }
    Ok(())
}

fn consumer(
    addr: &str,
    n: u64,
    window: u64,
    sent: &Mutex<HashMap<u64, Instant>>,
) -> Result<Latencies> {
    let mut c = Conn::open(addr)?;
    c.sub("_INBOX.eobench.pull", 1)?;
    c.sub("_INBOX.eobench.acked.*", 2)?;
    let pull = format!("{{\"batch\":{window},\"expires\":{PULL_EXPIRES_NS}}}");
    let next = format!("$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{CONSUMER}");
    c.publish(&next, "_INBOX.eobench.pull", b"", pull.as_bytes())?;
    let (mut pulled_left, mut confirmed) = (window, 0u64);
    let mut latencies = Latencies::default();
    let mut acking: HashMap<String, u64> = HashMap::new();
    while confirmed < n {
        let m = c.next()?;
        // Pulled messages keep their own subject: tell them by subscription.
        if m.sid == "1" {
            let status = m.headers.starts_with(b"NATS/1.0 4");
            if !status {
                let id: u64 = std::str::from_utf8(m.payload.get(..20).unwrap_or_default())
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or("a message without its id")?;
                let reply = m.reply.ok_or("a message without an ack subject")?;
                let inbox = format!("_INBOX.eobench.acked.{id}");
                c.publish(&reply, &inbox, b"", b"+ACK")?;
                acking.insert(inbox, id);
                pulled_left = pulled_left.saturating_sub(1);
            }
            if status || pulled_left == 0 {
                pulled_left = window;
                c.publish(&next, "_INBOX.eobench.pull", b"", pull.as_bytes())?;
            }
        } else if let Some(id) = acking.remove(&m.subject) {
            let at = sent.lock().map_err(|_| "poisoned")?.remove(&id);
            if let Some(at) = at {
                latencies.record(at.elapsed());
            }
            confirmed += 1;
        }
    }
    Ok(latencies)
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, n, size, window] = args.as_slice() else {
        return Err("usage: eo-bench-nats HOST:PORT MESSAGES SIZE WINDOW".into());
    };
    let number = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("{s} is not a whole number"))
    };
    let (n, size, window) = (number(n)?, number(size)? as usize, number(window)?.max(1));
    setup(addr)?;
    let sent = Arc::new(Mutex::new(HashMap::new()));
    let start = Instant::now();
    let latencies = std::thread::scope(|s| {
        let p = s.spawn(|| publisher(addr, n, size, window, &sent));
        let c = s.spawn(|| consumer(addr, n, window, &sent));
        let p = p.join().map_err(|_| "the publisher panicked".to_string())?;
        let c = c.join().map_err(|_| "the consumer panicked".to_string())?;
        p?;
        c
    })?;
    let elapsed = start.elapsed();
    let s = latencies.summary().ok_or("no latencies")?;
    println!(
        "ROW nats-jetstream {:.0} {} {} file-storage,msg-id-dedup,ack-confirmed",
        n as f64 / elapsed.as_secs_f64(),
        s.p50_us,
        s.p99_us
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eo-bench-nats: {e}");
            ExitCode::FAILURE
        }
    }
}
