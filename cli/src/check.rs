//! `eo check` and `eo explore`.

use crate::{SettingsArgs, UsageError};
use clap::Args;
use eo_models::catalog::{self, ModelEntry, Settings, VariantInfo, VariantKind};
use eo_models::check::{Phases, Reading, Report, RunOptions, Search, Status};
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct CheckArgs {
    /// The model to check (see `eo list`); without it, every model and variant.
    model: Option<String>,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Breadth-first search over the explicit state graph (default): one
    /// thread, deterministic counts and depth, shortest counterexamples, and
    /// `progress` properties checked.
    #[arg(long, conflicts_with = "dfs")]
    bfs: bool,
    /// Stateright's depth-first checker: keeps no state graph (less memory),
    /// runs on --threads, leaves `progress` properties unchecked; its
    /// counterexamples are shortened by a breadth-first search afterwards.
    #[arg(long)]
    dfs: bool,
    /// Threads for --dfs (default: every core); the breadth-first search uses one.
    #[arg(long, requires = "dfs")]
    threads: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

impl CheckArgs {
    fn options(&self) -> Result<RunOptions<'static>, UsageError> {
        let threads = match self.threads {
            Some(0) => return Err(UsageError("--threads must be at least 1".into())),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(RunOptions {
            search: if self.dfs { Search::Dfs } else { Search::Bfs },
            threads,
            progress: None,
        })
    }
}

pub fn run(args: &CheckArgs) -> Result<ExitCode, UsageError> {
    match &args.model {
        Some(model) => check_one(args, model),
        None => {
            if !args.settings.is_empty() {
                return Err(UsageError(
                    "configuration flags need a model: eo check <model> [flags] (see eo list)"
                        .into(),
                ));
            }
            check_all(args)
        }
    }
}

fn print_progress(p: &Reading) {
    eprintln!(
        "  … {:.0} s {}: {} states, {} unique, depth {}",
        p.elapsed.as_secs_f64(),
        p.phase.as_str(),
        thousands(p.states),
        thousands(p.unique_states),
        p.depth,
    );
}

/// Starts a new peak-memory measurement: resets this process's resident-set
/// high-water mark (Linux: `5` into /proc/self/clear_refs). Elsewhere a no-op,
/// and the peak read later is the process's peak so far.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The resident-set high-water mark since the last reset, in KiB (Linux only).
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn check_one(args: &CheckArgs, model: &str) -> Result<ExitCode, UsageError> {
    let entry = catalog::find(model).map_err(|e| UsageError(e.0))?;
    let settings = args.settings.to_settings();
    let mut opts = args.options()?;
    opts.progress = Some(&print_progress);
    reset_peak_memory();
    let report = entry.check(&settings, &opts).map_err(|e| UsageError(e.0))?;
    let peak = peak_memory_kib();
    if args.json {
        let mut value = serde_json::to_value(&report)
            .map_err(|e| UsageError(format!("cannot encode JSON: {e}")))?;
        if let Some(object) = value.as_object_mut() {
            object.insert("peak_memory_kib".into(), serde_json::json!(peak));
        }
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| UsageError(format!("cannot encode JSON: {e}")))?;
        println!("{text}");
    } else {
        print_report(&report, &settings, peak);
    }
    Ok(if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(report: &Report, settings: &Settings, peak_kib: Option<u64>) {
    let config: Vec<String> = report
        .config
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "{} · variant {} · {}",
        report.model,
        report.variant,
        config.join(" ")
    );
    let depth = match report.max_depth {
        Some(d) => format!(", max depth {d}"),
        None => String::new(),
    };
    let memory = match peak_kib {
        Some(kib) => format!(", peak memory {} MiB", kib / 1024),
        None => String::new(),
    };
    println!(
        "{} states, {} unique{depth}, {:.1} s in all, {} states/s{memory}",
        thousands(report.states),
        thousands(report.unique_states),
        report.elapsed_ms as f64 / 1000.0,
        thousands(report.states_per_second() as usize)
    );
    println!();
    for p in &report.properties {
        println!(
            "  {:<22} {:<10} {}",
            p.name,
            p.expectation,
            p.status.as_str()
        );
        if let Some(note) = &p.note {
            println!("      {note}");
        }
        if let Some(steps) = &p.counterexample {
            println!("      counterexample ({} steps):", steps.len());
            for (i, step) in steps.iter().enumerate() {
                println!("      {:>3}. {step}", i + 1);
            }
        }
        if p.status == Status::Violated {
            if let Some(last) = &p.final_state {
                println!("      then: {last}");
            }
            if let Some(path) = &p.explorer_path {
                println!(
                    "      explorer: run `eo explore {}{}` and open http://127.0.0.1:3000/#/steps/{path}",
                    report.model,
                    flags_for(settings)
                );
            }
        }
    }
    println!();
    let failed = report.failed();
    if failed.is_empty() {
        println!("every property meets its expectation");
    } else {
        println!("failed: {}", failed.join(", "));
    }
}

/// The command-line flags that reproduce `settings`.
fn flags_for(settings: &Settings) -> String {
    let mut s = String::new();
    if let Some(v) = &settings.variant {
        s += &format!(" --variant {v}");
    }
    let numbers = [
        ("senders", settings.senders),
        ("messages", settings.messages),
        ("crashes", settings.crashes),
        ("participants", settings.participants),
        ("transactions", settings.transactions),
    ];
    for (name, value) in numbers {
        if let Some(v) = value {
            s += &format!(" --{name} {v}");
        }
    }
    if let Some(n) = &settings.network {
        s += &format!(" --network {n}");
    }
    if settings.symmetry {
        s += " --symmetry";
    }
    if settings.coordinator_never_recovers {
        s += " --coordinator-never-recovers";
    }
    s
}

/// One row of the all-models table.
#[derive(serde::Serialize)]
struct Row {
    model: &'static str,
    variant: &'static str,
    kind: VariantKind,
    states: usize,
    unique_states: usize,
    elapsed_ms: u128,
    phases: Phases,
    states_per_second: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    graph_bytes_per_state: Option<f64>,
    peak_memory_kib: Option<u64>,
    expected: String,
    actual: String,
    ok: bool,
}

fn judge(
    entry: &dyn ModelEntry,
    variant: &VariantInfo,
    report: &Report,
    peak_memory_kib: Option<u64>,
) -> Row {
    let failed = report.failed();
    let (expected, ok) = match (variant.kind, variant.expected_violation) {
        (VariantKind::Correct, _) | (_, None) => ("all hold".to_string(), failed.is_empty()),
        (_, Some(p)) => (
            format!("{p} fails"),
            report
                .property(p)
                .is_some_and(|r| matches!(r.status, Status::Violated | Status::NotFound)),
        ),
    };
    let actual = if failed.is_empty() {
        "all hold".to_string()
    } else {
        format!("{} fails", failed.join(", "))
    };
    Row {
        model: entry.info().name,
        variant: variant.name,
        kind: variant.kind,
        states: report.states,
        unique_states: report.unique_states,
        elapsed_ms: report.elapsed_ms,
        phases: report.phases,
        states_per_second: report.states_per_second().round(),
        graph_bytes_per_state: report.graph_bytes_per_state.map(|b| b.round()),
        peak_memory_kib,
        expected,
        actual,
        ok,
    }
}

fn check_all(args: &CheckArgs) -> Result<ExitCode, UsageError> {
    let mut opts = args.options()?;
    opts.progress = Some(&print_progress);
    let start = Instant::now();
    let mut rows = Vec::new();
    if !args.json {
        println!(
            "{:<18} {:<28} {:>12} {:>8}  {:<32} {:<40}",
            "model", "variant", "unique", "time", "expected", "actual"
        );
    }
    for entry in catalog::all() {
        for variant in entry.info().variants {
            reset_peak_memory();
            let report = entry
                .check(&variant.settings, &opts)
                .map_err(|e| UsageError(format!("{} {}: {e}", entry.info().name, variant.name)))?;
            let row = judge(entry, &variant, &report, peak_memory_kib());
            if !args.json {
                println!(
                    "{:<18} {:<28} {:>12} {:>7.1}s  {:<32} {:<40} {}",
                    row.model,
                    row.variant,
                    thousands(row.unique_states),
                    row.elapsed_ms as f64 / 1000.0,
                    row.expected,
                    row.actual,
                    if row.ok { "ok" } else { "UNEXPECTED" }
                );
                let _ = std::io::stdout().flush();
            }
            rows.push(row);
        }
    }
    let bad = rows.iter().filter(|r| !r.ok).count();
    if args.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "rows": rows,
            "elapsed_ms": start.elapsed().as_millis(),
            "ok": bad == 0,
        }))
        .map_err(|e| UsageError(format!("cannot encode JSON: {e}")))?;
        println!("{text}");
    } else {
        println!();
        println!(
            "{} rows in {:.1} s: {}",
            rows.len(),
            start.elapsed().as_secs_f64(),
            if bad == 0 {
                "every row as expected".to_string()
            } else {
                format!("{bad} UNEXPECTED")
            }
        );
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn explore(
    model: &str,
    settings: &Settings,
    address: SocketAddr,
) -> Result<ExitCode, UsageError> {
    let entry = catalog::find(model).map_err(|e| UsageError(e.0))?;
    // Refuse a busy address before announcing anything (the model crate checks
    // again right before serving).
    drop(
        std::net::TcpListener::bind(address)
            .map_err(|e| UsageError(format!("cannot serve the Explorer on {address}: {e}")))?,
    );
    println!("Serving the Stateright Explorer for {model} at http://{address}/ (Ctrl-C to stop)");
    entry
        .explore(settings, address)
        .map_err(|e| UsageError(e.0))?;
    Ok(ExitCode::SUCCESS)
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
