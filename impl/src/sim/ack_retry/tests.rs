//! The simulator on ack-retry: clean runs, determinism, and a planted bug.

use super::*;
use crate::sim::{self, DriverBug, FaultSpec, Options, RunReport};
use proptest::prelude::*;

fn run(seed: u64, messages: u64, faults: FaultSpec) -> RunReport {
    sim::run::<AckRetry>(&Config { messages }, &Options::new(seed, faults))
}

fn faults(loss: f64, dup: f64, crashes: u32) -> FaultSpec {
    FaultSpec {
        loss: Some(loss),
        dup: Some(dup),
        reorder: None,
        crashes: Some(crashes),
        disk_losses: Some(0),
    }
}

#[test]
fn a_run_without_faults_delivers_everything_once() {
    let report = run(
        1,
        200,
        FaultSpec {
            loss: Some(0.0),
            dup: Some(0.0),
            reorder: Some(0.0),
            crashes: Some(0),
            disk_losses: Some(0),
        },
    );
    assert!(report.ok(), "{report}");
    let c = &report.stats.counters;
    assert_eq!(c["applications"], 200);
    assert_eq!(c["duplicates_suppressed"], 0);
    assert_eq!(report.stats.crashes, 0);
}

#[test]
fn heavy_faults_still_deliver_exactly_once() {
    let report = run(7, 2_000, faults(0.3, 0.3, 8));
    assert!(report.ok(), "{report}");
    let s = &report.stats;
    assert_eq!(s.crashes, 8);
    assert!(
        s.counters["retransmissions"] > 0 && s.counters["duplicates_suppressed"] > 0,
        "{s:?}"
    );
    assert!(s.compactions > 0 && s.restarts == 8, "{s:?}");
}

#[test]
fn every_crash_point_is_reached_over_a_few_seeds() {
    let (mut after_append, mut after_sync, mut idle) = (0, 0, 0);
    for seed in 0..40 {
        let report = run(seed, 100, faults(0.1, 0.1, 4));
        assert!(report.ok(), "{report}");
        after_append += report.stats.crashes_after_append;
        after_sync += report.stats.crashes_after_sync;
        idle += report.stats.crashes
            - report.stats.crashes_after_append
            - report.stats.crashes_after_sync;
    }
    assert!(
        after_append > 0 && after_sync > 0 && idle > 0,
        "{after_append} {after_sync} {idle}"
    );
}

#[test]
fn a_run_is_a_function_of_its_seed() {
    let spec = FaultSpec::default(); // every option drawn from the seed
    let a = run(42, 300, spec);
    let b = run(42, 300, spec);
    assert_eq!(a, b);
    assert_ne!(a.stats, run(43, 300, spec).stats);
}

#[test]
fn sending_before_sync_is_caught() {
    // The checker must be able to fail: a driver that releases acks before the
    // records are durable loses acknowledged messages at a crash.
    let mut caught = Vec::new();
    for seed in 0..40 {
        let options = Options {
            bug: Some(DriverBug::SendBeforeSync),
            ..Options::new(seed, faults(0.1, 0.1, 6))
        };
        let report = sim::run::<AckRetry>(&Config { messages: 200 }, &options);
        if !report.ok() {
            caught.push(report);
        }
    }
    assert!(
        caught.len() >= 5,
        "only {} of 40 runs caught the bug",
        caught.len()
    );
    let first = caught[0].to_string();
    assert!(
        first.contains("seed=")
            && first.contains("loss=")
            && first.contains("replay: eo sim ack-retry"),
        "{first}"
    );
    let properties: std::collections::BTreeSet<&str> = caught
        .iter()
        .flat_map(|r| r.violations.iter().map(|v| v.property.as_str()))
        .collect();
    assert!(properties.contains("no-loss"), "{properties:?}");
}

#[test]
fn a_cluster_that_cannot_converge_is_caught() {
    let options = Options {
        bug: Some(DriverBug::IgnoreTimers),
        ..Options::new(3, faults(0.2, 0.0, 0))
    };
    let report = sim::run::<AckRetry>(&Config { messages: 50 }, &options);
    assert_eq!(report.violations.len(), 1, "{report}");
    assert_eq!(report.violations[0].property, "convergence", "{report}");
    // It was found within the bounds: the fault phase stalled, then healing did not help.
    let bound = sim::STALL_MAX + sim::CONVERGE_WITHIN + std::time::Duration::from_secs(1);
    assert!(
        report.stats.virtual_time_us <= bound.as_micros() as u64,
        "{report}"
    );
}

#[test]
fn the_report_replays_the_run() {
    // Every option drawn from the seed; the replay line gives them explicitly.
    let report = run(5, 50, FaultSpec::default());
    let f = report.faults;
    assert_eq!(
        report.replay_command(),
        format!(
            "eo sim ack-retry --seed 5 --runs 1 --messages 50 --loss {} --dup {} --reorder {} --crashes {} --disk-losses {}",
            f.loss, f.dup, f.reorder, f.crashes, f.disk_losses
        )
    );
    // Floats print in their shortest round-trip form, so the flags give back the run.
    let parse = |flag: &str| -> f64 {
        let line = report.replay_command();
        let rest = &line[line.find(flag).unwrap() + flag.len() + 1..];
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    let spec = FaultSpec {
        loss: Some(parse("--loss")),
        dup: Some(parse("--dup")),
        reorder: Some(parse("--reorder")),
        crashes: Some(f.crashes),
        disk_losses: Some(f.disk_losses),
    };
    assert_eq!(run(5, 50, spec), report);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn exactly_once_holds_for_any_seed_and_faults(
        seed in any::<u64>(),
        messages in 1u64..64,
        loss in 0.0f64..0.5,
        dup in 0.0f64..0.5,
        reorder in 0.0f64..0.5,
        crashes in 0u32..10,
        disk_losses in 0u32..4,
    ) {
        let spec = FaultSpec { loss: Some(loss), dup: Some(dup), reorder: Some(reorder), crashes: Some(crashes), disk_losses: Some(disk_losses) };
        let report = run(seed, messages, spec);
        prop_assert!(report.ok(), "{}", report);
    }
}

/// A panic inside a run (a core's `assert!`, here planted in the driver) used to
/// unwind through `run_many` and the CLI, losing the seed. It is now a violation
/// named `panic`, and the report replays the run.
#[test]
fn a_panic_in_a_run_is_a_violation_that_keeps_the_seed() {
    let options = Options {
        bug: Some(DriverBug::Panic),
        ..Options::new(7, faults(0.1, 0.1, 1))
    };
    let summary = sim::run_many::<AckRetry>(&Config { messages: 50 }, &options, 2, |_, _| {});
    assert_eq!((summary.runs, summary.violations), (2, 2));
    let report = &summary.failures[0];
    assert_eq!(report.seed, 7);
    let v = report.violations.last().expect("a violation");
    assert_eq!(v.property, "panic", "{report}");
    assert!(v.detail.contains("planted panic"), "{report}");
    assert!(v.at_us > 0, "the panic's virtual time is kept: {report}");
    let shown = report.to_string();
    assert!(
        shown.contains("replay: eo sim ack-retry --seed 7 --runs 1 --messages 50"),
        "{shown}"
    );
    // The replayed run panics again, deterministically.
    let again = sim::run::<AckRetry>(&Config { messages: 50 }, &options);
    assert_eq!(&again, report);
}

/// Senders lose their disks in the fault phase: nothing accepted after a disk
/// loss is lost or applied twice, and the old outbox is applied at most once.
#[test]
fn disk_losses_lose_nothing_and_apply_nothing_twice() {
    let mut losses = 0;
    let mut at_most_once = 0;
    for seed in 0..20 {
        let spec = FaultSpec {
            disk_losses: Some(3),
            ..faults(0.1, 0.1, 2)
        };
        let report = run(seed, 300, spec);
        assert!(report.ok(), "{report}");
        losses += report.stats.disk_losses;
        at_most_once += report.stats.counters["at_most_once"];
    }
    assert_eq!(losses, 60, "every disk loss happened");
    assert!(at_most_once > 0, "some outbox was in flight at a loss");
}

/// The invariants tell a new incarnation's message from an old one with the same
/// seq: a driver that restores the old identity onto the new disk is caught, as
/// an `exactly-once` violation (an id assigned to a second submission). When the
/// disk is lost after the sender's last submission, the only trace is an ack for a
/// seq the restored sender never sent (`protocol-error`).
#[test]
fn restoring_an_identity_after_a_disk_loss_is_caught() {
    let mut exactly_once = 0;
    for seed in 0..10 {
        let options = Options {
            bug: Some(DriverBug::RestoreIdentity),
            ..Options::new(
                seed,
                FaultSpec {
                    disk_losses: Some(2),
                    ..faults(0.0, 0.0, 0)
                },
            )
        };
        let report = sim::run::<AckRetry>(&Config { messages: 300 }, &options);
        assert!(!report.ok(), "seed {seed}: the bug went unnoticed");
        let properties: std::collections::BTreeSet<&str> = report
            .violations
            .iter()
            .map(|v| v.property.as_str())
            .collect();
        assert!(
            properties.is_subset(&["exactly-once", "protocol-error"].into()),
            "{report}"
        );
        exactly_once += usize::from(properties.contains("exactly-once"));
    }
    assert!(
        exactly_once >= 6,
        "exactly-once caught in {exactly_once} of 10"
    );
}
