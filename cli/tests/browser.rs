//! The Explorer as a person meets it, in a real browser.
//!
//! For each model this test starts `eo explore` on an ephemeral loopback port
//! and drives headless Chromium through chromedriver (the WebDriver protocol,
//! spoken over `std::net`; nothing is downloaded): it loads the page, follows a
//! counterexample from `eo check --json` by clicking each step's link, and
//! checks that the page names the model and variant, shows the state, the
//! sequence diagram and the properties evaluated on the state shown. It saves a
//! screenshot per model under `target/explorer-screenshots/`.
//!
//! Chromium and chromedriver come from Debian's `chromium` and
//! `chromium-driver` packages (`scripts/test.sh` installs them). Without them
//! the test fails when `CI=true` and is skipped, with a message, otherwise.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every wait in this test ends after this long.
const WAIT_MAX: Duration = Duration::from_secs(60);
/// A WebDriver answer larger than this is refused (a screenshot is ~1 MB).
const ANSWER_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// The models, each with a variant and the property whose counterexample the
/// test follows, and what the panel must say about the last state.
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "ack-retry",
        "no-dedup",
        "exactly-once",
        "✗ violated here: always exactly-once",
    ),
    (
        "two-phase-spec",
        "rm-commits-alone",
        "consistent",
        "✗ violated here: always consistent",
    ),
    (
        "two-phase-commit",
        "commit-on-first-yes",
        "validity",
        "✗ violated here: always validity",
    ),
];

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/lib/chromium")]) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// The browser binary itself (Debian's `/usr/bin/chromium` is a wrapper
/// script; chromedriver wants the binary).
fn chromium() -> Option<PathBuf> {
    let real = Path::new("/usr/lib/chromium/chromium");
    if real.is_file() {
        return Some(real.to_path_buf());
    }
    find_program(&["chromium", "chromium-browser", "google-chrome"])
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed however the test ends.
struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP exchange with a local server: status and body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(WAIT_MAX))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    // Read the head, then exactly the body it announces: chromedriver may keep
    // the connection open whatever the request says.
    let mut raw = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let complete = |raw: &[u8]| -> Option<(usize, String)> {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
        let body = &raw[split + 4..];
        let done = if head.contains("transfer-encoding: chunked") {
            body.ends_with(b"0\r\n\r\n")
        } else if let Some(length) = head.lines().find_map(|l| {
            l.strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        }) {
            body.len() >= length
        } else {
            false
        };
        done.then_some((split, head))
    };
    let (split, head) = loop {
        if let Some(found) = complete(&raw) {
            break found;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            let split = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .ok_or_else(|| std::io::Error::other("no header"))?;
            break (split, String::from_utf8_lossy(&raw[..split]).to_lowercase());
        }
        raw.extend_from_slice(&chunk[..n]);
        if raw.len() as u64 > ANSWER_BYTES_MAX {
            return Err(std::io::Error::other("answer too large"));
        }
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut content = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        content = dechunk(&content);
    }
    Ok((status, content))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.trim().split(';').next().unwrap_or("0"), 16)
            .unwrap_or(0);
        if size == 0 || data.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[(end + 4 + size).min(data.len())..];
    }
    out
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        buffer = (buffer << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

/// A WebDriver session on chromedriver.
struct Browser {
    port: u16,
    session: String,
}

impl Browser {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("/session/{}{path}", self.session);
        let (status, body) =
            http(self.port, method, &url, body.as_ref()).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        if status == 200 {
            Ok(v["value"].clone())
        } else {
            Err(format!("{method} {path}: {status} {}", v["value"]))
        }
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })))
            .expect("the page loads");
    }

    /// The first element matching `css`, waiting for it to appear.
    fn find(&self, css: &str) -> String {
        self.find_by("css selector", css)
    }

    /// The first element matching `selector` (`using`: `css selector` or
    /// `xpath`), waiting for it to appear.
    fn find_by(&self, using: &str, css: &str) -> String {
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            let found = self.call(
                "POST",
                "/element",
                Some(json!({ "using": using, "value": css })),
            );
            if let Ok(element) = found {
                if let Some(id) = element.as_object().and_then(|o| o.values().next()) {
                    return id.as_str().unwrap().to_owned();
                }
            }
            assert!(Instant::now() < deadline, "no element {css} appeared");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})))
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// The visible text of the first element matching `css`, once `ready`
    /// accepts it.
    fn text_when(&self, css: &str, ready: impl Fn(&str) -> bool) -> String {
        self.text_by_when("css selector", css, ready)
    }

    fn text_by_when(&self, using: &str, css: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            let id = self.find_by(using, css);
            let text = self
                .call("GET", &format!("/element/{id}/text"), None)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            if ready(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never read as expected; last: {text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, file: &Path) {
        let data = self.call("GET", "/screenshot", None).expect("a screenshot");
        std::fs::write(file, base64_decode(data.as_str().unwrap())).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

/// The Explorer path of `property`'s counterexample, from `eo check --json`.
fn counterexample_path(model: &str, variant: &str, property: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_eo"))
        .args(["check", model, "--variant", variant, "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let p = report["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == property)
        .unwrap();
    assert_eq!(p["status"], "violated", "{model} {variant}");
    p["explorer_path"]
        .as_str()
        .unwrap()
        .split('/')
        .map(str::to_owned)
        .collect()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + WAIT_MAX;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_explorer_in_chromium_follows_a_counterexample_for_every_model() {
    let (Some(driver), Some(browser)) = (find_program(&["chromedriver"]), chromium()) else {
        let why = "Chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver; scripts/test.sh does it)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("SKIPPED the browser test: {why}");
        return;
    };
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../explorer-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let profile = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chromium-profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);

    let driver_port = free_port();
    let _driver = Running(
        Command::new(driver)
            .args([
                format!("--port={driver_port}"),
                "--allowed-ips=127.0.0.1".into(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    wait_for_port(driver_port);
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let capabilities = json!({ "capabilities": { "alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": browser, "args": args },
    }}});
    let deadline = Instant::now() + WAIT_MAX;
    let session = loop {
        match http(driver_port, "POST", "/session", Some(&capabilities)) {
            Ok((200, body)) => {
                let v: Value = serde_json::from_slice(&body).unwrap();
                break v["value"]["sessionId"].as_str().unwrap().to_owned();
            }
            other => {
                assert!(Instant::now() < deadline, "no browser session: {other:?}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    let browser = Browser {
        port: driver_port,
        session,
    };

    for (model, variant, property, verdict) in CASES {
        let steps = counterexample_path(model, variant, property);
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let _explorer = Running(
            Command::new(env!("CARGO_BIN_EXE_eo"))
                .args([
                    "explore",
                    model,
                    "--variant",
                    variant,
                    "--address",
                    &address,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for_port(port);
        browser.open(&format!("http://{address}/"));
        let banner = browser.text_when("#eo-banner", |t| t.contains(model));
        assert!(
            banner.contains(&format!("{model} · variant {variant}")),
            "{banner}"
        );
        // Follow the counterexample: each step is a link among the next choices.
        let mut path = String::new();
        for index in &steps {
            path = format!("{path}/{index}");
            browser.click(&format!("a[href='#/steps{path}']"));
        }
        // The state, its diagram and the properties evaluated on it.
        browser.text_when("section.main-flex-right", |t| {
            t.contains("State") || t.len() > 40
        });
        let diagram = browser.text_when("section.main-flex-right svg", |t| {
            t.contains(&format!("{model} · {variant}: the state shown"))
        });
        assert!(diagram.contains("after"), "{diagram}");
        let panel = browser.text_when("#eo-state-properties", |t| t.contains(verdict));
        assert!(panel.contains(property), "{panel}");
        let model_line = browser.text_when("nav ul li", |t| t.contains(model));
        assert!(model_line.contains(variant), "{model_line}");
        // Stateright's own "Current state?" marks: about this state, so the
        // property it breaks reads as a counterexample, not "Safety holds".
        browser.click("input[data-bind='checked: showCurrentStateProperties']");
        let marks = browser.text_by_when(
            "xpath",
            "//h3[text()='Current state']/following-sibling::ul[1]",
            |t| t.contains(property),
        );
        let line = marks
            .lines()
            .find(|l| l.ends_with(&format!("Always {property}")))
            .unwrap_or_else(|| panic!("no mark for {property}: {marks}"));
        assert!(line.contains("Counterexample found"), "{marks}");
        let file = screenshots.join(format!("{model}.png"));
        browser.screenshot(&file);
        let png = std::fs::read(&file).unwrap();
        assert!(
            png.starts_with(b"\x89PNG"),
            "{} is not a PNG",
            file.display()
        );
    }
    drop(browser);
    let _ = std::fs::remove_dir_all(&profile);
}

#[test]
fn base64_and_chunks_decode() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
    assert_eq!(dechunk(b"5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n"), b"hello!");
}
