//! `eo check`.

use crate::UsageError;
use clap::Args;
use eo_models::catalog::{ConfigScope, ModelEntry, ModelInfo, Settings, VariantInfo, VariantKind};
use eo_models::check::{Phases, Reading, Report, RunOptions, Search, Status};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The flags of `eo check` itself; a model's own flags come with its
/// subcommand (see `crate::per_model`). Each is global: it may follow the model.
#[derive(Args)]
#[command(next_help_heading = "Search and output")]
pub struct CheckArgs {
    /// Breadth-first search over the explicit state graph (default): one
    /// thread, deterministic counts and depth, shortest counterexamples, and
    /// `progress` properties checked.
    #[arg(long, global = true, conflicts_with = "dfs")]
    bfs: bool,
    /// Stateright's depth-first checker: keeps no state graph (less memory),
    /// runs on --threads, checks `progress` only at terminal states (a
    /// livelock is not seen); its counterexamples are shortened by a
    /// breadth-first search afterwards.
    #[arg(long, global = true)]
    dfs: bool,
    /// Threads for --dfs (default: every core); the breadth-first search uses one.
    #[arg(long, global = true, requires = "dfs", allow_negative_numbers = true, value_parser = crate::args::threads)]
    threads: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Write a sequence diagram of every counterexample and every `sometimes`
    /// example into DIR, one SVG file per property
    /// (MODEL-VARIANT-PROPERTY.svg); DIR is created if missing.
    #[arg(long, global = true, value_name = "DIR")]
    svg: Option<PathBuf>,
    /// Without a model: check the table plus every model's named
    /// configurations that are too large for it (`eo list` marks them
    /// `--deep`). For one model, name a configuration with --config.
    #[arg(long, global = true)]
    deep: bool,
}

impl CheckArgs {
    fn options(&self) -> Result<RunOptions<'static>, UsageError> {
        let threads = match self.threads {
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

/// Checks one model (its name and settings from its subcommand) or, without
/// one, every model and variant.
pub fn run(args: &CheckArgs, model: Option<(&str, Settings)>) -> Result<ExitCode, UsageError> {
    match model {
        Some(_) if args.deep => Err(UsageError(
            "--deep checks every model's configurations; for one model name a configuration \
             with --config NAME (see 'eo list')"
                .to_owned(),
        )),
        Some((model, settings)) => check_one(args, model, settings),
        None => check_all(args),
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

fn check_one(args: &CheckArgs, model: &str, settings: Settings) -> Result<ExitCode, UsageError> {
    let entry = eo_conformance::catalog::find(model).map_err(|e| UsageError(e.0))?;
    let mut opts = args.options()?;
    opts.progress = Some(&print_progress);
    reset_peak_memory();
    let mut report = entry.check(&settings, &opts).map_err(|e| UsageError(e.0))?;
    report.configuration = settings.config.clone();
    let peak = peak_memory_kib();
    if args.json {
        let mut value = serde_json::to_value(&report)
            .map_err(|e| UsageError(format!("cannot encode JSON: {e}")))?;
        type_config(&mut value["config"]);
        if let Some(object) = value.as_object_mut() {
            object.insert("peak_memory_kib".into(), serde_json::json!(peak));
        }
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| UsageError(format!("cannot encode JSON: {e}")))?;
        println!("{text}");
    } else {
        print_report(&report, &settings, peak);
    }
    if let Some(dir) = &args.svg {
        write_pictures(&entry.info(), &report, dir)?;
    }
    Ok(if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Writes the picture of every counterexample and every example in `report`
/// into `dir`, naming each file on stderr.
pub fn write_pictures(info: &ModelInfo, report: &Report, dir: &Path) -> Result<(), UsageError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| UsageError(format!("cannot create {}: {e}", dir.display())))?;
    for p in &report.properties {
        let (steps, kind) = match (&p.counterexample, &p.example) {
            (Some(steps), _) => (steps, crate::svg::Kind::Violation),
            (None, Some(steps)) => (steps, crate::svg::Kind::Example),
            (None, None) => continue,
        };
        let about = info
            .properties
            .iter()
            .find(|i| i.name == p.name)
            .map_or("", |i| i.about);
        let picture = crate::svg::Picture {
            model: &report.model,
            variant: &report.variant,
            property: p.name,
            expectation: p.expectation,
            about,
            kind,
            steps,
            final_state: p.final_state.as_deref(),
        };
        let path = dir.join(picture.file_name());
        std::fs::write(&path, picture.render())
            .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn print_report(report: &Report, settings: &Settings, peak_kib: Option<u64>) {
    let config: Vec<String> = report
        .config
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let named = match &report.configuration {
        Some(name) => format!(" · configuration {name}"),
        None => String::new(),
    };
    println!(
        "{} · variant {}{named} · {}",
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
            println!("      counterexample ({}):", plural(steps.len(), "step"));
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
pub fn flags_for(settings: &Settings) -> String {
    let mut s = String::new();
    if let Some(v) = &settings.variant {
        s += &format!(" --variant {v}");
    }
    if let Some(c) = &settings.config {
        s += &format!(" --config {c}");
    }
    let numbers = [
        ("senders", settings.senders),
        ("messages", settings.messages),
        ("crashes", settings.crashes),
        ("disk-losses", settings.disk_losses),
        ("window", settings.window),
        ("in-flight", settings.in_flight),
        ("submissions", settings.submissions),
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
    if let Some(l) = &settings.log {
        s += &format!(" --log {l}");
    }
    if settings.symmetry {
        s += " --symmetry";
    }
    if settings.coordinator_never_recovers {
        s += " --coordinator-never-recovers";
    }
    s
}

/// Column widths of the all-models table, known before the first row is
/// checked so rows print as they finish. The "actual" column comes last: a long
/// list of failed properties cannot push another column out of line.
struct Widths {
    model: usize,
    variant: usize,
    config: usize,
    expected: usize,
}

impl Widths {
    fn of(entries: &[&dyn ModelEntry]) -> Widths {
        let mut w = Widths {
            model: "model".len(),
            variant: "variant".len(),
            config: "config".len(),
            expected: "all hold".len(),
        };
        for entry in entries {
            let info = entry.info();
            w.model = w.model.max(info.name.chars().count());
            for v in &info.variants {
                w.variant = w.variant.max(v.name.chars().count());
                if let Some(p) = v.expected_violation {
                    w.expected = w.expected.max(expected_fails(p).chars().count());
                }
                if let Some(c) = &v.settings.config {
                    w.config = w.config.max(c.chars().count());
                }
            }
            for c in &info.configs {
                w.config = w.config.max(c.name.chars().count());
            }
        }
        w
    }

    /// One line of the table: model, variant, named configuration, unique
    /// states, time, verdict, expected, actual.
    fn line(&self, cells: [&str; 8]) -> String {
        let [model, variant, config, unique, time, verdict, expected, actual] = cells;
        format!(
            "{model:<mw$}  {variant:<vw$}  {config:<cw$}  {unique:>12}  {time:>7}  {verdict:<10}  {expected:<ew$}  {actual}",
            mw = self.model,
            vw = self.variant,
            cw = self.config,
            ew = self.expected,
        )
        .trim_end()
        .to_owned()
    }
}

/// The "expected" cell of a bug or limitation row.
fn expected_fails(property: &str) -> String {
    format!("{property} fails")
}

/// One row of the all-models table.
#[derive(serde::Serialize)]
struct Row {
    model: &'static str,
    variant: &'static str,
    /// The named configuration of the row, if any.
    config: Option<String>,
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
            expected_fails(p),
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
        config: variant.settings.config.clone(),
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

/// The rows `eo check` runs for one model: each variant of its table, then
/// each named configuration in the table (or, with `deep`, every one) with
/// the correct protocol.
fn rows_of(info: &ModelInfo, deep: bool) -> Vec<VariantInfo> {
    let mut rows: Vec<VariantInfo> = info
        .variants
        .iter()
        .filter(|v| deep || !v.deep)
        .cloned()
        .collect();
    for config in &info.configs {
        if deep || config.scope == ConfigScope::Table {
            rows.push(VariantInfo {
                settings: Settings {
                    config: Some(config.name.to_owned()),
                    ..Settings::default()
                },
                ..VariantInfo::of("correct", None, config.about)
            });
        }
    }
    rows
}

fn check_all(args: &CheckArgs) -> Result<ExitCode, UsageError> {
    let mut opts = args.options()?;
    opts.progress = Some(&print_progress);
    let start = Instant::now();
    let mut rows = Vec::new();
    let widths = Widths::of(&eo_conformance::catalog::all());
    if !args.json {
        println!(
            "{}",
            widths.line([
                "model", "variant", "config", "unique", "time", "verdict", "expected", "actual"
            ])
        );
    }
    for entry in eo_conformance::catalog::all() {
        for variant in rows_of(&entry.info(), args.deep) {
            reset_peak_memory();
            let label = format!("{}{}", variant.name, flags_for(&variant.settings));
            let mut report = entry
                .check(&variant.settings, &opts)
                .map_err(|e| UsageError(format!("{} {label}: {e}", entry.info().name)))?;
            report.configuration = variant.settings.config.clone();
            if let Some(dir) = &args.svg {
                write_pictures(&entry.info(), &report, dir)?;
            }
            let row = judge(entry, &variant, &report, peak_memory_kib());
            if !args.json {
                println!(
                    "{}",
                    widths.line([
                        row.model,
                        row.variant,
                        row.config.as_deref().unwrap_or("-"),
                        &thousands(row.unique_states),
                        &format!("{:.1}s", row.elapsed_ms as f64 / 1000.0),
                        if row.ok { "ok" } else { "UNEXPECTED" },
                        &row.expected,
                        &row.actual,
                    ])
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

/// `1 step`, `2 steps`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The configuration of a report as JSON values of their own type: counts are
/// numbers, `on`/`off` switches are booleans, names stay strings.
fn type_config(config: &mut serde_json::Value) {
    let Some(map) = config.as_object_mut() else {
        return;
    };
    for value in map.values_mut() {
        let typed = match value.as_str() {
            Some("on" | "true" | "yes") => serde_json::Value::Bool(true),
            Some("off" | "false" | "no") => serde_json::Value::Bool(false),
            Some(text) => match text.parse::<u64>() {
                Ok(n) => n.into(),
                Err(_) => continue,
            },
            None => continue,
        };
        *value = typed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_stays_aligned_with_long_cells() {
        let widths = Widths::of(&eo_conformance::catalog::all());
        let header = widths.line([
            "model", "variant", "config", "unique", "time", "verdict", "expected", "actual",
        ]);
        let long_expected = (widths.expected - " fails".len()).max(1);
        let rows = [
            widths.line([
                "ack-retry",
                "no-dedup",
                "-",
                "1,234",
                "0.1s",
                "ok",
                "exactly-once fails",
                "exactly-once, no-loss, no-phantom, all-delivered, eventually-delivered fails",
            ]),
            widths.line([
                "two-phase-commit",
                "coordinator-never-recovers",
                "two-transactions",
                "123,456,789",
                "1234.5s",
                "UNEXPECTED",
                &expected_fails(&"p".repeat(long_expected)),
                "all hold",
            ]),
        ];
        let column = |line: &str, n: usize| {
            // The start of the n-th column: after n runs of two or more spaces.
            let mut at = 0;
            for _ in 0..n {
                let gap = line[at..].find("  ").unwrap() + at;
                at = gap + line[gap..].find(|c: char| c != ' ').unwrap();
            }
            at
        };
        for row in &rows {
            for n in [5, 6, 7] {
                assert_eq!(column(row, n), column(&header, n), "{header}\n{row}");
            }
        }
    }

    #[test]
    fn deep_adds_the_deep_configurations_to_the_table() {
        let info = eo_conformance::catalog::find("ack-retry").unwrap().info();
        let named = |deep| -> Vec<Option<String>> {
            rows_of(&info, deep)
                .into_iter()
                .map(|r| r.settings.config)
                .filter(Option::is_some)
                .collect()
        };
        let names = |n: &[&str]| -> Vec<Option<String>> {
            n.iter().map(|c| Some((*c).to_owned())).collect()
        };
        assert_eq!(
            named(false),
            names(&["sync-log", "two-senders", "disk-loss"])
        );
        assert_eq!(
            named(true),
            names(&[
                "sync-log",
                "two-crashes",
                "two-senders",
                "disk-loss",
                "wide-window"
            ])
        );
        let rows = rows_of(&info, true);
        let last = rows.last().unwrap();
        assert_eq!((last.name, last.kind), ("correct", VariantKind::Correct));
        assert_eq!(rows.len(), info.variants.len() + 5);
    }

    #[test]
    fn one_step_is_singular() {
        assert_eq!(plural(1, "step"), "1 step");
        assert_eq!(plural(0, "step"), "0 steps");
        assert_eq!(plural(12, "step"), "12 steps");
    }

    #[test]
    fn configuration_counts_and_switches_are_json_numbers_and_booleans() {
        let mut config = serde_json::json!({
            "senders": "2", "network": "ordered", "symmetry": "off", "recovers": "on"
        });
        type_config(&mut config);
        assert_eq!(
            config,
            serde_json::json!({
                "senders": 2, "network": "ordered", "symmetry": false, "recovers": true
            })
        );
    }
}
