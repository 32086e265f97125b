//! The `eo` binary as a user runs it: exit codes, JSON, errors, the Explorer.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn eo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eo"))
        .args(args)
        .output()
        .expect("eo runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).expect("stdout is one JSON object")
}

#[test]
fn list_json_names_models_variants_and_their_expected_violations() {
    let out = eo(&["list", "--json"]);
    assert!(out.status.success());
    let v = json(&out);
    let models = v["models"].as_array().unwrap();
    let ack = models.iter().find(|m| m["name"] == "ack-retry").unwrap();
    let variants = ack["variants"].as_array().unwrap();
    let no_dedup = variants.iter().find(|x| x["name"] == "no-dedup").unwrap();
    assert_eq!(no_dedup["expected_violation"], "exactly-once");
    assert_eq!(no_dedup["kind"], "bug");
    let flags: Vec<&str> = ack["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(flags, ["senders", "messages", "crashes", "network"]);
}

#[test]
fn check_json_reports_the_default_configuration() {
    let out = eo(&["check", "ack-retry", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["model"], "ack-retry");
    assert_eq!(v["variant"], "correct");
    assert_eq!(v["unique_states"], 32_805);
    assert_eq!(v["config"]["senders"], "2");
    // The breadth-first search: a deterministic depth, each phase's time, the
    // graph's size and the peak memory.
    assert_eq!(v["search"], "bfs");
    assert!(v["max_depth"].as_u64().is_some_and(|d| d > 0));
    for phase in ["search_ms", "progress_ms", "shortest_paths_ms"] {
        assert!(v["phases"][phase].is_u64(), "{phase}");
    }
    assert!(v["graph_bytes_per_state"].as_f64().is_some_and(|b| b > 8.0));
    assert!(v.get("peak_memory_kib").is_some());
    let statuses: Vec<(String, String)> = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(statuses.contains(&("exactly-once".into(), "holds".into())));
    assert!(statuses.contains(&("all-delivered".into(), "found".into())));
    assert!(statuses.contains(&("eventually-delivered".into(), "holds".into())));
}

#[test]
fn a_bug_variant_exits_one_and_names_its_property_with_a_counterexample() {
    let out = eo(&["check", "ack-retry", "--variant", "volatile-dedup"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("exactly-once           always     violated"),
        "{text}"
    );
    assert!(text.contains("1. sender 0 → receiver: Data(0)"), "{text}");
    assert!(text.contains("receiver crashes"), "{text}");
    assert!(text.contains("failed: exactly-once"), "{text}");

    let out = eo(&[
        "check",
        "ack-retry",
        "--variant",
        "no-retry",
        "--senders",
        "1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let p = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "eventually-delivered")
        .unwrap();
    assert_eq!(p["status"], "violated");
    assert!(!p["counterexample"].as_array().unwrap().is_empty());
}

#[test]
fn no_reack_exits_one_naming_its_progress_property() {
    let out = eo(&["check", "ack-retry", "--variant", "no-reack"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("eventually-delivered   progress   violated"),
        "{text}"
    );
    assert!(text.contains("failed: eventually-delivered"), "{text}");
}

#[test]
fn bad_input_is_a_one_line_error_with_exit_two() {
    let cases: &[&[&str]] = &[
        &["check", "nope"],
        &["check", "ack-retry", "--variant", "nope"],
        &["check", "ack-retry", "--senders", "0"],
        &["check", "ack-retry", "--senders", "4", "--messages", "4"],
        &["check", "ack-retry", "--network", "lossless"],
        &["check", "ack-retry", "--participants", "3"],
        &["check", "ack-retry", "--dfs", "--threads", "0"],
        &["check", "--senders", "2"],
        &["explore", "nope"],
    ];
    for args in cases {
        let out = eo(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("eo: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // clap's own usage errors also exit 2: a bad number, and --threads
    // without --dfs (the breadth-first search runs on one thread).
    assert_eq!(
        eo(&["check", "ack-retry", "--senders", "x"]).status.code(),
        Some(2)
    );
    assert_eq!(
        eo(&["check", "ack-retry", "--threads", "2"]).status.code(),
        Some(2)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// Kills the child however the test ends.
struct Serving(std::process::Child);
impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn explore_serves_html_and_status_json_and_refuses_a_busy_port() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let _server = Serving(
        Command::new(env!("CARGO_BIN_EXE_eo"))
            .args(["explore", "ack-retry", "--address", &address])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        if let Some(page) = http_get(port, "/") {
            break page;
        }
        assert!(Instant::now() < deadline, "the Explorer did not answer");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<html"), "{page}");
    let status = http_get(port, "/.status").unwrap();
    let body = &status[status.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let names: Vec<&str> = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap())
        .collect();
    assert!(names.contains(&"exactly-once"), "{names:?}");

    let busy = eo(&["explore", "ack-retry", "--address", &address]);
    assert_eq!(busy.status.code(), Some(2));
    assert!(stderr(&busy).contains("cannot serve the Explorer"));
    assert!(stdout(&busy).is_empty());
}
