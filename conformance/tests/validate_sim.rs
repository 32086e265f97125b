//! Simulator runs, traced, are behaviours of the ack-retry model.

use eo_conformance::validate::{validate_texts, Verdict};
use eo_impl::sim::ack_retry::{AckRetry, Config};
use eo_impl::sim::{self, FaultSpec, Options};

fn traces(seed: u64, messages: u64, faults: FaultSpec) -> Vec<(String, String)> {
    let (report, traces) =
        sim::run_traced::<AckRetry>(&Config { messages }, &Options::new(seed, faults));
    assert!(report.ok(), "{}", report.replay_command());
    traces
        .into_iter()
        .map(|(node, bytes)| {
            (
                format!("node-{node}.jsonl"),
                String::from_utf8(bytes).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_run_without_faults_validates() {
    let inputs = traces(
        1,
        3,
        FaultSpec {
            loss: Some(0.0),
            dup: Some(0.0),
            reorder: Some(0.0),
            crashes: Some(0),
            disk_losses: Some(0),
        },
    );
    match validate_texts(&inputs).unwrap() {
        Verdict::Valid(stats) => assert!(stats.model_steps > 0),
        Verdict::Invalid(d) => panic!(
            "{d}\n{}",
            inputs.iter().map(|(_, t)| t.as_str()).collect::<String>()
        ),
    }
}

#[test]
fn runs_with_faults_validate() {
    for seed in 0..200 {
        let inputs = traces(
            seed,
            4,
            FaultSpec {
                disk_losses: Some(0),
                ..FaultSpec::default()
            },
        );
        match validate_texts(&inputs) {
            Ok(Verdict::Valid(_)) => {}
            Ok(Verdict::Invalid(d)) => panic!("seed {seed}: {d}"),
            Err(e) => panic!("seed {seed}: {e}"),
        }
    }
}
