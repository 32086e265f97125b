use super::*;
use crate::catalog::{ModelEntry, Settings};
use crate::check::{Report, RunOptions, Status};
use properties::all_applied;

fn check(cfg: &AckRetryCfg) -> Report {
    let settings = Settings {
        variant: Some(cfg.variant.name().to_string()),
        senders: Some(cfg.senders.into()),
        messages: Some(cfg.messages.into()),
        crashes: Some(cfg.crashes.into()),
        network: Some(cfg.network.name().to_string()),
        ..Settings::default()
    };
    ENTRY.check(&settings, &RunOptions::default()).unwrap()
}

/// Checks the named configuration `name`, as `eo check ack-retry --config NAME`.
fn named(name: &str) -> Report {
    let settings = Settings {
        config: Some(name.into()),
        ..Settings::default()
    };
    ENTRY.check(&settings, &RunOptions::default()).unwrap()
}

fn status(report: &Report, property: &str) -> Status {
    report.property(property).unwrap().status
}

#[test]
fn default_configuration_holds_every_property() {
    let report = check(&AckRetryCfg::default());
    // Pinned: a change that silently shrinks (or grows) the state space shows here.
    // 1 sender, 3 messages, window 2, in flight 2, 1 crash: both windows slide.
    assert_eq!(report.unique_states, 6_504);
    assert_eq!(status(&report, "exactly-once"), Status::Holds);
    assert_eq!(status(&report, "no-loss"), Status::Holds);
    assert_eq!(status(&report, "no-phantom"), Status::Holds);
    assert_eq!(status(&report, "within-window"), Status::Holds);
    assert_eq!(status(&report, "all-delivered"), Status::Found);
    assert_eq!(status(&report, "eventually-delivered"), Status::Holds);
    assert!(report.all_ok());
}

#[test]
fn holds_on_an_ordered_network() {
    let report = check(&AckRetryCfg {
        network: NetworkKind::Ordered,
        ..AckRetryCfg::default()
    });
    assert!(report.all_ok(), "{:?}", report.failed());
    assert_eq!(status(&report, "eventually-delivered"), Status::Holds);
    assert_eq!(status(&report, "all-delivered"), Status::Found);
}

/// A duplicating network never empties by delivery, but loss can empty it: so
/// `progress` is checked there too (the old terminal-state `eventually` could
/// not be).
#[test]
fn holds_on_a_duplicating_network_with_progress_checked() {
    let report = check(&AckRetryCfg {
        network: NetworkKind::UnorderedDup,
        ..AckRetryCfg::default()
    });
    assert!(report.all_ok(), "{:?}", report.failed());
    assert_eq!(status(&report, "exactly-once"), Status::Holds);
    assert_eq!(status(&report, "eventually-delivered"), Status::Holds);
}

#[test]
fn holds_with_two_crashes() {
    let report = check(&AckRetryCfg {
        crashes: 2,
        ..AckRetryCfg::default()
    });
    assert!(report.all_ok(), "{:?}", report.failed());
}

/// Two senders share the receiver: its dedup state is per sender.
#[test]
fn holds_with_two_senders() {
    let report = named("two-senders");
    assert_eq!(report.config["senders"], "2");
    assert!(report.all_ok(), "{:?}", report.failed());
    assert_eq!(report.unique_states, 153_125);
}

/// Checks `variant` in the default configuration (as `eo check` does) and
/// returns the report after asserting that exactly `violated` failed, the
/// expected property among them.
fn caught(variant: Variant, violated: &[&str]) -> Report {
    let report = check(&AckRetryCfg {
        variant,
        ..AckRetryCfg::default()
    });
    let expected = variant.expected_violation().unwrap();
    assert!(violated.contains(&expected));
    assert_eq!(report.failed(), violated, "{}", variant.name());
    assert_eq!(status(&report, expected), Status::Violated);
    let steps = report
        .property(expected)
        .unwrap()
        .counterexample
        .clone()
        .unwrap();
    assert!(!steps.is_empty());
    report
}

fn counterexample(report: &Report, property: &str) -> Vec<String> {
    report
        .property(property)
        .unwrap()
        .counterexample
        .clone()
        .unwrap()
}

#[test]
fn no_dedup_applies_a_retransmission_twice() {
    let r = caught(Variant::NoDedup, &["exactly-once"]);
    let steps = counterexample(&r, "exactly-once");
    let deliveries = |m: &str| steps.iter().filter(|s| s.ends_with(m)).count();
    assert!(
        deliveries("receiver: Data(1)") == 2 || deliveries("receiver: Data(2)") == 2,
        "{steps:?}"
    );
    assert!(steps.contains(&"sender 0: Retry timer fires".to_string()));
}

#[test]
fn volatile_dedup_reapplies_after_a_receiver_crash() {
    // After the crash the receiver's window restarts at 0: a later seq is
    // refused as beyond it, and an applied, acknowledged message can be gone.
    let r = caught(
        Variant::VolatileDedup,
        &["exactly-once", "within-window", "eventually-delivered"],
    );
    assert!(counterexample(&r, "exactly-once").contains(&"receiver crashes".to_string()));
}

#[test]
fn non_atomic_apply_reapplies_after_a_crash_between_its_saves() {
    let r = caught(Variant::NonAtomicApply, &["exactly-once"]);
    assert!(counterexample(&r, "exactly-once").contains(&"receiver crashes".to_string()));
}

#[test]
fn ack_before_persist_loses_an_acknowledged_message() {
    caught(
        Variant::AckBeforePersist,
        &["no-loss", "within-window", "eventually-delivered"],
    );
}

#[test]
fn volatile_outbox_forgets_unacknowledged_messages() {
    let r = caught(
        Variant::VolatileOutbox,
        &["no-loss", "within-window", "eventually-delivered"],
    );
    assert!(counterexample(&r, "no-loss").contains(&"sender 0 crashes".to_string()));
}

#[test]
fn no_retry_never_delivers_a_lost_message() {
    let r = caught(Variant::NoRetry, &["eventually-delivered"]);
    assert_eq!(
        r.property("eventually-delivered").unwrap().expectation,
        "progress"
    );
    assert!(counterexample(&r, "eventually-delivered")
        .iter()
        .any(|s| s.starts_with("network loses")));
}

#[test]
fn send_before_persist_applies_an_unsubmitted_message() {
    let r = caught(Variant::SendBeforePersist, &["no-phantom"]);
    // The receiver applies a message before its sender's submission is durable:
    // no crash is needed for the state to be wrong, only for it to be permanent.
    let steps = counterexample(&r, "no-phantom");
    assert!(steps
        .iter()
        .any(|s| s.starts_with("sender 0 → receiver: Data(")));
    assert!(!steps.contains(&"sender 0: Persist timer fires".to_string()));
}

#[test]
fn high_water_mark_dedup_drops_a_reordered_message() {
    let r = caught(
        Variant::HighWaterMarkDedup,
        &["no-loss", "eventually-delivered"],
    );
    let steps = counterexample(&r, "no-loss");
    // Message 2 overtakes message 1; the acknowledgement of 2 carries the
    // high-water mark 2, and the sender drops message 1, never applied.
    assert!(steps.contains(&"sender 0 → receiver: Data(2)".to_string()));
    assert!(!steps.contains(&"sender 0 → receiver: Data(1)".to_string()));
    assert_eq!(steps.last().unwrap(), "receiver → sender 0: Ack(2, hwm 2)");
}

/// Safe but never finished: once an acknowledgement is lost the duplicate is
/// never acknowledged again, and the sender retransmits forever. Only the
/// `progress` property sees it.
#[test]
fn no_reack_never_settles_and_only_progress_sees_it() {
    let r = caught(Variant::NoReack, &["eventually-delivered"]);
    let p = r.property("eventually-delivered").unwrap();
    assert_eq!(p.expectation, "progress");
    let steps = counterexample(&r, "eventually-delivered");
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("network loses receiver → sender 0: Ack(")),
        "{steps:?}"
    );
    // Pinned: 272 of the 1,300 states can never settle.
    assert!(
        p.note
            .as_ref()
            .unwrap()
            .starts_with("272 of 1300 states cannot reach the goal"),
        "{:?}",
        p.note
    );
    assert_eq!(
        steps,
        [
            "sender 0: Submit timer fires",
            "sender 0: Submit timer fires",
            "sender 0 → receiver: Data(2)",
            "sender 0 → receiver: Data(1)",
            "network loses receiver → sender 0: Ack(1, hwm 2)"
        ]
    );
    // Every terminal state has every message applied: the old terminal-state
    // `eventually` finds nothing.
    let model = AckRetryCfg {
        variant: Variant::NoReack,
        ..AckRetryCfg::default()
    }
    .into_model();
    let old_eventually =
        crate::check::shortest_unmet_eventually(&model, |s| all_applied(&model, s));
    assert!(old_eventually.is_none());
    // …which does find `no-retry`'s dead end.
    let no_retry = AckRetryCfg {
        variant: Variant::NoRetry,
        ..AckRetryCfg::default()
    }
    .into_model();
    assert!(
        crate::check::shortest_unmet_eventually(&no_retry, |s| all_applied(&no_retry, s)).is_some()
    );
    // The same configuration of the correct protocol: no such state.
    let correct = check(&AckRetryCfg {
        ..AckRetryCfg::default()
    });
    assert_eq!(status(&correct, "eventually-delivered"), Status::Holds);
}

/// Kafka's `max.in.flight` above the broker's cache: the sender's newest
/// message lies beyond the receiver's window and is refused. Nothing is lost or
/// applied twice — the receiver refuses rather than forgets — so only the
/// contract property sees it.
#[test]
fn in_flight_beyond_window_sends_beyond_the_receivers_window() {
    let r = caught(Variant::InFlightBeyondWindow, &["within-window"]);
    assert_eq!(
        counterexample(&r, "within-window"),
        [
            "sender 0: Submit timer fires",
            "sender 0: Submit timer fires",
            "sender 0: Submit timer fires",
            "sender 0 → receiver: Data(3)"
        ]
    );
    // The label names the bound the variant's sender runs with.
    assert_eq!(r.config["in-flight"], "3");
}

/// The correct sender with one message in flight more than the window: refused
/// as a configuration, with the variant to run instead.
#[test]
fn in_flight_beyond_window_is_refused_as_a_configuration() {
    let cfg = AckRetryCfg {
        in_flight: 3,
        ..AckRetryCfg::default()
    };
    let err = cfg.validate().unwrap_err().0;
    assert!(err.contains("--in-flight 3 exceeds --window 2"), "{err}");
}

#[test]
fn hwm_past_gap_acknowledges_a_gap_after_recovery() {
    let r = caught(Variant::HwmPastGap, &["no-loss", "eventually-delivered"]);
    let steps = counterexample(&r, "no-loss");
    assert_eq!(
        steps[2..],
        [
            "sender 0 → receiver: Data(2)",
            "receiver crashes",
            "receiver recovers",
            "sender 0 → receiver: Data(1)",
            "receiver → sender 0: Ack(1, hwm 2)"
        ]
    );
}

#[test]
fn volatile_window_reapplies_a_seq_of_the_forgotten_window() {
    let r = caught(Variant::VolatileWindow, &["exactly-once"]);
    let steps = counterexample(&r, "exactly-once");
    assert!(steps.contains(&"receiver crashes".to_string()));
    // The seq applied twice was applied above the high-water mark (out of order).
    let twice = steps
        .iter()
        .filter(|s| *s == "sender 0 → receiver: Data(2)")
        .count();
    assert_eq!(twice, 2, "{steps:?}");
    assert!(!steps.contains(&"sender 0 → receiver: Data(1)".to_string()));
}

#[test]
fn every_bug_variant_has_a_test_config_and_a_distinct_name() {
    let names: std::collections::BTreeSet<_> = Variant::ALL.iter().map(|v| v.name()).collect();
    assert_eq!(names.len(), Variant::ALL.len());
    for v in Variant::ALL {
        assert_eq!(Variant::parse(v.name()), Some(v));
        assert_eq!(v.expected_violation().is_none(), v == Variant::Correct);
    }
}

#[test]
fn bad_configurations_are_one_line_errors() {
    let err = |s: Settings| ENTRY.config(&s).unwrap_err().0;
    assert!(err(Settings {
        senders: Some(0),
        ..Settings::default()
    })
    .contains("--senders 0 is out of range"));
    assert!(err(Settings {
        senders: Some(4),
        messages: Some(4),
        ..Settings::default()
    })
    .contains("too large to check"));
    assert!(err(Settings {
        variant: Some("nope".into()),
        ..Settings::default()
    })
    .contains("no variant 'nope'"));
    assert!(err(Settings {
        participants: Some(3),
        ..Settings::default()
    })
    .contains("does not take --participants"));
    assert!(err(Settings {
        network: Some("lossless".into()),
        ..Settings::default()
    })
    .contains("unknown --network"));
    for e in [
        err(Settings {
            senders: Some(0),
            ..Settings::default()
        }),
        err(Settings {
            network: Some("x".into()),
            ..Settings::default()
        }),
    ] {
        assert!(!e.contains('\n'));
    }
}

/// Every row of the `eo check` table small enough to walk by equality in the
/// test budget: the checker's unique count is the walk's (no state merged by
/// its fingerprint). Stateright's own depth-first checker agrees on two of them.
#[test]
fn checker_counts_equal_a_walk_by_equality() {
    // The one row of 100,000 states and more: checked by `eo check`, too slow
    // to walk.
    const TOO_LARGE: [&str; 1] = ["ack-before-persist"];
    let mut walked = 0;
    for info in ENTRY.info().variants {
        if TOO_LARGE.contains(&info.name) {
            continue;
        }
        let cfg = ENTRY.config(&info.settings).unwrap();
        let report = ENTRY.check(&info.settings, &RunOptions::default()).unwrap();
        // The row as `eo check` runs it catches its bug with its property.
        match info.expected_violation {
            Some(p) => assert_eq!(status(&report, p), Status::Violated, "{}", info.name),
            None => assert!(report.all_ok(), "{}", info.name),
        }
        let walk = crate::walk::count(&cfg.into_model());
        assert_eq!(report.unique_states, walk, "{}", info.name);
        walked += 1;
    }
    assert!(walked >= 12, "{walked} rows walked");
    for variant in ["correct", "no-reack"] {
        let settings = Settings::for_variant(variant);
        let dfs = ENTRY
            .check(
                &settings,
                &RunOptions {
                    search: crate::check::Search::Dfs,
                    threads: 2,
                    progress: None,
                },
            )
            .unwrap();
        let walk = crate::walk::count(&ENTRY.config(&settings).unwrap().into_model());
        assert_eq!(dfs.unique_states, walk, "{variant}");
    }
}

/// Checks `cfg` directly (flags the command line may not give yet).
fn check_cfg(cfg: &AckRetryCfg) -> Report {
    let label = crate::check::RunLabel {
        model: "ack-retry".into(),
        variant: cfg.variant.name().into(),
        config: Default::default(),
        not_checked: Vec::new(),
    };
    crate::check::run(
        cfg.clone().into_model(),
        None,
        label,
        &RunOptions::default(),
    )
    .unwrap()
}

fn disk_loss(variant: Variant) -> AckRetryCfg {
    AckRetryCfg {
        variant,
        disk_losses: 1,
        ..AckRetryCfg::default()
    }
}

/// A sender may lose its disk once: it restarts empty, obtains a new
/// incarnation, and every property holds, `progress` included — for the
/// messages of its current incarnation (the lost outbox's are allowed to be
/// missing, never to be applied twice).
#[test]
fn holds_when_a_sender_loses_its_disk() {
    let report = named("disk-loss");
    assert_eq!(report.config["disk-losses"], "1");
    assert!(report.all_ok(), "{:?}", report.failed());
    assert_eq!(status(&report, "eventually-delivered"), Status::Holds);
    assert_eq!(status(&report, "all-delivered"), Status::Found);
    // 1 sender, 3 messages, window 2, in flight 2, 1 crash, 1 disk loss.
    assert_eq!(report.unique_states, 82_236);
}

/// The disk-loss faults are reachable in the correct protocol: a state with a
/// sender on its second incarnation, and one where the receiver fenced the
/// first (a message of it was answered `Expired`).
#[test]
fn disk_loss_reaches_a_new_incarnation_and_a_fence() {
    use stateright::Model;
    let model = disk_loss(Variant::Correct).into_model();
    let mut seen = std::collections::HashSet::new();
    let mut todo = model.init_states();
    let (mut second_life, mut expired) = (false, false);
    while let Some(s) = todo.pop() {
        if !seen.insert(crate::graph::fingerprint(&s)) {
            continue;
        }
        if let Some(NodeStorage::Sender(st)) = crate::system::storage(&s, 0) {
            second_life |= st.ghost.losses == 1 && st.inc == Some(1);
        }
        expired |= crate::system::in_flight(&s.network)
            .any(|(_, _, m)| matches!(m, Msg::Expired { inc: 0 }));
        let mut actions = Vec::new();
        model.actions(&s, &mut actions);
        todo.extend(actions.into_iter().filter_map(|a| model.next_state(&s, a)));
    }
    assert!(second_life && expired, "{second_life} {expired}");
}

/// The review finding of issue 9: restarting at seq 1 under the old identity
/// loses a new message — here the old seq 1's acknowledgement, still in
/// flight, is taken for the new seq 1's.
#[test]
fn no_epoch_loses_a_new_message_after_a_disk_loss() {
    let report = check_cfg(&disk_loss(Variant::NoEpoch));
    assert_eq!(report.failed(), ["no-loss", "eventually-delivered"]);
    assert_eq!(
        counterexample(&report, "no-loss"),
        [
            "sender 0: Submit timer fires",
            "sender 0 → receiver: Data(1)",
            "sender 0: DiskLoss timer fires",
            "sender 0: Submit timer fires",
            "receiver → sender 0: Ack(1, hwm 1)"
        ]
    );
    // The same variant without disk loss is the correct protocol.
    let without = check_cfg(&AckRetryCfg {
        variant: Variant::NoEpoch,
        ..AckRetryCfg::default()
    });
    assert!(without.all_ok());
}

/// A zombie of the first incarnation — a retransmission still in flight when
/// the disk was lost — arrives after the new incarnation's first message and
/// is applied a second time.
#[test]
fn stale_epoch_accepted_applies_a_zombie_again() {
    let report = check_cfg(&disk_loss(Variant::StaleEpochAccepted));
    assert_eq!(report.failed(), ["exactly-once"]);
    let steps = counterexample(&report, "exactly-once");
    assert_eq!(
        steps[steps.len() - 2..],
        [
            "sender 0 → receiver: Data(1, inc 1, msg 2)",
            "sender 0 → receiver: Data(1)"
        ]
    );
    assert!(steps.contains(&"sender 0: DiskLoss timer fires".to_string()));
}
