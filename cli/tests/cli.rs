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
    assert_eq!(
        flags,
        [
            "senders",
            "messages",
            "window",
            "in-flight",
            "crashes",
            "disk-losses",
            "network",
            "log"
        ]
    );
}

#[test]
fn list_shows_named_configurations_with_their_flags_and_scope() {
    let v = json(&eo(&["list", "--json"]));
    let models = v["models"].as_array().unwrap();
    let ack = models.iter().find(|m| m["name"] == "ack-retry").unwrap();
    let config = ack["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "two-crashes")
        .unwrap();
    assert_eq!(config["scope"], "deep");
    assert_eq!(
        config["settings"],
        serde_json::json!({"crashes": 2, "network": "ordered"})
    );
    let text = stdout(&eo(&["list"]));
    assert!(
        text.contains("two-crashes") && text.contains("(sets --crashes 2 --network ordered)"),
        "{text}"
    );
}

#[test]
fn a_named_configuration_sets_its_flags_and_a_given_flag_wins() {
    let out = eo(&[
        "check",
        "ack-retry",
        "--config",
        "two-crashes",
        "--senders",
        "1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["configuration"], "two-crashes");
    assert_eq!(v["config"]["crashes"], 2);
    assert_eq!(v["config"]["network"], "ordered");
    assert_eq!(v["config"]["senders"], 1);
    let text = stdout(&eo(&[
        "check",
        "ack-retry",
        "--config",
        "two-crashes",
        "--senders",
        "1",
    ]));
    assert!(text.contains("· configuration two-crashes ·"), "{text}");

    let unknown = eo(&["check", "ack-retry", "--config", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert_eq!(
        stderr(&unknown),
        "eo: ack-retry has no configuration 'nope' (configurations: sync-log, two-crashes, two-senders, disk-loss, wide-window)\n"
    );
    let deep = eo(&["check", "ack-retry", "--deep"]);
    assert_eq!(deep.status.code(), Some(2));
    assert!(stderr(&deep).contains("--config NAME"), "{}", stderr(&deep));
}

#[test]
fn check_json_reports_the_default_configuration() {
    let out = eo(&["check", "ack-retry", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["model"], "ack-retry");
    assert_eq!(v["variant"], "correct");
    assert_eq!(v["unique_states"], 6_504);
    assert_eq!(
        v["config"]["senders"], 1,
        "configuration counts are numbers"
    );
    assert_eq!(v["config"]["network"], "unordered");
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
    assert!(text.contains("2. sender 0 → receiver: Data(1)"), "{text}");
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
        // clap's parse errors: negative numbers, non-numbers, unknown flags,
        // missing values and commands.
        &["check", "ack-retry", "--messages", "-1"],
        &["check", "ack-retry", "--senders", "x"],
        &["check", "ack-retry", "--bogus"],
        &["check", "ack-retry", "--variant"],
        &["sim", "ack-retry", "--loss", "-0.1"],
        &["sim", "ack-retry", "--seed", "-1"],
        &["sim"],
        &["explore"],
        &[],
    ];
    for args in cases {
        let out = eo(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("eo: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn every_range_error_has_one_wording() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["check", "ack-retry", "--senders", "0"],
            "eo: --senders 0 is out of range: it must be between 1 and 4",
        ),
        (
            &["check", "ack-retry", "--dfs", "--threads", "0"],
            "eo: --threads 0 is out of range: it must be between 1 and 1024",
        ),
        (
            &["check", "ack-retry", "--messages", "-1"],
            "eo: --messages -1 is out of range: it must be 0 or more",
        ),
        (
            &["sim", "ack-retry", "--loss", "2"],
            "eo: --loss 2 is out of range: it must be at least 0 and below 1",
        ),
        (
            &["sim", "ack-retry", "--loss", "-0.1"],
            "eo: --loss -0.1 is out of range: it must be at least 0 and below 1",
        ),
        (
            &["sim", "ack-retry", "--dup", "1.5"],
            "eo: --dup 1.5 is out of range: it must be between 0 and 1",
        ),
        (
            &["sim", "ack-retry", "--messages", "0"],
            "eo: --messages 0 is out of range: it must be between 1 and 10000000",
        ),
        (
            &["sim", "two-phase-commit", "--participants", "1"],
            "eo: --participants 1 is out of range: it must be between 2 and 16",
        ),
        (
            &["sim", "ack-retry", "--runs", "0"],
            "eo: --runs 0 is out of range: it must be between 1 and 1000000",
        ),
        (
            &["sim", "ack-retry", "--crashes", "10001"],
            "eo: --crashes 10001 is out of range: it must be between 0 and 10000",
        ),
    ];
    for (args, wording) in cases {
        let out = eo(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.starts_with(wording), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    let err = stderr(&eo(&["explore"]));
    assert_eq!(
        err.trim_end(),
        "eo: a model is missing (see 'eo explore --help')"
    );
    // An unknown flag names the command whose help lists the right ones.
    let err = stderr(&eo(&["sim", "ack-retry", "--bogus"]));
    assert_eq!(
        err.trim_end(),
        "eo: unexpected argument '--bogus' found (see 'eo sim ack-retry --help')"
    );
    // --threads without --dfs is a usage error: the breadth-first search runs
    // on one thread.
    assert_eq!(
        eo(&["check", "ack-retry", "--threads", "2"]).status.code(),
        Some(2)
    );
    // Help and version are not errors.
    let help = eo(&["check", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("Usage: eo check"));
}

#[test]
fn a_closed_pipe_ends_eo_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eo"))
        .args(["list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before eo writes: like `eo list | head -0`.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_counterexample_counts_its_steps_in_words() {
    let out = eo(&[
        "check",
        "ack-retry",
        "--variant",
        "no-dedup",
        "--senders",
        "1",
        "--messages",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let counted = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("counterexample ("))
        .unwrap_or_else(|| panic!("no counterexample in {text}"));
    let (n, rest) = counted.split_once(' ').unwrap();
    let n: usize = n.parse().unwrap();
    let noun = if n == 1 { "step):" } else { "steps):" };
    assert_eq!(rest, noun, "{text}");
    let numbered = text
        .lines()
        .filter(|l| {
            l.trim_start()
                .split_once(". ")
                .is_some_and(|(k, _)| k.parse::<usize>().is_ok())
        })
        .count();
    assert_eq!(numbered, n, "{text}");
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

/// Every key of `value`, at any depth.
fn keys(value: &serde_json::Value, into: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                into.insert(k.clone());
                keys(v, into);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, into)),
        _ => {}
    }
}

#[test]
fn every_json_field_is_documented_in_docs_cli_md() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md"))
        .expect("docs/cli.md");
    let runs: &[&[&str]] = &[
        &["list", "--json"],
        &[
            "check",
            "ack-retry",
            "--variant",
            "no-dedup",
            "--senders",
            "1",
            "--json",
        ],
        &["check", "ack-retry", "--network", "unordered-dup", "--json"],
        &[
            "check",
            "ack-retry",
            "--config",
            "two-crashes",
            "--senders",
            "1",
            "--json",
        ],
        &[
            "sim",
            "ack-retry",
            "--seed",
            "1",
            "--messages",
            "20",
            "--json",
        ],
        &[
            "sim",
            "two-phase-commit",
            "--seed",
            "1",
            "--transactions",
            "20",
            "--json",
        ],
    ];
    let mut found = std::collections::BTreeSet::new();
    for args in runs {
        keys(&json(&eo(args)), &mut found);
    }
    // Config keys are flag names, documented with the models (`eo list`).
    let config: Vec<String> = json(&eo(&["check", "ack-retry", "--json"]))["config"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let missing: Vec<&String> = found
        .iter()
        .filter(|k| !config.contains(k) && !doc.contains(&format!("`{k}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/cli.md: {missing:?}");
}

/// Starts `eo explore ARGS` on a free loopback port; returns the port.
fn explore(args: &[&str]) -> (Serving, u16) {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let server = Serving(
        Command::new(env!("CARGO_BIN_EXE_eo"))
            .arg("explore")
            .args(args)
            .args(["--address", &address])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(port, "/.status").is_none() {
        assert!(Instant::now() < deadline, "the Explorer did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port)
}

fn body_json(response: &str) -> serde_json::Value {
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn the_explorer_names_what_it_serves_and_marks_properties_on_the_state_shown() {
    let (_server, port) = explore(&["ack-retry", "--variant", "no-dedup", "--senders", "1"]);
    // The model line names the model, the variant and the flags.
    let status = body_json(&http_get(port, "/.status").unwrap());
    assert_eq!(
        status["model"],
        "ack-retry · variant no-dedup · --senders 1 (other flags at their defaults)"
    );
    let page = http_get(port, "/").unwrap();
    assert!(
        page.contains("<title>ack-retry · variant no-dedup · --senders 1"),
        "{page}"
    );
    assert!(page.contains("id='eo-state-properties'"), "{page}");

    // The counterexample's path, from the checker.
    let report = json(&eo(&[
        "check",
        "ack-retry",
        "--variant",
        "no-dedup",
        "--senders",
        "1",
        "--json",
    ]));
    let path = report["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "exactly-once")
        .unwrap()["explorer_path"]
        .as_str()
        .unwrap()
        .to_owned();
    let (before, last) = path.rsplit_once('/').unwrap();

    // Every property evaluated on the state at the end of the path.
    let at = body_json(&http_get(port, &format!("/.eo/state/{path}")).unwrap());
    let holds = |name: &str| {
        at["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["holds"]
            .as_bool()
            .unwrap()
    };
    assert!(!holds("exactly-once"), "{at}");
    assert!(holds("no-loss"), "{at}");
    assert!(
        at["summary"].as_str().unwrap().contains("[s0#1, s0#1]"),
        "{at}"
    );
    assert!(at["svg"].as_str().unwrap().contains("receiver"), "{at}");

    // Stateright's own marks for that state say it breaks exactly-once
    // (its page showed "Safety holds" there), and its state text leaves out
    // the bookkeeping.
    let next = body_json(&http_get(port, &format!("/.states/{before}")).unwrap());
    let step = next
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["actionIndex"].as_u64() == last.parse().ok())
        .unwrap();
    let mark = step["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[1] == "exactly-once")
        .unwrap();
    assert_eq!(mark[2], path.as_str(), "{step}");
    let no_loss = step["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[1] == "no-loss")
        .unwrap();
    assert!(no_loss[2].is_null(), "{step}");
    let state = step["state"].as_str().unwrap();
    assert!(
        !state.contains("timers_set") && !state.contains("random_choices"),
        "{state}"
    );
    // What the page shows by default for a step: short, by actor name.
    let outcome = step["outcome"].as_str().unwrap();
    assert!(
        outcome.starts_with("step: sender 0 → receiver: Data(1)\n"),
        "{outcome}"
    );
    assert!(
        outcome.contains("\nreceiver: ReceiverState { ledger: [s0#1, s0#1]"),
        "{outcome}"
    );
    assert!(outcome.contains("\nin flight: "), "{outcome}");
    assert!(!outcome.contains("Id("), "{outcome}");

    // A path that is not one is a 404 with the reason, not a crash.
    let bad = http_get(port, "/.eo/state/0/999").unwrap();
    assert!(bad.starts_with("HTTP/1.1 404"), "{bad}");
}

#[test]
fn explore_with_a_bad_configuration_is_a_one_line_error() {
    let out = eo(&[
        "explore",
        "ack-retry",
        "--senders",
        "9",
        "--address",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim_end(),
        "eo: --senders 9 is out of range: it must be between 1 and 4"
    );
}

#[test]
fn each_model_help_lists_its_own_flags_with_defaults_and_limits() {
    let list = json(&eo(&["list", "--json"]));
    let models = list["models"].as_array().unwrap();
    for model in models {
        let name = model["name"].as_str().unwrap();
        let out = eo(&["check", name, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{name}");
        let help = stdout(&out);
        assert!(help.contains(&format!("Usage: eo check {name}")), "{help}");
        for flag in model["flags"].as_array().unwrap() {
            let flag_name = flag["name"].as_str().unwrap();
            let default = flag["default"].as_str().unwrap();
            let line = help
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("--{flag_name}")))
                .unwrap_or_else(|| panic!("{name} --help lacks --{flag_name}: {help}"));
            assert!(line.contains(&format!("[default: {default}]")), "{line}");
        }
        // No other model's flags.
        let own: Vec<&str> = model["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        for other in models.iter().flat_map(|m| m["flags"].as_array().unwrap()) {
            let other = other["name"].as_str().unwrap();
            if !own.contains(&other) {
                assert!(
                    !help.contains(&format!("--{other} ")),
                    "{name} shows --{other}"
                );
            }
        }
        for variant in model["variants"].as_array().unwrap() {
            if variant["kind"] == "bug" {
                assert!(help.contains(variant["name"].as_str().unwrap()), "{help}");
            }
        }
    }
    // The limits are in the help text: two-phase-commit's participants.
    let help = stdout(&eo(&["check", "two-phase-commit", "--help"]));
    assert!(help.contains("participants (1 to 5"), "{help}");
    // Search and output flags may follow the model.
    let out = eo(&[
        "check",
        "two-phase-spec",
        "--participants",
        "2",
        "--json",
        "--bfs",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["config"]["participants"], 2);
}

#[test]
fn a_short_counterexample_counts_its_steps() {
    // no-retry with one message: the application submits it, the network loses
    // it, and nothing resends it. (Since submissions are steps no model has a
    // one-step counterexample; `plural` is unit-tested for "1 step".)
    let out = eo(&[
        "check",
        "ack-retry",
        "--variant",
        "no-retry",
        "--senders",
        "1",
        "--messages",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("counterexample (2 steps):"), "{text}");
    assert!(
        text.contains("2. network loses sender 0 → receiver: Data(1)"),
        "{text}"
    );
}

#[test]
fn the_readme_lists_every_variant_of_every_model() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    for model in json(&eo(&["list", "--json"]))["models"].as_array().unwrap() {
        for variant in model["variants"].as_array().unwrap() {
            let name = variant["name"].as_str().unwrap();
            assert!(
                readme.contains(&format!("`{name}`")),
                "README.md does not list {}'s variant `{name}`",
                model["name"]
            );
        }
    }
}

#[test]
fn dfs_still_catches_a_behaviour_that_ends_short_of_the_goal() {
    // Without the state graph, --dfs checks `progress` at terminal states: the
    // no-retry bug ends short of the goal and must fail exactly that property;
    // the no-reack livelock passes, and the report says it was not looked for.
    let out = eo(&[
        "check",
        "ack-retry",
        "--variant",
        "no-retry",
        "--dfs",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    let failed: Vec<&str> = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "violated")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["eventually-delivered"]);
    let out = eo(&[
        "check",
        "ack-retry",
        "--variant",
        "no-reack",
        "--dfs",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let progress = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "eventually-delivered")
        .unwrap()
        .clone();
    assert_eq!(progress["status"], "holds");
    assert!(
        progress["note"].as_str().unwrap().contains("livelock"),
        "{progress}"
    );
}

#[test]
fn a_progress_verdict_says_how_many_states_the_bound_cut_off() {
    // The ledger bound of the no-dedup model cuts behaviours short; progress
    // counts a cut state as reaching the goal, and the report must say so.
    let note = |variant: &str| {
        let out = eo(&["check", "ack-retry", "--variant", variant, "--json"]);
        json(&out)["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "eventually-delivered")
            .unwrap()["note"]
            .as_str()
            .map(str::to_owned)
    };
    let cut = note("no-dedup").expect("a note on the cut states");
    assert!(cut.contains("cut off by the model's bound"), "{cut}");
    assert_eq!(note("correct"), None);
}
