//! `two-phase-commit` in the catalogue: its flags, properties and rows, and
//! how a command line's settings become a configuration.

use super::{
    representative, State, TwoPhaseCfg, TwoPhaseCommit, Variant, BUG_PARTICIPANTS, CRASHES_MAX,
    IN_FLIGHT_MAX, PARTICIPANTS_MAX, TRANSACTIONS_MAX,
};
use crate::catalog::{
    bounded, ConfigError, ConfigInfo, ConfigScope, FlagInfo, ModelEntry, ModelInfo, PropertyInfo,
    Settings, VariantInfo, VariantKind,
};
use crate::check::{run, Report, RunLabel, RunOptions};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// `two-phase-commit` in the catalogue.
pub struct TwoPhaseCommitEntry;

pub static ENTRY: TwoPhaseCommitEntry = TwoPhaseCommitEntry;

impl TwoPhaseCommitEntry {
    /// Reads and validates the configuration; returns it and whether to reduce
    /// by symmetry.
    pub fn config(&self, settings: &Settings) -> Result<(TwoPhaseCfg, bool), ConfigError> {
        let info = self.info();
        let settings = &info.resolve(settings)?;
        info.refuse_unknown_flags(settings)?;
        let variant = Variant::parse(info.variant(settings)?.name).expect("catalogue names parse");
        let d = variant.defaults();
        let participants = bounded(
            settings.participants,
            "participants",
            d.participants.into(),
            1,
            PARTICIPANTS_MAX,
        )?;
        let transactions = bounded(
            settings.transactions,
            "transactions",
            d.transactions.into(),
            1,
            TRANSACTIONS_MAX,
        )?;
        let crashes = bounded(
            settings.crashes,
            "crashes",
            d.crashes.into(),
            0,
            CRASHES_MAX,
        )?;
        let in_flight = bounded(
            settings.in_flight,
            "in-flight",
            d.in_flight.into(),
            1,
            IN_FLIGHT_MAX,
        )?;
        if in_flight > transactions {
            return Err(ConfigError(format!(
                "--in-flight {in_flight} exceeds --transactions {transactions}: the client has no more to run"
            )));
        }
        let log = crate::system::LogMode::parse(settings.log.as_deref(), variant.default_log())?;
        if settings.symmetry && log == crate::system::LogMode::Sync {
            return Err(ConfigError(
                "--symmetry does not permute the syncing log's tails yet: drop --symmetry or --log sync"
                    .into(),
            ));
        }
        if settings.coordinator_never_recovers && crashes == 0 {
            return Err(ConfigError(
                "--coordinator-never-recovers needs a crash: drop --crashes 0".into(),
            ));
        }
        Ok((
            TwoPhaseCfg {
                participants,
                transactions,
                crashes,
                coordinator_never_recovers: settings.coordinator_never_recovers,
                in_flight,
                balance_max: TwoPhaseCfg::balance_max_for(in_flight),
                variant,
                log,
                network: super::TwoPhaseNetwork::parse(settings.network.as_deref())?,
            },
            settings.symmetry,
        ))
    }
}

impl ModelEntry for TwoPhaseCommitEntry {
    fn info(&self) -> ModelInfo {
        let d = TwoPhaseCfg::default();
        // Each row runs its variant's defaults (see `Variant::defaults`).
        let mut variants: Vec<VariantInfo> = Variant::ALL
            .into_iter()
            .map(|v| VariantInfo::of(v.name(), v.expected_violation(), v.about()))
            .collect();
        variants.push(VariantInfo {
            name: "coordinator-never-recovers",
            kind: VariantKind::Limitation,
            expected_violation: Some("eventually-decided"),
            about: "2PC blocks: prepared participants wait forever for a coordinator that never recovers",
            settings: Settings {
                participants: Some(BUG_PARTICIPANTS.into()),
                coordinator_never_recovers: true,
                ..Settings::default()
            },
            deep: false,
        });
        // vote-before-sync's row takes about two minutes: `--deep` only.
        for v in &mut variants {
            v.deep = v.name == Variant::VoteBeforeSync.name();
        }
        ModelInfo {
            name: "two-phase-commit",
            about: "2PC with crash recovery, presumed abort and client retries, refining TwoPhase",
            flags: vec![
                FlagInfo { name: "participants", default: d.participants.to_string(), help: "participants (1 to 5; a bug variant defaults to 2, retry-as-new-transaction to 1)" },
                FlagInfo { name: "transactions", default: d.transactions.to_string(), help: "transactions the client runs (1 or 2; untagged-decision and vote-ignores-staged default to 2)" },
                FlagInfo { name: "in-flight", default: d.in_flight.to_string(), help: "transactions in flight at once (1 or 2, at most --transactions; with 2 every balance is bounded by 1; vote-ignores-staged defaults to 2)" },
                FlagInfo { name: "crashes", default: d.crashes.to_string(), help: "crashes per behaviour, any actor (0 to 2; untagged-decision defaults to 0)" },
                FlagInfo { name: "symmetry", default: "off".into(), help: "reduce by symmetry over participants" },
                FlagInfo { name: "network", default: "lossy".into(), help: "lossy | duplicating: unordered and lossy, each copy delivered once (retransmission duplicates); or unordered, never losing, every message deliverable again and again" },
                FlagInfo { name: "log", default: "atomic".into(), help: "atomic | sync: saves durable at once, or appends durable at a sync (vote-before-sync defaults to sync)" },
                FlagInfo { name: "coordinator-never-recovers", default: "off".into(), help: "the coordinator may crash and never recovers (2PC blocks)" },
            ],
            properties: vec![
                PropertyInfo { name: "atomicity", expectation: "always", about: "no transaction committed at one participant and aborted at another" },
                PropertyInfo { name: "exactly-once", expectation: "always", about: "no participant's durable ledger holds a transaction's effect twice" },
                PropertyInfo { name: "balance-bound", expectation: "always", about: "with a balance bound (two in flight), no participant's balance exceeds it" },
                PropertyInfo { name: "validity", expectation: "always", about: "a transaction commits only if every participant voted yes" },
                PropertyInfo { name: "client-agreement", expectation: "always", about: "no participant decided against the outcome the client learned" },
                PropertyInfo { name: "commit-possible", expectation: "sometimes", about: "everyone reaches commit" },
                PropertyInfo { name: "abort-possible", expectation: "sometimes", about: "everyone reaches abort" },
                PropertyInfo { name: "eventually-decided", expectation: "progress", about: "from every state, a state at rest with every participant and the client holding every outcome is reachable" },
            ],
            variants,
            configs: vec![
                ConfigInfo {
                    name: "sync-log",
                    about: "the correct protocol under a syncing log, two participants (115 k states)",
                    scope: ConfigScope::Deep,
                    settings: Settings {
                        log: Some("sync".into()),
                        participants: Some(2),
                        ..Settings::default()
                    },
                },
                ConfigInfo {
                    name: "two-transactions",
                    about: "two participants, two transactions one after another",
                    scope: ConfigScope::Deep,
                    settings: Settings {
                        participants: Some(2),
                        transactions: Some(2),
                        ..Settings::default()
                    },
                },
                ConfigInfo {
                    name: "concurrent",
                    about: "two transactions in flight at once, one crash, one participant, lossy network (398 k states)",
                    scope: ConfigScope::Deep,
                    settings: Settings {
                        participants: Some(1),
                        transactions: Some(2),
                        in_flight: Some(2),
                        crashes: Some(1),
                        ..Settings::default()
                    },
                },
                ConfigInfo {
                    name: "concurrent-two-participants",
                    about: "two participants, two transactions in flight at once, two crashes, symmetry, on a duplicating network: loss left out (every message sent stays deliverable), so eventually-decided assumes no message is lost for good (321 k orbits)",
                    scope: ConfigScope::Deep,
                    settings: Settings {
                        participants: Some(2),
                        transactions: Some(2),
                        in_flight: Some(2),
                        crashes: Some(2),
                        network: Some("duplicating".into()),
                        symmetry: true,
                        ..Settings::default()
                    },
                },
            ],
        }
    }

    fn check(&self, settings: &Settings, opts: &RunOptions) -> Result<Report, ConfigError> {
        let (cfg, symmetry) = self.config(settings)?;
        check_cfg(cfg, symmetry, opts)
    }

    fn explore(&self, settings: &Settings, address: SocketAddr) -> Result<(), ConfigError> {
        let (cfg, symmetry) = self.config(settings)?;
        let reduce: Option<crate::check::Representative<TwoPhaseCommit>> =
            symmetry.then_some(representative as fn(&State) -> State);
        crate::catalog::serve(cfg.into_model(), reduce, address)
    }
}

/// Checks one configuration, reduced by symmetry over participants if asked.
pub fn check_cfg(
    cfg: TwoPhaseCfg,
    symmetry: bool,
    opts: &RunOptions,
) -> Result<Report, ConfigError> {
    let label = RunLabel {
        model: "two-phase-commit".into(),
        variant: cfg.variant.name().into(),
        config: BTreeMap::from([
            ("participants".to_string(), cfg.participants.to_string()),
            ("transactions".to_string(), cfg.transactions.to_string()),
            ("in-flight".to_string(), cfg.in_flight.to_string()),
            (
                "balance-max".to_string(),
                cfg.balance_max
                    .map_or_else(|| "none".to_string(), |b| b.to_string()),
            ),
            ("crashes".to_string(), cfg.crashes.to_string()),
            (
                "coordinator-recovers".to_string(),
                (!cfg.coordinator_never_recovers).to_string(),
            ),
            ("log".to_string(), cfg.log.name().to_string()),
            ("network".to_string(), cfg.network.name().to_string()),
            (
                "symmetry".to_string(),
                if symmetry { "on" } else { "off" }.to_string(),
            ),
        ]),
        not_checked: Vec::new(),
    };
    let reduce: Option<crate::check::Representative<TwoPhaseCommit>> =
        symmetry.then_some(representative as fn(&State) -> State);
    run(cfg.into_model(), reduce, label, opts).map_err(|e| ConfigError(e.to_string()))
}
