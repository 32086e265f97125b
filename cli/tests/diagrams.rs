//! The diagrams in docs/diagrams are what the models produce today.
//!
//! For every bug variant in `eo list`, `eo check MODEL --variant V --svg DIR`
//! draws the counterexample of the property the variant must violate; the test
//! compares it byte for byte with `docs/diagrams/MODEL-V-PROPERTY.svg`, which
//! the docs embed next to that counterexample's explanation. After a change to
//! a model, regenerate them all with
//!
//! ```sh
//! EO_BLESS=1 cargo test -p eo-cli --test diagrams
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

fn diagrams_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/diagrams")
}

/// One documented diagram: a bug variant and the property it violates.
#[derive(Clone)]
struct Case {
    model: String,
    variant: String,
    property: String,
}

impl Case {
    fn file_name(&self) -> String {
        format!("{}-{}-{}.svg", self.model, self.variant, self.property)
    }
}

fn bug_variants() -> Vec<Case> {
    let out = Command::new(env!("CARGO_BIN_EXE_eo"))
        .args(["list", "--json"])
        .output()
        .expect("eo runs");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut cases = Vec::new();
    for model in list["models"].as_array().unwrap() {
        for variant in model["variants"].as_array().unwrap() {
            // A `--deep` row (minutes to check) has no embedded diagram.
            if variant["kind"] == "bug" && variant["deep"] != true {
                cases.push(Case {
                    model: model["name"].as_str().unwrap().to_owned(),
                    variant: variant["name"].as_str().unwrap().to_owned(),
                    property: variant["expected_violation"].as_str().unwrap().to_owned(),
                });
            }
        }
    }
    cases
}

/// Draws `case` into `dir` and returns the diagram.
fn draw(case: &Case, dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_eo"))
        .args(["check", &case.model, "--variant", &case.variant, "--svg"])
        .arg(dir)
        .output()
        .expect("eo runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{} {}: {}",
        case.model,
        case.variant,
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.join(case.file_name()))
        .unwrap_or_else(|e| panic!("{} was not written: {e}", case.file_name()))
}

/// Runs `work` on every case, two at a time (one checker thread each).
fn for_each_in_parallel(cases: &[Case], work: impl Fn(&Case) + Sync) {
    let next = Mutex::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some(case) = cases.get(i) else { break };
                work(case);
            });
        }
    });
}

#[test]
fn every_bug_variant_has_its_diagram_and_it_is_up_to_date() {
    let bless = std::env::var_os("EO_BLESS").is_some_and(|v| v == "1");
    let cases = bug_variants();
    assert!(cases.len() >= 10, "bug variants: {}", cases.len());
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("diagrams");
    let _ = std::fs::remove_dir_all(&scratch);
    let stale = Mutex::new(Vec::new());
    for_each_in_parallel(&cases, |case| {
        let dir = scratch.join(format!("{}-{}", case.model, case.variant));
        let fresh = draw(case, &dir);
        let committed = diagrams_dir().join(case.file_name());
        if bless {
            std::fs::create_dir_all(diagrams_dir()).unwrap();
            std::fs::write(&committed, &fresh).unwrap();
        } else if std::fs::read_to_string(&committed).ok().as_deref() != Some(fresh.as_str()) {
            stale.lock().unwrap().push(case.file_name());
        }
    });
    let stale = stale.into_inner().unwrap();
    assert!(
        stale.is_empty(),
        "docs/diagrams differs from what the models draw for {stale:?}; \
         regenerate with `EO_BLESS=1 cargo test -p eo-cli --test diagrams` and review the diff"
    );
    // No diagram is left over from a variant that is gone.
    let expected: Vec<String> = cases.iter().map(Case::file_name).collect();
    for entry in std::fs::read_dir(diagrams_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".svg") {
            assert!(
                expected.contains(&name),
                "docs/diagrams/{name} has no bug variant"
            );
        }
    }
}

#[test]
fn every_diagram_is_embedded_in_the_docs() {
    let docs = ["ack-retry.md", "two-phase-commit.md", "system.md"]
        .map(|d| std::fs::read_to_string(diagrams_dir().join("..").join(d)).unwrap())
        .join("\n");
    for case in bug_variants() {
        let link = format!("](diagrams/{})", case.file_name());
        assert!(docs.contains(&link), "no doc embeds {link}");
    }
}

#[test]
fn the_no_dedup_diagram_shows_the_duplicate_apply() {
    let text = std::fs::read_to_string(diagrams_dir().join("ack-retry-no-dedup-exactly-once.svg"))
        .expect("the committed no-dedup diagram");
    assert!(
        text.contains("ack-retry · no-dedup: exactly-once is violated"),
        "{text}"
    );
    // The same message delivered twice to the receiver, and applied twice.
    assert_eq!(
        text.matches(">Data(1)</text>").count(),
        2,
        "two deliveries of Data(1): {text}"
    );
    assert!(text.contains("receiver ledger [s0#1, s0#1]"), "{text}");
}
