//! The syncing log (`LogMode::Sync`, docs/system.md) on the real models: the
//! correct protocols hold every property under it, each syncing-log variant
//! violates exactly its property, and only under `--log sync`.

use crate::ack_retry::{AckRetryCfg, Variant, ENTRY as ACK_RETRY};
use crate::catalog::{ModelEntry, Settings};
use crate::check::{Report, RunOptions, Status};
use crate::system::{LogMode, Step};

fn ack_retry(variant: &str, senders: u32, messages: u32, log: &str) -> Report {
    let settings = Settings {
        variant: Some(variant.into()),
        senders: Some(senders),
        messages: Some(messages),
        log: Some(log.into()),
        ..Settings::default()
    };
    ACK_RETRY.check(&settings, &RunOptions::default()).unwrap()
}

fn status(report: &Report, property: &str) -> Status {
    report.property(property).unwrap().status
}

/// Pinned counts, atomic against sync, on the configurations the tests can
/// afford (docs/system.md has the table with the larger ones).
#[test]
fn ack_retry_holds_every_property_under_a_syncing_log() {
    for (senders, messages, atomic, sync) in [(1, 2, 700, 2_142), (2, 1, 500, 1_624)] {
        let a = ack_retry("correct", senders, messages, "atomic");
        let s = ack_retry("correct", senders, messages, "sync");
        assert!(
            a.all_ok() && s.all_ok(),
            "{:?} {:?}",
            a.failed(),
            s.failed()
        );
        assert_eq!(status(&s, "eventually-delivered"), Status::Holds);
        assert_eq!((a.unique_states, s.unique_states), (atomic, sync));
    }
}

#[test]
fn ack_before_sync_loses_a_message_only_under_a_syncing_log() {
    let report = ack_retry("ack-before-sync", 1, 1, "sync");
    assert_eq!(Variant::AckBeforeSync.expected_violation(), Some("no-loss"));
    assert_eq!(status(&report, "no-loss"), Status::Violated);
    // The acknowledged message is not durable at the receiver: the sender
    // syncs its removal from the outbox, and a receiver crash that keeps
    // nothing then loses it for good, so progress fails too.
    assert_eq!(report.failed(), ["no-loss", "eventually-delivered"]);
    let steps = report
        .property("no-loss")
        .unwrap()
        .counterexample
        .clone()
        .unwrap();
    assert_eq!(
        steps,
        [
            "sender 0: Submit timer fires",
            "sender 0 syncs its log",
            "sender 0 → receiver: Data(1)",
            "receiver → sender 0: Ack(1, hwm 1)",
        ]
    );
    assert!(ack_retry("ack-before-sync", 1, 1, "atomic").all_ok());
}

#[test]
fn torn_apply_applies_twice_only_under_a_syncing_log() {
    let report = ack_retry("torn-apply", 1, 1, "sync");
    assert_eq!(
        Variant::TornApply.expected_violation(),
        Some("exactly-once")
    );
    assert_eq!(report.failed(), ["exactly-once"]);
    let steps = report
        .property("exactly-once")
        .unwrap()
        .counterexample
        .clone()
        .unwrap();
    assert!(
        steps.contains(&"receiver crashes, keeping 1 of 2 unsynced appends".to_owned()),
        "{steps:?}"
    );
    assert!(ack_retry("torn-apply", 1, 1, "atomic").all_ok());
}

/// What a crash keeps: one successor per prefix of the pending appends, and
/// the held sends are gone in each.
#[test]
fn a_crash_keeps_each_prefix_of_the_pending_appends_and_drops_held_sends() {
    let model = AckRetryCfg {
        senders: 1,
        messages: 1,
        variant: Variant::TornApply,
        log: LogMode::Sync,
        ..AckRetryCfg::default()
    }
    .into_model();
    let receiver = 1;
    let mut kept_seen = std::collections::BTreeSet::new();
    crate::walk::walk(&model, |s, step| {
        let Some((action, next)) = step else { return };
        // Sends wait for the sync of what is pending, and only then leave.
        for tail in &next.history.tails {
            assert!(tail.held.is_empty() || !tail.appends.is_empty());
        }
        if let Step::CrashUnsynced {
            actor,
            kept,
            pending,
        } = action
        {
            let tail = &s.history.tails[usize::from(*actor)];
            assert_eq!(usize::from(*pending), tail.appends.len());
            assert!(next.history.tails[usize::from(*actor)].is_empty());
            let expected = match usize::from(*kept) {
                0 => s.actor_storages[usize::from(*actor)].clone(),
                k => Some(tail.appends[k - 1].clone()),
            };
            assert_eq!(next.actor_storages[usize::from(*actor)], expected);
            if usize::from(*actor) == receiver {
                kept_seen.insert((*kept, *pending));
            }
        }
        if let Step::Sync(actor) = action {
            let tail = &s.history.tails[usize::from(*actor)];
            assert_eq!(
                next.actor_storages[usize::from(*actor)].as_ref(),
                tail.appends
                    .last()
                    .or(s.actor_storages[usize::from(*actor)].as_ref())
            );
        }
    });
    // torn-apply's receiver appends two records per application.
    assert!(kept_seen.contains(&(1, 2)), "{kept_seen:?}");
    assert!(kept_seen.contains(&(0, 2)) && kept_seen.contains(&(2, 2)));
}
