//! The checker: states per second and bytes per state, for each model's default
//! configuration and for `two-phase-spec` at 7 resource managers, beside
//! Stateright's own example models built and run in the same run
//! (`eo_benches::reference`).
//!
//! ```text
//! cargo bench -p eo-benches --bench checker [-- --quick]
//! ```
//!
//! Each configuration is checked once first (its counts, bytes per state of the
//! state graph and states/s go to `target/criterion/eo-checker.json`), then timed
//! by criterion with a throughput of its generated states, so criterion's report
//! reads in states/s. `two-phase-commit`'s default (3 participants, about 20–40 s
//! a check) is only run once, outside criterion (whose least is 10 samples);
//! criterion times it at 2 participants.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use eo_benches::reference;
use eo_models::catalog::{self, Settings};
use eo_models::check::{Report, RunOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// Configurations timed by criterion: (model, label, settings).
fn configurations() -> Vec<(&'static str, &'static str, Settings)> {
    let with = |participants| Settings {
        participants: Some(participants),
        ..Settings::default()
    };
    vec![
        ("ack-retry", "default", Settings::default()),
        ("two-phase-spec", "default", Settings::default()),
        ("two-phase-spec", "7-rms", with(7)),
        ("two-phase-commit", "2-participants", with(2)),
    ]
}

fn check(model: &str, settings: &Settings) -> Report {
    let entry = catalog::find(model).expect("a model of the catalog");
    let report = entry
        .check(settings, &RunOptions::default())
        .expect("a valid configuration");
    assert!(report.all_ok(), "{model}: {:?} failed", report.failed());
    report
}

fn summary(report: &Report, wall: Duration) -> serde_json::Value {
    serde_json::json!({
        "states": report.states,
        "unique_states": report.unique_states,
        "wall_s": wall.as_secs_f64(),
        "states_per_second_search": report.states_per_second(),
        "graph_bytes_per_state": report.graph_bytes_per_state,
    })
}

fn checker(c: &mut Criterion) {
    let mut out = serde_json::Map::new();
    let mut g = c.benchmark_group("checker");
    g.sample_size(10);
    for (model, label, settings) in configurations() {
        let start = Instant::now();
        let first = check(model, &settings);
        let wall = start.elapsed();
        eprintln!(
            "checker/{model}/{label}: {} states ({} unique), {:.0} states/s, {:?} graph bytes/state",
            first.states,
            first.unique_states,
            first.states_per_second(),
            first.graph_bytes_per_state
        );
        out.insert(format!("{model}/{label}"), summary(&first, wall));
        g.throughput(Throughput::Elements(first.states as u64));
        g.bench_function(BenchmarkId::new(model, label), |b| {
            b.iter(|| check(model, &settings).states)
        });
    }
    reference(&mut g, &mut out);
    g.finish();

    // The default of two-phase-commit, once: too long for criterion's 10 samples.
    if eo_benches::quick() {
        eprintln!("checker/two-phase-commit/default: skipped in --quick mode");
    } else {
        let start = Instant::now();
        let report = check("two-phase-commit", &Settings::default());
        let wall = start.elapsed();
        eprintln!(
            "checker/two-phase-commit/default: {} states ({} unique) in {:.1} s, {:.0} states/s, {:?} graph bytes/state",
            report.states,
            report.unique_states,
            wall.as_secs_f64(),
            report.states_per_second(),
            report.graph_bytes_per_state
        );
        out.insert("two-phase-commit/default".into(), summary(&report, wall));
    }

    let path = eo_benches::latency::report_path().with_file_name("eo-checker.json");
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&out).expect("json")).expect("write");
}

/// Stateright's own examples, built and timed in this run (see
/// `eo_benches::reference`): the reference for our states/s.
fn reference(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    out: &mut serde_json::Map<String, serde_json::Value>,
) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = reference::build(&workspace).expect("Stateright's examples build");
    for example in &reference::EXAMPLES {
        let first = built.run(example).expect("the example runs");
        eprintln!(
            "checker/stateright-example/{}: {} states ({} unique) in {:.2} s (wall, rounded up to whole seconds by its reporter), search {:.0} states/s",
            example.label,
            first.states,
            first.unique_states,
            first.wall.as_secs_f64(),
            first.states_per_second.unwrap_or(f64::NAN)
        );
        out.insert(
            format!("stateright-example/{}", example.label),
            serde_json::json!({
                "states": first.states,
                "unique_states": first.unique_states,
                "wall_s": first.wall.as_secs_f64(),
                "states_per_second_search": first.states_per_second,
                "args": example.args,
            }),
        );
        if first.states_per_second.is_none() {
            // Done within the reporter's first second: the wall time is its
            // one-second poll, not the search, so criterion would time the poll.
            continue;
        }
        g.throughput(Throughput::Elements(first.states));
        g.bench_function(BenchmarkId::new("stateright-example", example.label), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| built.run(example).expect("the example runs").wall)
                    .sum()
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = eo_benches::criterion_config();
    targets = checker
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
