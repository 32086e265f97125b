//! `ack-retry` in the catalogue: flags, properties and rows as `eo list` shows
//! them, and the configuration read from the command line.

use super::{
    AckRetryCfg, NetworkKind, Variant, CRASHES_MAX, DISK_LOSSES_MAX, MESSAGES_MAX,
    MESSAGES_TOTAL_MAX, SENDERS_MAX, WINDOW_MAX,
};
use crate::catalog::{
    bounded, ConfigError, ConfigInfo, ConfigScope, FlagInfo, ModelEntry, ModelInfo, PropertyInfo,
    Settings, VariantInfo,
};
use crate::check::{run, Report, RunLabel, RunOptions};
use crate::system::LogMode;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// `ack-retry` in the catalogue.
pub struct AckRetryEntry;

pub static ENTRY: AckRetryEntry = AckRetryEntry;

impl AckRetryEntry {
    /// Reads and validates the configuration from command-line settings.
    pub fn config(&self, settings: &Settings) -> Result<AckRetryCfg, ConfigError> {
        let info = self.info();
        let settings = &info.resolve(settings)?;
        info.refuse_unknown_flags(settings)?;
        let variant = Variant::parse(info.variant(settings)?.name).expect("catalogue names parse");
        let defaults = AckRetryCfg::default();
        let senders = bounded(
            settings.senders,
            "senders",
            defaults.senders.into(),
            1,
            SENDERS_MAX,
        )?;
        let messages = bounded(
            settings.messages,
            "messages",
            variant.default_messages(defaults.messages).into(),
            1,
            MESSAGES_MAX,
        )?;
        if u32::from(senders) * u32::from(messages) > MESSAGES_TOTAL_MAX {
            return Err(ConfigError(format!(
                "--senders {senders} --messages {messages} is too large to check exhaustively \
                 (at most {MESSAGES_TOTAL_MAX} messages in all)"
            )));
        }
        let crashes = bounded(
            settings.crashes,
            "crashes",
            defaults.crashes.into(),
            0,
            CRASHES_MAX,
        )?;
        let window = bounded(
            settings.window,
            "window",
            defaults.window.into(),
            1,
            WINDOW_MAX,
        )?;
        let in_flight = bounded(
            settings.in_flight,
            "in-flight",
            defaults.in_flight.into(),
            1,
            WINDOW_MAX,
        )?;
        // The incarnation variants show only when a disk is lost: their default
        // is one disk loss, so that `--variant no-epoch` alone is caught.
        let disk_losses_default = if variant.needs_disk_loss() { 1 } else { 0 };
        let disk_losses = bounded(
            settings.disk_losses,
            "disk-losses",
            disk_losses_default,
            0,
            DISK_LOSSES_MAX,
        )?;
        let network = match &settings.network {
            Some(n) => NetworkKind::parse(n)?,
            None => defaults.network,
        };
        let log = LogMode::parse(settings.log.as_deref(), variant.default_log())?;
        let cfg = AckRetryCfg {
            senders,
            messages,
            window,
            in_flight,
            disk_losses,
            crashes,
            network,
            variant,
            log,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl ModelEntry for AckRetryEntry {
    fn info(&self) -> ModelInfo {
        let d = AckRetryCfg::default();
        ModelInfo {
            name: "ack-retry",
            about: "at-least-once delivery with a durable, bounded outbox, plus receiver dedup (high-water mark and window) saved atomically with the effect; incarnations after a lost disk",
            flags: vec![
                FlagInfo { name: "senders", default: d.senders.to_string(), help: "number of senders" },
                FlagInfo { name: "messages", default: d.messages.to_string(), help: "messages per sender (2 for ack-before-sync)" },
                FlagInfo { name: "window", default: d.window.to_string(), help: "the receiver's dedup window above its high-water mark, in seqs" },
                FlagInfo { name: "in-flight", default: d.in_flight.to_string(), help: "the most messages a sender has unacknowledged (at most --window)" },
                FlagInfo { name: "crashes", default: d.crashes.to_string(), help: "crashes per behaviour, any actor" },
                FlagInfo { name: "disk-losses", default: d.disk_losses.to_string(), help: "disk losses per sender (1 for no-epoch and stale-epoch-accepted)" },
                FlagInfo { name: "network", default: d.network.name().into(), help: "unordered | unordered-dup | ordered (all lossy)" },
                FlagInfo { name: "log", default: d.log.name().into(), help: "atomic | sync: saves durable at once, or appends durable at a sync (ack-before-sync, torn-apply default to sync)" },
            ],
            properties: vec![
                PropertyInfo { name: "exactly-once", expectation: "always", about: "no message (by its application number) appears twice in the receiver's durable ledger" },
                PropertyInfo { name: "no-loss", expectation: "always", about: "a message of its current incarnation that a sender stopped retrying is in the receiver's durable ledger" },
                PropertyInfo { name: "no-phantom", expectation: "always", about: "only durably submitted messages are applied" },
                PropertyInfo { name: "within-window", expectation: "always", about: "the receiver never refused a message beyond its window" },
                PropertyInfo { name: "all-delivered", expectation: "sometimes", about: "a state with every message applied is reachable" },
                PropertyInfo { name: "eventually-delivered", expectation: "progress", about: "from every state, a state at rest with every message submitted and every message of the current incarnations applied is reachable" },
            ],
            variants: Variant::ALL
                .into_iter()
                .map(|v| VariantInfo::of(v.name(), v.expected_violation(), v.about()))
                .collect(),
            configs: vec![
                ConfigInfo {
                    name: "sync-log",
                    about: "the correct protocol under a syncing log",
                    scope: ConfigScope::Table,
                    settings: Settings {
                        log: Some("sync".into()),
                        ..Settings::default()
                    },
                },
                ConfigInfo {
                    name: "two-crashes",
                    about: "two crashes per behaviour on an ordered network",
                    scope: ConfigScope::Deep,
                    settings: Settings {
                        crashes: Some(2),
                        network: Some("ordered".into()),
                        ..Settings::default()
                    },
                },
                ConfigInfo {
                    name: "two-senders",
                    about: "two senders of two messages each share the receiver's per-sender dedup state",
                    scope: ConfigScope::Table,
                    settings: Settings {
                        senders: Some(2),
                        messages: Some(2),
                        ..Settings::default()
                    },
                },
                ConfigInfo {
                    name: "disk-loss",
                    about: "a sender may lose its disk once: a new incarnation, the old one fenced",
                    scope: ConfigScope::Table,
                    settings: Settings {
                        disk_losses: Some(1),
                        ..Settings::default()
                    },
                },
                ConfigInfo {
                    name: "wide-window",
                    about: "four messages through a window of three: a gap inside the window",
                    scope: ConfigScope::Deep,
                    settings: Settings {
                        messages: Some(4),
                        window: Some(3),
                        in_flight: Some(3),
                        ..Settings::default()
                    },
                },
            ],
        }
    }

    fn check(&self, settings: &Settings, opts: &RunOptions) -> Result<Report, ConfigError> {
        let cfg = self.config(settings)?;
        let label = RunLabel {
            model: "ack-retry".into(),
            variant: cfg.variant.name().into(),
            config: BTreeMap::from([
                ("senders".to_string(), cfg.senders.to_string()),
                ("messages".to_string(), cfg.messages.to_string()),
                ("window".to_string(), cfg.window.to_string()),
                ("in-flight".to_string(), cfg.sender_in_flight().to_string()),
                ("crashes".to_string(), cfg.crashes.to_string()),
                ("disk-losses".to_string(), cfg.disk_losses.to_string()),
                ("network".to_string(), cfg.network.name().to_string()),
                ("log".to_string(), cfg.log.name().to_string()),
            ]),
            not_checked: Vec::new(),
        };
        run(cfg.into_model(), None, label, opts).map_err(|e| ConfigError(e.to_string()))
    }

    fn explore(&self, settings: &Settings, address: SocketAddr) -> Result<(), ConfigError> {
        let cfg = self.config(settings)?;
        crate::catalog::serve(cfg.into_model(), None, address)
    }
}
