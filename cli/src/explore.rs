//! `eo explore`: the Stateright Explorer, with what it leaves unsaid.
//!
//! Stateright's Explorer runs on a private loopback port; `eo explore` serves
//! the user's address itself and passes every request through, changing four
//! things:
//!
//! - **It names what it serves.** The page's title and its "Model" line read
//!   `ack-retry · variant no-dedup · --senders 1`, not `System<Node, AckRetryCfg>`.
//! - **Property marks are about the state shown.** Stateright marks a state's
//!   properties from what its checker has found so far, so a state that breaks
//!   `exactly-once` can show "✅ Safety holds". Here every state's marks come from
//!   evaluating each property on that very state (the model crate's
//!   `catalog::inspect`), and a panel lists them for the state selected.
//! - **States read well.** Stateright's internal bookkeeping (`timers_set`,
//!   `random_choices`) is left out of the state text unless `--internals` is
//!   given, and the sequence diagram names the actors (`sender 0`, `receiver`).
//! - **It says where the list of global results comes from**: the checker's
//!   progress, not the state shown.
//!
//! The front is plain HTTP/1.0 over `std::net`, one thread per connection (at
//! most [`CONNECTIONS_MAX`]), every read bounded in size and time.

use crate::svg::{Kind, Picture};
use crate::UsageError;
use eo_models::catalog::{self, ModelEntry, Settings, StateAt};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections served at once; more wait in the listener's backlog.
const CONNECTIONS_MAX: usize = 64;
/// A request line and headers longer than this are refused.
const REQUEST_HEAD_BYTES_MAX: u64 = 16 * 1024;
/// An Explorer answer larger than this is refused (a state list is far smaller).
const UPSTREAM_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// A client or the Explorer silent for this long is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The Explorer must answer within this long after it starts.
const UPSTREAM_START_TIMEOUT: Duration = Duration::from_secs(30);

/// The page's script: the per-state panel and the labels (see the module docs).
const SCRIPT: &str = include_str!("explore.js");

/// What the front says about the model it serves.
struct Served {
    model: String,
    variant: String,
    /// The flags given, as typed (`--senders 1 --crashes 0`).
    flags: String,
    internals: bool,
    upstream: SocketAddr,
}

impl Served {
    /// `ack-retry · variant no-dedup · --senders 1 (other flags at their defaults)`.
    fn label(&self) -> String {
        let flags = if self.flags.is_empty() {
            "default configuration".to_owned()
        } else {
            format!("{} (other flags at their defaults)", self.flags.trim())
        };
        format!("{} · variant {} · {flags}", self.model, self.variant)
    }
}

pub fn run(
    model: &str,
    settings: &Settings,
    flags: String,
    address: SocketAddr,
    internals: bool,
) -> Result<ExitCode, UsageError> {
    let entry: &'static dyn ModelEntry =
        eo_conformance::catalog::find(model).map_err(|e| UsageError(e.0))?;
    let listener = TcpListener::bind(address)
        .map_err(|e| UsageError(format!("cannot serve the Explorer on {address}: {e}")))?;
    let upstream = free_loopback_port()?;
    let explorer_settings = settings.clone();
    let explorer =
        std::thread::spawn(move || entry.explore(&explorer_settings, upstream).map_err(|e| e.0));
    // Wait until the Explorer answers, or report why it could not start (a bad
    // configuration is refused before it serves).
    let started = Instant::now();
    loop {
        if explorer.is_finished() {
            let why = match explorer.join() {
                Ok(Err(why)) => why,
                _ => "the Explorer stopped".to_owned(),
            };
            return Err(UsageError(why));
        }
        if catalog::served().is_some() && TcpStream::connect(upstream).is_ok() {
            break;
        }
        if started.elapsed() > UPSTREAM_START_TIMEOUT {
            return Err(UsageError("the Explorer did not start".to_owned()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let served = Arc::new(Served {
        model: model.to_owned(),
        variant: settings
            .variant
            .clone()
            .unwrap_or_else(|| "correct".to_owned()),
        flags,
        internals,
        upstream,
    });
    println!(
        "Serving the Stateright Explorer for {} at http://{address}/ (Ctrl-C to stop)",
        served.label()
    );
    let _ = std::io::stdout().flush();
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        while open.load(Ordering::Acquire) >= CONNECTIONS_MAX {
            std::thread::sleep(Duration::from_millis(5));
        }
        open.fetch_add(1, Ordering::AcqRel);
        let (served, open) = (Arc::clone(&served), Arc::clone(&open));
        std::thread::spawn(move || {
            let _ = handle(stream, &served);
            open.fetch_sub(1, Ordering::AcqRel);
        });
    }
    Ok(ExitCode::SUCCESS)
}

fn free_loopback_port() -> Result<SocketAddr, UsageError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| UsageError(format!("cannot find a loopback port for the Explorer: {e}")))
}

/// An HTTP answer.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(value: &impl serde::Serialize) -> Answer {
        Answer {
            status: 200,
            content_type: "application/json".to_owned(),
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    fn error(status: u16, why: &str) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8".to_owned(),
            body: why.as_bytes().to_vec(),
        }
    }
}

fn handle(stream: TcpStream, served: &Served) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?).take(REQUEST_HEAD_BYTES_MAX);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut content_length = 0u64;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    // A body (only `POST /.runtocompletion` sends one, empty) is read and dropped.
    let mut reader = reader
        .into_inner()
        .take(content_length.min(REQUEST_HEAD_BYTES_MAX));
    std::io::copy(&mut reader, &mut std::io::sink())?;
    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let answer = route(method, target, served);
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        answer.status,
        if answer.status == 200 { "OK" } else { "Error" },
        answer.content_type,
        answer.body.len()
    )?;
    stream.write_all(&answer.body)?;
    stream.flush()
}

fn route(method: &str, target: &str, served: &Served) -> Answer {
    match (method, target) {
        ("GET", "/") => match upstream(served, "GET", "/") {
            Ok(page) => Answer {
                body: page_with_additions(&String::from_utf8_lossy(&page.body), served)
                    .into_bytes(),
                ..page
            },
            Err(e) => e,
        },
        ("GET", "/.eo/explore.js") => Answer {
            status: 200,
            content_type: "text/javascript; charset=utf-8".to_owned(),
            body: SCRIPT.as_bytes().to_vec(),
        },
        ("GET", "/.eo/info") => Answer::json(&serde_json::json!({
            "model": served.model,
            "variant": served.variant,
            "flags": served.flags.trim(),
            "label": served.label(),
        })),
        ("GET", "/.status") => match upstream(served, method, target) {
            Ok(answer) => rewrite_json(answer, |status| {
                status["model"] = served.label().into();
            }),
            Err(e) => e,
        },
        ("GET", _) if target.starts_with("/.eo/state") => {
            let path = &target["/.eo/state".len()..];
            match inspect(path) {
                Ok(at) => {
                    let svg = diagram(served, &at);
                    let mut value = serde_json::to_value(&at).unwrap_or_default();
                    value["svg"] = svg.into();
                    Answer::json(&value)
                }
                Err(why) => Answer::error(404, &why),
            }
        }
        ("GET", _) if target.starts_with("/.states") => match upstream(served, method, target) {
            Ok(answer) => {
                let path = target["/.states".len()..].trim_end_matches('/').to_owned();
                rewrite_json(answer, |steps| per_state_marks(steps, &path, served))
            }
            Err(e) => e,
        },
        _ => upstream(served, method, target).unwrap_or_else(|e| e),
    }
}

/// Asks the Explorer on its private port.
fn upstream(served: &Served, method: &str, target: &str) -> Result<Answer, Answer> {
    let fail = |e: std::io::Error| Answer::error(502, &format!("the Explorer did not answer: {e}"));
    let mut stream = TcpStream::connect(served.upstream).map_err(fail)?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(fail)?;
    write!(
        stream,
        "{method} {target} HTTP/1.0\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        served.upstream
    )
    .map_err(fail)?;
    let mut raw = Vec::new();
    stream
        .take(UPSTREAM_BYTES_MAX)
        .read_to_end(&mut raw)
        .map_err(fail)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| Answer::error(502, "the Explorer's answer has no header"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| guess_content_type(target).to_owned());
    Ok(Answer {
        status,
        content_type,
        body: raw[split + 4..].to_vec(),
    })
}

fn guess_content_type(target: &str) -> &'static str {
    if target == "/" || target.ends_with(".htm") {
        "text/html; charset=utf-8"
    } else if target.ends_with(".js") {
        "text/javascript; charset=utf-8"
    } else if target.ends_with(".css") {
        "text/css; charset=utf-8"
    } else {
        "application/json"
    }
}

fn rewrite_json(answer: Answer, change: impl FnOnce(&mut serde_json::Value)) -> Answer {
    match serde_json::from_slice::<serde_json::Value>(&answer.body) {
        Ok(mut value) if answer.status == 200 => {
            change(&mut value);
            Answer {
                content_type: "application/json".to_owned(),
                ..Answer::json(&value)
            }
        }
        _ => answer,
    }
}

fn inspect(path: &str) -> Result<StateAt, String> {
    let inspector =
        catalog::served().ok_or_else(|| "the Explorer is not serving a model".to_owned())?;
    inspector(path)
}

/// The named sequence diagram (or step table) of the path to `at`.
fn diagram(served: &Served, at: &StateAt) -> String {
    Picture {
        model: &served.model,
        variant: &served.variant,
        property: "",
        expectation: "",
        about: "",
        kind: Kind::Explored,
        steps: &at.steps,
        final_state: Some(&at.summary),
    }
    .render()
}

/// Replaces, in the Explorer's list of next steps after `path`, each step's
/// property marks with those of its own state, its diagram with the named one,
/// and (unless `--internals`) drops the bookkeeping from its state text.
///
/// Stateright's page marks a property on a state as found ("⚠️ Counterexample
/// found" / "✅ Example found") when the property's discovery path is the
/// state's own path; so each property that is violated (`always`) or reached
/// (`sometimes`) on the state gets the state's path as its discovery, and every
/// other property none. An `eventually` property is judged over whole
/// behaviours, never on one state: it gets none, and the panel says whether its
/// condition is met on the state.
fn per_state_marks(steps: &mut serde_json::Value, path: &str, served: &Served) {
    let Some(steps) = steps.as_array_mut() else {
        return;
    };
    for (i, step) in steps.iter_mut().enumerate() {
        let index = step["actionIndex"].as_u64().unwrap_or(i as u64);
        let own = format!("{path}/{index}");
        if !served.internals {
            if let Some(text) = step["state"].as_str() {
                step["state"] = without_bookkeeping(text).into();
            }
        }
        if step.get("state").is_none() {
            continue; // an action the model ignores: no state to mark
        }
        let Ok(at) = inspect(&own) else { continue };
        let discovery = own.trim_start_matches('/').to_owned();
        let marks: Vec<serde_json::Value> = at
            .properties
            .iter()
            .map(|p| {
                let (expectation, found) = match p.expectation {
                    "always" => ("Always", !p.holds),
                    "sometimes" => ("Sometimes", p.holds),
                    _ => ("Eventually", false),
                };
                let discovery = found.then(|| discovery.clone());
                serde_json::json!([expectation, p.name, discovery])
            })
            .collect();
        step["properties"] = marks.into();
        step["svg"] = diagram(served, &at).into();
    }
}

/// The fields of Stateright's actor-system state that are its own bookkeeping.
const BOOKKEEPING: [&str; 2] = ["timers_set", "random_choices"];

/// Stateright's pretty state text (`{:#?}`) without the [`BOOKKEEPING`] fields.
pub fn without_bookkeeping(text: &str) -> String {
    let mut out = Vec::new();
    let mut skipping: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(depth) = skipping {
            let closes = indent == depth && line.trim_start().starts_with([']', '}', ')']);
            if closes {
                skipping = None;
            }
            continue;
        }
        let field = line.trim_start();
        if BOOKKEEPING
            .iter()
            .any(|name| field.starts_with(&format!("{name}:")))
        {
            if field.ends_with('[') || field.ends_with('{') || field.ends_with('(') {
                skipping = Some(indent);
            }
            continue;
        }
        out.push(line);
    }
    out.join("\n")
}

/// Stateright's page with the additions: the served label as its title, a
/// banner, the "Global" list labelled as the checker's progress, the per-state
/// panel and its script.
fn page_with_additions(page: &str, served: &Served) -> String {
    let label = escape_html(&served.label());
    page.replacen(
        "<title>Stateright Explorer</title>",
        &format!("<title>{label} — eo explore</title>"),
        1,
    )
    .replacen(
        "<h3>Global</h3>",
        "<h3>Global <small>(what the checker has found so far, not the state shown)</small></h3>",
        1,
    )
    .replacen(
        "<h2>Path of Actions</h2>",
        "<div id='eo-state'><h3>On the state shown</h3><ul id='eo-state-properties'></ul>\
         <p id='eo-state-summary' class='font-code font-small'></p></div>\n<h2>Path of Actions</h2>",
        1,
    )
    .replacen(
        "<main class=\"main-flex\">",
        &format!(
            "<div id='eo-banner' class='color-dark padding-small'>eo explore · {label}</div>\n<main class=\"main-flex\">"
        ),
        1,
    )
    .replacen(
        "</body>",
        "<script src=\"/.eo/explore.js\"></script>\n</body>",
        1,
    )
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookkeeping_is_left_out_of_the_state_text() {
        let text = "ActorModelState {\n    actor_states: [\n        A,\n    ],\n    timers_set: [\n        Timers {\n            x,\n        },\n    ],\n    random_choices: [],\n    crashed: [\n        false,\n    ],\n    history: 0,\n}";
        let short = without_bookkeeping(text);
        assert!(!short.contains("timers_set"), "{short}");
        assert!(!short.contains("random_choices"), "{short}");
        assert!(!short.contains("Timers"), "{short}");
        assert!(short.contains("actor_states"), "{short}");
        assert!(
            short.contains("crashed: [\n        false,\n    ],"),
            "{short}"
        );
        assert!(short.ends_with("history: 0,\n}"), "{short}");
    }
}
