//! Stateright's own example models, built and run in the same benchmark run as
//! our models, as the checker's reference.
//!
//! Nothing of Stateright's is copied into this repository: the examples are
//! compiled from the `stateright` package cargo already downloaded (MIT
//! licence), found with `cargo metadata`, built with `cargo build --release
//! --locked --example …` into `target/stateright-examples`, and run as
//! processes. Their own output ("Done. states=…, unique=…") gives the counts; the
//! wall time is measured here around the process.
//!
//! They run as their authors wrote them: `check` with `threads(num_cpus)`
//! (depth-first for `2pc`, breadth-first for `paxos`), where our checker's
//! default is breadth-first on one thread — `docs/benchmarks.md` says so beside
//! the figures.

use crate::BenchError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The Stateright version whose examples are the reference (the workspace's).
pub const STATERIGHT_VERSION_PREFIX: &str = "0.31.";
/// Longest accepted output of one example run, in bytes.
const OUTPUT_LEN_MAX: usize = 1 << 20;

/// One example run: the example, its command-line arguments, and a label.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    /// The example's name in Stateright's `examples/` (`2pc`, `paxos`, …).
    pub name: &'static str,
    /// Its arguments (`["check", "7"]`).
    pub args: &'static [&'static str],
    /// How the benchmark names it (`2pc-7-rms`).
    pub label: &'static str,
}

/// The examples run: `2pc` at 7 resource managers (the model of our
/// `two-phase-spec`, at the size the issue names) and single-decree Paxos with
/// 2 clients (an actor model, like our `two-phase-commit`).
pub const EXAMPLES: [Example; 2] = [
    Example {
        name: "2pc",
        args: &["check", "7"],
        label: "2pc-7-rms",
    },
    Example {
        name: "paxos",
        args: &["check", "2"],
        label: "paxos-2-clients",
    },
];

/// What one example run reported.
#[derive(Clone, Copy, Debug, Default)]
pub struct Run {
    /// States generated (Stateright's `states=`).
    pub states: u64,
    /// Unique states (`unique=`).
    pub unique_states: u64,
    /// Wall time of the process. Stateright's reporter polls the checker once a
    /// second, so this is the check's time rounded up to the next second, plus
    /// the process's start: an upper bound.
    pub wall: Duration,
    /// States per second of the search itself, from the reporter's progress
    /// lines ("Checking. states=…", one a second from the start): the states of
    /// the last one divided by its second. `None` if the check ended within
    /// its first second (then only the upper bound `wall` is known).
    pub states_per_second: Option<f64>,
}

/// The built examples: where their binaries are.
#[derive(Debug)]
pub struct Built {
    dir: PathBuf,
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn check(what: &str, output: &std::process::Output) -> Result<String, BenchError> {
    let stdout = String::from_utf8_lossy(&output.stdout[..output.stdout.len().min(OUTPUT_LEN_MAX)])
        .into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" / ");
        Err(BenchError::Check(format!(
            "{what} failed ({}): {tail}",
            output.status
        )))
    }
}

/// Finds Stateright's package with `cargo metadata` and builds [`EXAMPLES`]
/// (release, `--locked`) into `target/stateright-examples`.
pub fn build(workspace: &Path) -> Result<Built, BenchError> {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .output()?;
    let metadata: serde_json::Value = serde_json::from_str(&check("cargo metadata", &output)?)
        .map_err(|e| BenchError::Check(format!("cargo metadata: {e}")))?;
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["name"] == "stateright"
                && p["version"]
                    .as_str()
                    .is_some_and(|v| v.starts_with(STATERIGHT_VERSION_PREFIX))
        })
        .and_then(|p| p["manifest_path"].as_str())
        .map(PathBuf::from)
        .ok_or_else(|| BenchError::Check("no stateright package in cargo metadata".into()))?;
    let target = metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("stateright-examples");
    let mut build = cargo();
    build
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target);
    for example in EXAMPLES {
        build.args(["--example", example.name]);
    }
    check("building Stateright's examples", &build.output()?)?;
    Ok(Built {
        dir: target.join("release").join("examples"),
    })
}

/// The number after `key=` in Stateright's "Done." line.
fn field(done: &str, key: &str) -> Option<u64> {
    let start = done.find(key)? + key.len();
    let digits: String = done[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// States per second from the progress lines: line k (from 0) was written k
/// seconds after the check started.
fn progress_rate(stdout: &str) -> Option<f64> {
    let progress: Vec<u64> = stdout
        .lines()
        .filter(|l| l.starts_with("Checking."))
        .filter_map(|l| field(l, "states="))
        .collect();
    let seconds = progress.len().checked_sub(1).filter(|&k| k >= 1)?;
    Some(progress[seconds] as f64 / seconds as f64)
}

impl Built {
    /// Runs one example to its end; its "Done." line gives the counts.
    pub fn run(&self, example: &Example) -> Result<Run, BenchError> {
        let start = Instant::now();
        let output = Command::new(self.dir.join(example.name))
            .args(example.args)
            .env("RUST_LOG", "warn")
            .output()?;
        let wall = start.elapsed();
        let stdout = check(example.label, &output)?;
        let done = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("Done."))
            .ok_or_else(|| BenchError::Check(format!("{}: no Done line", example.label)))?;
        match (field(done, "states="), field(done, "unique=")) {
            (Some(states), Some(unique_states)) => Ok(Run {
                states,
                unique_states,
                wall,
                states_per_second: progress_rate(&stdout),
            }),
            _ => Err(BenchError::Check(format!(
                "{}: unreadable Done line {done:?}",
                example.label
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{field, progress_rate};

    #[test]
    fn reads_the_counts_of_a_done_line() {
        let done = "Done. states=1145, unique=288, depth=11, sec=0";
        assert_eq!(field(done, "states="), Some(1145));
        assert_eq!(field(done, "unique="), Some(288));
        assert_eq!(field(done, "missing="), None);
    }

    #[test]
    fn the_search_rate_comes_from_the_last_progress_line() {
        let out = "Checking. states=1, unique=1, depth=0\n\
                   Checking. states=900, unique=100, depth=5\n\
                   Checking. states=2000, unique=300, depth=7\n\
                   Done. states=2500, unique=350, depth=8, sec=2\n";
        assert_eq!(progress_rate(out), Some(1000.0));
        let short =
            "Checking. states=1, unique=1, depth=0\nDone. states=9, unique=9, depth=1, sec=0\n";
        assert_eq!(progress_rate(short), None);
    }
}
