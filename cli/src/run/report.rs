//! What `eo run` shows: a progress bar on stderr while it runs, a summary at the
//! end (text, or one JSON object with `--json`).
//!
//! Node counters come from each node's last `progress`/`done` line (every
//! number in it, nested keys joined with `.`), summed over every process of a
//! node (a killed process's last line counts) and over the nodes of a role. The
//! summary's named figures are read from them by key: retransmissions,
//! duplicates suppressed, fenced zombies, latency percentiles.

use eo_impl::runtime::inspect::Verdict;
use eo_impl::runtime::proxy::ProxyStats;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Counters summed per role: role name → counter key → value.
pub type RoleCounters = BTreeMap<String, BTreeMap<String, f64>>;

/// Everything `eo run` reports.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub protocol: String,
    /// Workload items (messages or transactions) over all workload nodes.
    pub items: u64,
    /// From the first node's start to the last workload node's `done`.
    pub elapsed_s: f64,
    /// `items / elapsed_s`.
    pub throughput_per_s: f64,
    /// Submission-to-outcome latency: reported by the workload nodes if they
    /// do, else estimated from their progress lines (see [`Latency`]).
    pub latency_p50_ms: Option<f64>,
    /// See `latency_p50_ms`.
    pub latency_p99_ms: Option<f64>,
    /// Nodes SIGKILLed and restarted on their data directory.
    pub kills: u64,
    /// Senders whose data directory was moved away (lost disks).
    pub wipes: u64,
    /// Nodes that did not exit within the stop timeout after SIGTERM.
    pub stop_forced: u64,
    /// Retransmissions, summed over the nodes that report them.
    pub retransmissions: Option<f64>,
    /// Duplicates the receivers or participants suppressed.
    pub duplicates_suppressed: Option<f64>,
    /// Messages of fenced (older) incarnations refused.
    pub fenced_zombies: Option<f64>,
    /// What the fault proxies did (all zero without `--drop/--dup/--delay`).
    pub proxy: ProxyStats,
    /// Every counter the nodes reported, summed per role.
    pub nodes: RoleCounters,
    /// The waiting for the workload gave up (`--timeout`).
    pub timed_out: bool,
    /// What the verifier found.
    pub verdict: Verdict,
    pub data_dir: String,
    /// The data directory is kept (`--data-dir`, or a failed run).
    pub data_kept: bool,
}

/// The sum of every counter whose last key segment contains one of `needles`.
fn find(nodes: &RoleCounters, needles: &[&str], largest: bool) -> Option<f64> {
    let mut found: Option<f64> = None;
    for counters in nodes.values() {
        for (key, value) in counters {
            let last = key.rsplit('.').next().unwrap_or(key);
            if needles.iter().any(|n| last.contains(n)) {
                found = Some(match found {
                    None => *value,
                    Some(f) if largest => f.max(*value),
                    Some(f) => f + value,
                });
            }
        }
    }
    found
}

/// The summary without the verifier's verdict and the proxies' counts.
pub fn summarise(
    protocol: &str,
    items: u64,
    elapsed: Duration,
    kills: u64,
    wipes: u64,
    nodes: RoleCounters,
    latency: &Latency,
) -> Summary {
    let elapsed_s = elapsed.as_secs_f64();
    let (p50, p99) = latency.percentiles();
    Summary {
        protocol: protocol.to_owned(),
        items,
        elapsed_s,
        throughput_per_s: if elapsed_s > 0.0 {
            items as f64 / elapsed_s
        } else {
            0.0
        },
        latency_p50_ms: find(&nodes, &["p50"], true).or(p50),
        latency_p99_ms: find(&nodes, &["p99"], true).or(p99),
        kills,
        wipes,
        retransmissions: find(&nodes, &["retransmi", "resen"], false),
        duplicates_suppressed: find(&nodes, &["duplicate"], false),
        fenced_zombies: find(&nodes, &["fenced", "expired"], false),
        nodes,
        ..Summary::default()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0}"))
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1} ms"))
}

/// Prints the summary on stdout.
pub fn print(s: &Summary, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(s).expect("a summary serialises")
        );
        return;
    }
    let v = &s.verdict;
    println!(
        "{} {}: {} items in {:.2} s = {:.0}/s; latency p50 {} p99 {}",
        s.protocol,
        if v.ok() && !s.timed_out {
            "ok"
        } else {
            "FAILED"
        },
        s.items,
        s.elapsed_s,
        s.throughput_per_s,
        opt_ms(s.latency_p50_ms),
        opt_ms(s.latency_p99_ms),
    );
    println!(
        "faults: {} kills, {} lost disks; proxy: {} data frames, {} dropped, {} duplicated, {} delayed",
        s.kills, s.wipes, s.proxy.data_frames, s.proxy.dropped, s.proxy.duplicated, s.proxy.delayed
    );
    println!(
        "protocol: {} retransmissions, {} duplicates suppressed, {} fenced zombies",
        opt(s.retransmissions),
        opt(s.duplicates_suppressed),
        opt(s.fenced_zombies)
    );
    println!(
        "verified: {} outcomes fixed by the logs, {} of unknown outcome, balances {}; {} violation(s)",
        v.checked,
        v.unknown,
        if v.bank_exact { "exact" } else { "within bounds" },
        v.violations.len() as u64 + v.violations_dropped
    );
    if s.data_kept {
        println!("data: {}", s.data_dir);
    }
}

/// The most progress samples kept per life of a workload node (at one per
/// 100 ms, almost three hours); later ones are dropped.
pub const LATENCY_SAMPLES_MAX: usize = 100_000;

/// Items per life whose latency is estimated, at most (evenly spaced).
const LATENCY_ITEMS_MAX: u64 = 10_000;

/// One progress line: when it arrived, items submitted, items done.
type Sample = (std::time::Instant, u64, u64);

/// Latency estimated from the workload nodes' progress lines.
///
/// A workload node reports, about every 100 ms, how many items it has
/// `submitted` and how many are `done` (have their final outcome); items are
/// submitted in order and finish nearly in order (at most a window apart). The
/// two cumulative curves, interpolated linearly between samples, give for item
/// `k` the time it was submitted and the time it was done; the difference is its
/// latency. Resolution: the sampling interval smooths spikes shorter than it,
/// so the p99 is a lower estimate when latencies are far below 100 ms.
#[derive(Debug, Default)]
pub struct Latency {
    /// (node index, life) → samples (time, submitted, done).
    curves: BTreeMap<(usize, u32), Vec<Sample>>,
}

impl Latency {
    /// One progress line of node `node` in its life `life`, received at `at`.
    pub fn sample(
        &mut self,
        node: usize,
        life: u32,
        at: std::time::Instant,
        submitted: u64,
        done: u64,
    ) {
        let curve = self.curves.entry((node, life)).or_default();
        if curve.len() < LATENCY_SAMPLES_MAX {
            curve.push((at, submitted, done));
        }
    }

    /// The time a cumulative count first reached `k`, interpolated.
    fn time_of(curve: &[Sample], k: u64, done: bool) -> Option<f64> {
        let t0 = curve.first()?.0;
        let count = |s: &Sample| if done { s.2 } else { s.1 };
        let i = curve.iter().position(|s| count(s) >= k)?;
        let secs = |s: &Sample| s.0.duration_since(t0).as_secs_f64();
        if i == 0 {
            return Some(secs(&curve[0]));
        }
        let (a, b) = (&curve[i - 1], &curve[i]);
        let (ca, cb) = (count(a) as f64, count(b) as f64);
        let f = (k as f64 - ca) / (cb - ca);
        Some(secs(a) + f * (secs(b) - secs(a)))
    }

    /// The estimated p50 and p99 in milliseconds, if any item was both submitted
    /// and done after the first sample of its life.
    pub fn percentiles(&self) -> (Option<f64>, Option<f64>) {
        let mut all: Vec<f64> = Vec::new();
        for curve in self.curves.values() {
            let (Some(first), Some(last)) = (curve.first(), curve.last()) else {
                continue;
            };
            // Items already done at the first sample (recovered) say nothing.
            let (from, to) = (first.2 + 1, last.2);
            if to < from {
                continue;
            }
            let step = ((to - from) / LATENCY_ITEMS_MAX).max(1);
            let mut k = from;
            while k <= to {
                if let (Some(s), Some(d)) = (
                    Self::time_of(curve, k, false),
                    Self::time_of(curve, k, true),
                ) {
                    all.push(((d - s) * 1000.0).max(0.0));
                }
                k += step;
            }
        }
        if all.is_empty() {
            return (None, None);
        }
        all.sort_by(f64::total_cmp);
        let at = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize];
        (Some(at(0.50)), Some(at(0.99)))
    }
}

/// The progress bar: workload items with a final outcome, with the fault counts.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(items: u64, quiet: bool) -> Progress {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(Some(items), ProgressDrawTarget::stderr())
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} ({per_sec}) {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        Progress { bar }
    }

    pub fn update(&self, done: u64, kills: u64, wipes: u64, proxy: &ProxyStats) {
        self.bar.set_position(done);
        let mut msg = format!("kills {kills}");
        if wipes > 0 {
            msg += &format!(" wipes {wipes}");
        }
        if proxy.data_frames > 0 {
            msg += &format!(" dropped {} duplicated {}", proxy.dropped, proxy.duplicated);
        }
        self.bar.set_message(msg);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn latency_is_the_lag_between_the_submitted_and_done_curves() {
        // 1000 items/s submitted; each done exactly 20 ms later; sampled every 100 ms.
        let t0 = Instant::now();
        let mut latency = Latency::default();
        for i in 0..=20u64 {
            let ms = i * 100;
            let submitted = ms;
            let done = ms.saturating_sub(20);
            latency.sample(0, 0, t0 + Duration::from_millis(ms), submitted, done);
        }
        let (p50, p99) = latency.percentiles();
        let (p50, p99) = (p50.unwrap(), p99.unwrap());
        assert!((p50 - 20.0).abs() < 0.5, "{p50}");
        assert!((p99 - 20.0).abs() < 0.5, "{p99}");
    }

    #[test]
    fn no_progress_means_no_latency() {
        let mut latency = Latency::default();
        latency.sample(0, 0, Instant::now(), 5, 5);
        assert_eq!(latency.percentiles(), (None, None));
    }
}
