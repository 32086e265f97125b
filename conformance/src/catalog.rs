//! The implementation's cores in the catalogue: `eo check impl-ack-retry`,
//! `eo check impl-two-phase-commit` and `eo list` show them beside the models.
//!
//! [`all`] is every entry `eo` knows: the models' own (`eo_models::catalog::all`)
//! followed by the adapted cores of [`crate::actors`].

use crate::actors::ack_retry::{
    ImplAckRetryCfg, CRASHES_MAX, DISK_LOSSES_MAX, IN_FLIGHT_MAX, MESSAGES_MAX, MESSAGES_TOTAL_MAX,
    SENDERS_MAX,
};
use crate::actors::two_phase_commit::{self as tpc, ImplTwoPhaseCfg};
use eo_models::ack_retry::NetworkKind;
use eo_models::catalog::{
    self, bounded, ConfigError, ConfigInfo, ConfigScope, FlagInfo, ModelEntry, ModelInfo,
    PropertyInfo, Settings, VariantInfo,
};
use eo_models::check::{run, Report, RunLabel, RunOptions};
use eo_models::system::LogMode;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Every model and every adapted implementation, in the order `eo list` and
/// `eo check` show them.
pub fn all() -> Vec<&'static dyn ModelEntry> {
    let mut all = catalog::all();
    all.push(&IMPL_ACK_RETRY);
    all.push(&IMPL_TWO_PHASE_COMMIT);
    all
}

/// The entry called `name`.
pub fn find(name: &str) -> Result<&'static dyn ModelEntry, ConfigError> {
    all()
        .into_iter()
        .find(|m| m.info().name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = all().iter().map(|m| m.info().name).collect();
            ConfigError(format!("no model '{name}' (models: {})", known.join(", ")))
        })
}

/// `impl-ack-retry`: `eo_impl::ack_retry`'s cores in the ack-retry model's system.
pub struct ImplAckRetryEntry;

pub static IMPL_ACK_RETRY: ImplAckRetryEntry = ImplAckRetryEntry;

impl ImplAckRetryEntry {
    /// Reads and bounds the configuration from command-line settings.
    pub fn config(&self, settings: &Settings) -> Result<ImplAckRetryCfg, ConfigError> {
        let info = self.info();
        let settings = &info.resolve(settings)?;
        info.refuse_unknown_flags(settings)?;
        info.variant(settings)?;
        let d = ImplAckRetryCfg::default();
        let senders = bounded(
            settings.senders,
            "senders",
            d.senders.into(),
            1,
            SENDERS_MAX,
        )?;
        let messages = bounded(
            settings.messages,
            "messages",
            d.messages.into(),
            1,
            MESSAGES_MAX,
        )?;
        if u32::from(senders) * u32::from(messages) > MESSAGES_TOTAL_MAX {
            return Err(ConfigError(format!(
                "--senders {senders} --messages {messages} is too large to check exhaustively \
                 (at most {MESSAGES_TOTAL_MAX} messages in all)"
            )));
        }
        let in_flight = bounded(
            settings.in_flight,
            "in-flight",
            d.in_flight.into(),
            1,
            IN_FLIGHT_MAX,
        )?;
        let crashes = bounded(
            settings.crashes,
            "crashes",
            d.crashes.into(),
            0,
            CRASHES_MAX,
        )?;
        let disk_losses = bounded(
            settings.disk_losses,
            "disk-losses",
            d.disk_losses.into(),
            0,
            DISK_LOSSES_MAX,
        )?;
        let network = match &settings.network {
            Some(n) => NetworkKind::parse(n)?,
            None => d.network,
        };
        let log = LogMode::parse(settings.log.as_deref(), d.log)?;
        Ok(ImplAckRetryCfg {
            senders,
            messages,
            in_flight,
            crashes,
            disk_losses,
            network,
            log,
            ..d
        })
    }
}

impl ModelEntry for ImplAckRetryEntry {
    fn info(&self) -> ModelInfo {
        let d = ImplAckRetryCfg::default();
        ModelInfo {
            name: "impl-ack-retry",
            about: "the implementation's ack-retry cores (eo_impl::ack_retry Sender, Receiver) run as actors in the model's system, held to the model's properties",
            flags: vec![
                FlagInfo { name: "senders", default: d.senders.to_string(), help: "number of senders" },
                FlagInfo { name: "messages", default: d.messages.to_string(), help: "messages per sender" },
                FlagInfo { name: "in-flight", default: d.in_flight.to_string(), help: "the most messages a sender's application keeps unacknowledged (the cores' window is their constant WINDOW_MAX)" },
                FlagInfo { name: "crashes", default: d.crashes.to_string(), help: "crashes per behaviour, any actor" },
                FlagInfo { name: "disk-losses", default: d.disk_losses.to_string(), help: "disk losses per sender" },
                FlagInfo { name: "network", default: d.network.name().into(), help: "unordered | unordered-dup | ordered (all lossy)" },
                FlagInfo { name: "log", default: d.log.name().into(), help: "atomic | sync: a step's records durable at once, or appended and durable at a sync (sends wait for it)" },
            ],
            properties: vec![
                PropertyInfo { name: "exactly-once", expectation: "always", about: "no message appears twice among the receiver's durable Applied records" },
                PropertyInfo { name: "no-loss", expectation: "always", about: "a durably submitted message of the current incarnation that its sender no longer retries is durably applied" },
                PropertyInfo { name: "no-phantom", expectation: "always", about: "only messages the application handed over are applied" },
                PropertyInfo { name: "within-window", expectation: "always", about: "the receiver core never refused a message beyond its window (SeqBeyondWindow)" },
                PropertyInfo { name: "recovers", expectation: "always", about: "every core's recover accepts the log it wrote" },
                PropertyInfo { name: "all-delivered", expectation: "sometimes", about: "a state with every message applied is reachable" },
                PropertyInfo { name: "eventually-delivered", expectation: "progress", about: "from every state, a state at rest with every message handed over and every message of the current incarnations applied is reachable" },
                PropertyInfo { name: "refinement", expectation: "always", about: "every step of the cores' system, abstracted, is a step of the ack-retry model's system (window = in-flight) or a stutter" },
            ],
            variants: vec![VariantInfo::of("correct", None, "the cores as they are")],
            configs: vec![
                ConfigInfo {
                    name: "sync-log",
                    about: "a syncing log (two messages): records durable only at a sync, sends held until then, a crash keeps a prefix",
                    scope: ConfigScope::Table,
                    settings: Settings { log: Some("sync".into()), messages: Some(2), ..Settings::default() },
                },
                ConfigInfo {
                    name: "disk-loss",
                    about: "a sender may lose its disk once (two messages): a new incarnation through the protocol",
                    scope: ConfigScope::Table,
                    settings: Settings { disk_losses: Some(1), messages: Some(2), ..Settings::default() },
                },
                ConfigInfo {
                    name: "sync-log-three",
                    about: "a syncing log with three messages",
                    scope: ConfigScope::Deep,
                    settings: Settings { log: Some("sync".into()), ..Settings::default() },
                },
            ],
        }
    }

    fn check(&self, settings: &Settings, opts: &RunOptions) -> Result<Report, ConfigError> {
        let cfg = self.config(settings)?;
        let label = RunLabel {
            model: "impl-ack-retry".into(),
            variant: "correct".into(),
            config: BTreeMap::from([
                ("senders".to_string(), cfg.senders.to_string()),
                ("messages".to_string(), cfg.messages.to_string()),
                ("in-flight".to_string(), cfg.in_flight.to_string()),
                ("crashes".to_string(), cfg.crashes.to_string()),
                ("disk-losses".to_string(), cfg.disk_losses.to_string()),
                ("network".to_string(), cfg.network.name().to_string()),
                ("log".to_string(), cfg.log.name().to_string()),
            ]),
            not_checked: Vec::new(),
        };
        let mut report = run(cfg.clone().into_model(), None, label, opts)
            .map_err(|e| ConfigError(e.to_string()))?;
        // Refinement: every step of the cores' system a model step or a stutter.
        let refinement = crate::refinement::ack_retry::check(&cfg);
        report
            .properties
            .push(crate::refinement::property_report(&refinement));
        Ok(report)
    }

    fn explore(&self, settings: &Settings, address: SocketAddr) -> Result<(), ConfigError> {
        let cfg = self.config(settings)?;
        catalog::serve(cfg.into_model(), None, address)
    }
}

/// `impl-two-phase-commit`: `eo_impl::two_phase_commit`'s cores in the
/// two-phase-commit model's system.
pub struct ImplTwoPhaseCommitEntry;

pub static IMPL_TWO_PHASE_COMMIT: ImplTwoPhaseCommitEntry = ImplTwoPhaseCommitEntry;

impl ImplTwoPhaseCommitEntry {
    /// Reads and bounds the configuration from command-line settings.
    pub fn config(&self, settings: &Settings) -> Result<ImplTwoPhaseCfg, ConfigError> {
        let info = self.info();
        let settings = &info.resolve(settings)?;
        info.refuse_unknown_flags(settings)?;
        info.variant(settings)?;
        let d = ImplTwoPhaseCfg::default();
        let participants = bounded(
            settings.participants,
            "participants",
            d.participants.into(),
            tpc::PARTICIPANTS_MIN,
            tpc::PARTICIPANTS_MAX,
        )?;
        let transactions = bounded(
            settings.transactions,
            "transactions",
            d.transactions.into(),
            1,
            tpc::TRANSACTIONS_MAX,
        )?;
        let in_flight = bounded(
            settings.in_flight,
            "in-flight",
            d.in_flight.into(),
            1,
            tpc::IN_FLIGHT_MAX,
        )?;
        if in_flight > transactions {
            return Err(ConfigError(format!(
                "--in-flight {in_flight} exceeds --transactions {transactions}: the client has no more to run"
            )));
        }
        let crashes = bounded(
            settings.crashes,
            "crashes",
            d.crashes.into(),
            0,
            tpc::CRASHES_MAX,
        )?;
        let log = LogMode::parse(settings.log.as_deref(), d.log)?;
        Ok(ImplTwoPhaseCfg {
            participants,
            transactions,
            in_flight,
            crashes,
            log,
            ..d
        })
    }
}

impl ModelEntry for ImplTwoPhaseCommitEntry {
    fn info(&self) -> ModelInfo {
        let d = ImplTwoPhaseCfg::default();
        let model = catalog::find("two-phase-commit")
            .map(|m| m.info().properties)
            .unwrap_or_default();
        let mut properties: Vec<PropertyInfo> = model
            .into_iter()
            .filter(|p| {
                !tpc::properties::NOT_CHECKED
                    .iter()
                    .any(|(n, _, _)| *n == p.name)
            })
            .collect();
        properties.insert(
            4,
            PropertyInfo {
                name: "recovers",
                expectation: "always",
                about: "every core's recover accepts the log it wrote",
            },
        );
        ModelInfo {
            name: "impl-two-phase-commit",
            about: "the implementation's 2PC cores (eo_impl::two_phase_commit Client, Coordinator, Participant) run as actors in the model's system, held to the model's properties",
            flags: vec![
                FlagInfo { name: "participants", default: d.participants.to_string(), help: "participants (2 or 3)" },
                FlagInfo { name: "transactions", default: d.transactions.to_string(), help: "transactions the client's application runs (1 or 2)" },
                FlagInfo { name: "in-flight", default: d.in_flight.to_string(), help: "transactions pending at once (1 or 2, at most --transactions)" },
                FlagInfo { name: "crashes", default: d.crashes.to_string(), help: "crashes per behaviour, any actor (0 to 2)" },
                FlagInfo { name: "log", default: d.log.name().into(), help: "atomic | sync: a step's records durable at once, or appended and durable at a sync (sends wait for it)" },
            ],
            properties,
            variants: vec![VariantInfo::of("correct", None, "the cores as they are")],
            configs: vec![
                ConfigInfo {
                    name: "sync-log",
                    about: "a syncing log: records durable only at a sync, sends held until then, a crash keeps a prefix (177 k states)",
                    scope: ConfigScope::Deep,
                    settings: Settings { log: Some("sync".into()), ..Settings::default() },
                },
            ],
        }
    }

    fn check(&self, settings: &Settings, opts: &RunOptions) -> Result<Report, ConfigError> {
        let cfg = self.config(settings)?;
        let label = RunLabel {
            model: "impl-two-phase-commit".into(),
            variant: "correct".into(),
            config: BTreeMap::from([
                ("participants".to_string(), cfg.participants.to_string()),
                ("transactions".to_string(), cfg.transactions.to_string()),
                ("in-flight".to_string(), cfg.in_flight.to_string()),
                ("crashes".to_string(), cfg.crashes.to_string()),
                ("log".to_string(), cfg.log.name().to_string()),
            ]),
            not_checked: tpc::properties::NOT_CHECKED
                .iter()
                .map(|(n, e, why)| (*n, *e, why.to_string()))
                .collect(),
        };
        run(cfg.into_model(), None, label, opts).map_err(|e| ConfigError(e.to_string()))
    }

    fn explore(&self, settings: &Settings, address: SocketAddr) -> Result<(), ConfigError> {
        let cfg = self.config(settings)?;
        catalog::serve(cfg.into_model(), None, address)
    }
}
