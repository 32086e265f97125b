//! Per-message latencies: from submission to the outcome that says it is done.
//!
//! Criterion measures throughput; the rigs also time every message and keep the
//! samples here. [`write_report`] writes their percentiles as JSON (by default
//! to `target/criterion/eo-latency.json`), which `docs/benchmarks.md` cites.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Samples kept per series at most; later ones replace earlier ones in a ring,
/// so a long run keeps a bounded, recent window.
pub const SAMPLES_MAX: usize = 1 << 20;

/// The latencies of one series (one benchmark configuration).
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    samples_us: Vec<u32>,
    next: usize,
}

/// Percentiles of one series, in microseconds.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub samples: usize,
    pub p50_us: u32,
    pub p90_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
}

impl Latencies {
    /// Adds one sample (saturating at `u32::MAX` microseconds, 71 minutes).
    pub fn record(&mut self, latency: Duration) {
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        if self.samples_us.len() < SAMPLES_MAX {
            self.samples_us.push(us);
        } else {
            self.samples_us[self.next] = us;
            self.next = (self.next + 1) % SAMPLES_MAX;
        }
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: &Latencies) {
        for &us in &other.samples_us {
            self.record(Duration::from_micros(u64::from(us)));
        }
    }

    /// The percentiles, or `None` without samples.
    pub fn summary(&self) -> Option<Summary> {
        if self.samples_us.is_empty() {
            return None;
        }
        let mut sorted = self.samples_us.clone();
        sorted.sort_unstable();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        Some(Summary {
            samples: sorted.len(),
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            max_us: at(1.0),
        })
    }

    /// A histogram: (upper bound in µs, count) on a log scale, 4 buckets per
    /// power of two, for the latency-distribution plot.
    pub fn histogram(&self) -> Vec<(u32, usize)> {
        let mut buckets: BTreeMap<u32, usize> = BTreeMap::new();
        for &us in &self.samples_us {
            let v = f64::from(us.max(1));
            let bucket = (v.log2() * 4.0).ceil();
            let bound = 2f64.powf(bucket / 4.0).ceil() as u32;
            *buckets.entry(bound).or_default() += 1;
        }
        buckets.into_iter().collect()
    }
}

/// Every series of this process, by name, written out by [`write_report`].
static REPORT: Mutex<BTreeMap<String, Latencies>> = Mutex::new(BTreeMap::new());

/// Adds `latencies` to the series `name` of this process's report.
pub fn add_to_report(name: &str, latencies: &Latencies) {
    let mut report = REPORT.lock().unwrap_or_else(|p| p.into_inner());
    report
        .entry(name.to_string())
        .or_default()
        .extend(latencies);
}

/// Where [`write_report`] writes: `EO_LATENCY_JSON`, or
/// `target/criterion/eo-latency.json`.
pub fn report_path() -> PathBuf {
    std::env::var_os("EO_LATENCY_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/criterion/eo-latency.json")
        })
}

#[derive(Serialize)]
struct Entry {
    #[serde(flatten)]
    summary: Summary,
    histogram_us: Vec<(u32, usize)>,
}

/// Merges this process's series into the JSON file at [`report_path`] (series of
/// other benchmark binaries already there are kept) and prints each summary.
pub fn write_report() -> std::io::Result<()> {
    let path = report_path();
    let mut all: serde_json::Map<String, serde_json::Value> = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let report = REPORT.lock().unwrap_or_else(|p| p.into_inner());
    for (name, latencies) in report.iter() {
        let Some(summary) = latencies.summary() else {
            continue;
        };
        eprintln!(
            "latency {name}: p50 {} us, p90 {} us, p99 {} us, max {} us ({} samples)",
            summary.p50_us, summary.p90_us, summary.p99_us, summary.max_us, summary.samples
        );
        let entry = Entry {
            summary,
            histogram_us: latencies.histogram(),
        };
        all.insert(name.clone(), serde_json::to_value(entry)?);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&all)?)
}

/// Writes one SVG bar chart of the latency distribution per series of this
/// process, next to [`report_path`] (`eo-latency-<series>.svg`).
pub fn write_histogram_svgs() -> std::io::Result<()> {
    let report = REPORT.lock().unwrap_or_else(|p| p.into_inner());
    let dir = report_path().with_file_name("eo-latency");
    std::fs::create_dir_all(&dir)?;
    for (name, latencies) in report.iter() {
        let (Some(summary), histogram) = (latencies.summary(), latencies.histogram()) else {
            continue;
        };
        let file = dir.join(format!("{}.svg", name.replace('/', "_")));
        std::fs::write(file, histogram_svg(name, &summary, &histogram))?;
    }
    Ok(())
}

/// A bar per log-scale bucket: x is the bucket's upper bound in µs, y its share.
fn histogram_svg(name: &str, s: &Summary, histogram: &[(u32, usize)]) -> String {
    const W: f64 = 640.0;
    const H: f64 = 240.0;
    const PAD: f64 = 40.0;
    let total: usize = histogram.iter().map(|(_, n)| n).sum();
    let most = histogram.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let bar = (W - 2.0 * PAD) / histogram.len().max(1) as f64;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{PAD}\" y=\"16\">{name}: latency distribution, {} messages; p50 {} us, p99 {} us, max {} us</text>\n",
        total, s.p50_us, s.p99_us, s.max_us
    );
    for (i, (bound, n)) in histogram.iter().enumerate() {
        let h = (H - 2.0 * PAD) * *n as f64 / most as f64;
        let x = PAD + i as f64 * bar;
        out += &format!(
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#4a7ab5\"><title>&lt;= {bound} us: {n}</title></rect>\n",
            H - PAD - h,
            (bar - 1.0).max(1.0)
        );
        if i % 4 == 0 {
            out += &format!(
                "<text x=\"{x:.1}\" y=\"{:.1}\">{bound}</text>\n",
                H - PAD + 14.0
            );
        }
    }
    out += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\">latency, us (log scale, bucket upper bounds)</text>\n</svg>\n",
        W / 2.0 - 100.0,
        H - 8.0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_ranked_sample() {
        let mut l = Latencies::default();
        assert_eq!(l.summary(), None);
        for us in (1..=100).rev() {
            l.record(Duration::from_micros(us));
        }
        let s = l.summary().unwrap();
        assert_eq!(
            (s.samples, s.p50_us, s.p99_us, s.max_us),
            (100, 51, 99, 100)
        );
        let counted: usize = l.histogram().iter().map(|(_, n)| n).sum();
        assert_eq!(counted, 100);
    }
}
