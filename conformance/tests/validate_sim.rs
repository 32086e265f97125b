//! Simulator runs, traced, are behaviours of the ack-retry model.

use eo_conformance::validate::{validate_texts, ValidateError, Verdict};
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

mod generated {
    use super::*;
    use proptest::prelude::*;

    /// Runs per `cargo test`: small runs (at most 4 messages, so within the
    /// model's bounds), faults drawn by proptest.
    const CASES: u32 = 2_000;

    proptest! {
        #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn simulator_runs_with_generated_faults_validate(
            seed in any::<u64>(),
            messages in 1u64..=4,
            loss in 0.0f64..0.4,
            dup in 0.0f64..0.4,
            reorder in 0.0f64..0.5,
            crashes in 0u32..=3,
            disk_losses in 0u32..=2,
        ) {
            let faults = FaultSpec { loss: Some(loss), dup: Some(dup), reorder: Some(reorder), crashes: Some(crashes), disk_losses: Some(disk_losses) };
            let inputs = traces(seed, messages, faults);
            match validate_texts(&inputs) {
                Ok(Verdict::Valid(_)) => {}
                // The model loses a disk only while a sender has work left.
                Err(ValidateError::Outside(o)) if o.bound.starts_with("disk loss") => {}
                Ok(Verdict::Invalid(d)) => prop_assert!(false, "seed {seed} {faults:?}: {d}"),
                Err(e) => prop_assert!(false, "seed {seed} {faults:?}: {e}"),
            }
        }
    }
}
