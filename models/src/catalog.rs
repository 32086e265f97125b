//! The catalogue of models: what `eo list` shows and what `eo check` and
//! `eo explore` run. Every model registers one [`ModelEntry`] in [`all`].

use crate::check::{Report, RunOptions};
use serde::Serialize;
use std::fmt;
use std::net::SocketAddr;

/// A configuration the user cannot check: a one-line reason, shown as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The settings a user may give on the command line. A model reads the ones it
/// declares in [`ModelInfo::flags`] and refuses the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Settings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// A named configuration of the model ([`ModelInfo::configs`]): its
    /// settings apply wherever a flag is not given (see [`ModelInfo::resolve`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub senders: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crashes: Option<u32>,
    /// `--disk-losses`: how many times per behaviour an actor may lose its
    /// storage and restart empty (see `System::disk_loss_budget`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_losses: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `--log atomic|sync`: how a step's save becomes durable (see
    /// `system::LogMode`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// `--window`: the receiver's dedup window, in sequence numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
    /// `--in-flight`: the most messages a sender has unacknowledged at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u32>,
    /// `--submissions`: how many submissions arrive while the system runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submissions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participants: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub symmetry: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub coordinator_never_recovers: bool,
}

impl Settings {
    /// The flags given, by name (without the leading dashes).
    pub fn given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        let options = [
            ("senders", self.senders.is_some()),
            ("messages", self.messages.is_some()),
            ("crashes", self.crashes.is_some()),
            ("disk-losses", self.disk_losses.is_some()),
            ("network", self.network.is_some()),
            ("log", self.log.is_some()),
            ("window", self.window.is_some()),
            ("in-flight", self.in_flight.is_some()),
            ("submissions", self.submissions.is_some()),
            ("participants", self.participants.is_some()),
            ("transactions", self.transactions.is_some()),
            ("symmetry", self.symmetry),
            (
                "coordinator-never-recovers",
                self.coordinator_never_recovers,
            ),
        ];
        for (name, is_given) in options {
            if is_given {
                given.push(name);
            }
        }
        given
    }

    /// These settings, with every flag not given here taken from `under`
    /// (a named configuration's settings). The variant and the configuration
    /// name stay as given here.
    pub fn over(&self, under: &Settings) -> Settings {
        Settings {
            variant: self.variant.clone(),
            config: self.config.clone(),
            senders: self.senders.or(under.senders),
            messages: self.messages.or(under.messages),
            crashes: self.crashes.or(under.crashes),
            disk_losses: self.disk_losses.or(under.disk_losses),
            network: self.network.clone().or_else(|| under.network.clone()),
            log: self.log.clone().or_else(|| under.log.clone()),
            window: self.window.or(under.window),
            in_flight: self.in_flight.or(under.in_flight),
            submissions: self.submissions.or(under.submissions),
            participants: self.participants.or(under.participants),
            transactions: self.transactions.or(under.transactions),
            symmetry: self.symmetry || under.symmetry,
            coordinator_never_recovers: self.coordinator_never_recovers
                || under.coordinator_never_recovers,
        }
    }

    /// The settings for one row of a model's table: this variant, defaults for
    /// everything else.
    pub fn for_variant(variant: &str) -> Settings {
        Settings {
            variant: Some(variant.to_string()),
            ..Settings::default()
        }
    }
}

/// A configuration flag of a model.
#[derive(Clone, Debug, Serialize)]
pub struct FlagInfo {
    /// The flag without dashes, e.g. `senders`.
    pub name: &'static str,
    /// Its default, as the user would type it.
    pub default: String,
    pub help: &'static str,
}

/// What a row of the table is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VariantKind {
    /// The correct protocol: every property must meet its expectation.
    Correct,
    /// A bug: the named property must be violated.
    Bug,
    /// A documented limitation of the correct protocol: the named property fails
    /// by design in this configuration.
    Limitation,
}

/// A variant of a model: the correct protocol, a bug, or a limitation.
#[derive(Clone, Debug, Serialize)]
pub struct VariantInfo {
    pub name: &'static str,
    pub kind: VariantKind,
    /// The property a bug or limitation must violate; `None` for `correct`.
    pub expected_violation: Option<&'static str>,
    /// What is wrong, in one sentence.
    pub about: &'static str,
    /// The settings that select this row (`--variant` or a flag).
    #[serde(skip)]
    pub settings: Settings,
    /// Too slow for the default table: checked only by `eo check --deep`
    /// (and by name).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deep: bool,
}

impl VariantInfo {
    /// The row of a `--variant`: `correct` when it expects no violation, a bug
    /// otherwise, checked with the model's defaults.
    pub fn of(
        name: &'static str,
        expected_violation: Option<&'static str>,
        about: &'static str,
    ) -> VariantInfo {
        VariantInfo {
            name,
            kind: if expected_violation.is_some() {
                VariantKind::Bug
            } else {
                VariantKind::Correct
            },
            expected_violation,
            about,
            settings: Settings::for_variant(name),
            deep: false,
        }
    }
}

/// Where a named configuration is checked by `eo check` without a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigScope {
    /// A row of the default table.
    Table,
    /// Only with `eo check --deep` (too large or too slow for the table).
    Deep,
}

/// A named configuration of a model: a set of flags under one name, checked
/// with the correct protocol (every property must hold). `eo check MODEL
/// --config NAME` runs it (with any variant); `eo check` runs it as a row when
/// it is in the table, `eo check --deep` runs it in either case.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigInfo {
    pub name: &'static str,
    /// What it checks, in one sentence.
    pub about: &'static str,
    pub scope: ConfigScope,
    /// The flags it sets (no variant, no configuration name).
    pub settings: Settings,
}

/// A property as `eo list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PropertyInfo {
    pub name: &'static str,
    pub expectation: &'static str,
    pub about: &'static str,
}

/// What `eo list` says about a model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub name: &'static str,
    pub about: &'static str,
    pub flags: Vec<FlagInfo>,
    pub properties: Vec<PropertyInfo>,
    pub variants: Vec<VariantInfo>,
    /// Its named configurations (`--config NAME`), in the order `eo list`
    /// shows them.
    pub configs: Vec<ConfigInfo>,
}

impl ModelInfo {
    /// The settings a check runs: `settings` over the named configuration it
    /// selects, if any (a flag given explicitly wins over the configuration's
    /// value). An unknown configuration name is refused, naming the known ones.
    pub fn resolve(&self, settings: &Settings) -> Result<Settings, ConfigError> {
        let Some(name) = settings.config.as_deref() else {
            return Ok(settings.clone());
        };
        let config = self
            .configs
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.configs.iter().map(|c| c.name).collect();
                ConfigError(format!(
                    "{} has no configuration '{name}' (configurations: {})",
                    self.name,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
        Ok(settings.over(&config.settings))
    }

    /// Refuses flags this model does not take, naming the ones it does.
    pub fn refuse_unknown_flags(&self, settings: &Settings) -> Result<(), ConfigError> {
        for given in settings.given() {
            if !self.flags.iter().any(|f| f.name == given) {
                let known: Vec<String> =
                    self.flags.iter().map(|f| format!("--{}", f.name)).collect();
                return Err(ConfigError(format!(
                    "{} does not take --{given} (its flags: {})",
                    self.name,
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Finds the variant named in `settings` (or `correct`).
    pub fn variant(&self, settings: &Settings) -> Result<&VariantInfo, ConfigError> {
        let name = settings.variant.as_deref().unwrap_or("correct");
        self.variants
            .iter()
            .find(|v| v.name == name && v.settings.variant.is_some())
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .variants
                    .iter()
                    .filter(|v| v.settings.variant.is_some())
                    .map(|v| v.name)
                    .collect();
                ConfigError(format!(
                    "{} has no variant '{name}' (variants: {})",
                    self.name,
                    known.join(", ")
                ))
            })
    }
}

/// One model, as the command line drives it.
pub trait ModelEntry: Sync {
    fn info(&self) -> ModelInfo;

    /// Checks the configuration in `settings` and reports every property.
    fn check(&self, settings: &Settings, opts: &RunOptions) -> Result<Report, ConfigError>;

    /// Serves the Stateright Explorer for the configuration on `address`. Blocks
    /// while serving; returns an error if the configuration or the address is bad.
    fn explore(&self, settings: &Settings, address: SocketAddr) -> Result<(), ConfigError>;
}

/// Every model, in the order `eo list` and `eo check` show them.
pub fn all() -> Vec<&'static dyn ModelEntry> {
    vec![
        &crate::ack_retry::ENTRY,
        &crate::two_phase_spec::ENTRY,
        &crate::two_phase_commit::ENTRY,
    ]
}

/// The model called `name`.
pub fn find(name: &str) -> Result<&'static dyn ModelEntry, ConfigError> {
    all()
        .into_iter()
        .find(|m| m.info().name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = all().iter().map(|m| m.info().name).collect();
            ConfigError(format!("no model '{name}' (models: {})", known.join(", ")))
        })
}

/// Reads a numeric setting with its default and an inclusive range.
pub fn bounded(
    value: Option<u32>,
    flag: &str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u8, ConfigError> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(ConfigError(format!(
            "--{flag} {v} is out of range: it must be between {min} and {max}"
        )));
    }
    Ok(u8::try_from(v).expect("ranges are below 256"))
}

/// One property evaluated on one state (see [`inspect`]).
#[derive(Clone, Debug, Serialize)]
pub struct PropertyAt {
    pub name: &'static str,
    /// `always`, `sometimes` or `eventually`.
    pub expectation: &'static str,
    /// Whether the property's condition holds on this very state.
    pub holds: bool,
}

/// What `eo explore` shows about the state at the end of an Explorer path.
#[derive(Clone, Debug, Serialize)]
pub struct StateAt {
    /// The steps from the initial state, one readable line each.
    pub steps: Vec<String>,
    /// The durable facts of the state, in one line.
    pub summary: String,
    /// Every property, evaluated on this state alone.
    pub properties: Vec<PropertyAt>,
}

/// The model being served by [`serve`], for `eo explore`'s own page: evaluates
/// an Explorer path (`/0/4/8`: the initial state's index, then an action index
/// per step) into a [`StateAt`], or says why the path is not one.
pub type Inspector = Box<dyn Fn(&str) -> Result<StateAt, String> + Send + Sync>;

static SERVED: std::sync::OnceLock<Inspector> = std::sync::OnceLock::new();

/// The inspector of the model [`serve`] is serving, once it serves one.
pub fn served() -> Option<&'static Inspector> {
    SERVED.get()
}

/// Follows an Explorer path in `model` and evaluates every property on the
/// state it ends in.
pub fn inspect<M>(model: &M, path: &str) -> Result<StateAt, String>
where
    M: crate::check::Explain,
    M::State: Clone,
    M::Action: fmt::Debug,
{
    let mut indices = path.split('/').filter(|s| !s.is_empty()).map(|s| {
        s.parse::<usize>()
            .map_err(|_| format!("'{s}' in the path is not an index"))
    });
    let first = indices.next().unwrap_or(Ok(0))?;
    let mut state = model
        .init_states()
        .into_iter()
        .nth(first)
        .ok_or_else(|| format!("no initial state {first}"))?;
    let mut steps = Vec::new();
    let mut actions = Vec::new();
    for index in indices {
        let index = index?;
        actions.clear();
        model.actions(&state, &mut actions);
        let action = actions
            .drain(..)
            .nth(index)
            .ok_or_else(|| format!("no action {index} after step {}", steps.len()))?;
        steps.push(model.format_action(&action));
        state = model
            .next_state(&state, action)
            .ok_or_else(|| format!("action {index} after step {} changes nothing", steps.len()))?;
    }
    let properties = model
        .properties()
        .iter()
        .map(|p| PropertyAt {
            name: p.name,
            expectation: match p.expectation {
                stateright::Expectation::Always => "always",
                stateright::Expectation::Sometimes => "sometimes",
                stateright::Expectation::Eventually => "eventually",
            },
            holds: (p.condition)(model, &state),
        })
        .collect();
    Ok(StateAt {
        steps,
        summary: model.summarize(&state),
        properties,
    })
}

/// Serves the Explorer for a model after making sure the address is free, so a
/// busy port is a one-line error rather than a panic inside Stateright. The
/// model is also kept for [`served`].
pub fn serve<M>(
    model: M,
    symmetry: Option<crate::check::Representative<M>>,
    address: SocketAddr,
) -> Result<(), ConfigError>
where
    M: crate::check::Explain + Clone + Send + Sync + 'static,
    M::State: Clone + fmt::Debug + std::hash::Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + fmt::Debug + PartialEq + Send + Sync + 'static,
{
    std::net::TcpListener::bind(address)
        .map_err(|e| ConfigError(format!("cannot serve the Explorer on {address}: {e}")))?;
    let kept = model.clone();
    let _ = SERVED.set(Box::new(move |path: &str| inspect(&kept, path)));
    let mut builder = stateright::Model::checker(model);
    if let Some(representative) = symmetry {
        builder = builder.symmetry_fn(representative);
    }
    builder.serve(address);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_configuration_fills_the_flags_not_given() {
        let info = crate::ack_retry::ENTRY.info();
        let given = Settings {
            config: Some("two-crashes".into()),
            crashes: Some(1),
            senders: Some(1),
            ..Settings::default()
        };
        let resolved = info.resolve(&given).unwrap();
        assert_eq!(resolved.crashes, Some(1), "a given flag wins");
        assert_eq!(resolved.network.as_deref(), Some("ordered"));
        assert_eq!(resolved.senders, Some(1));
        assert_eq!(resolved.config.as_deref(), Some("two-crashes"));
        assert_eq!(
            info.resolve(&Settings::default()).unwrap(),
            Settings::default()
        );
        let unknown = Settings {
            config: Some("nope".into()),
            ..Settings::default()
        };
        assert_eq!(
            info.resolve(&unknown).unwrap_err().0,
            "ack-retry has no configuration 'nope' (configurations: sync-log, two-crashes, two-senders, disk-loss, wide-window)"
        );
    }

    #[test]
    fn flags_a_model_does_not_declare_are_refused() {
        let info = crate::two_phase_spec::ENTRY.info();
        let given = Settings {
            disk_losses: Some(1),
            ..Settings::default()
        };
        let err = info.refuse_unknown_flags(&given).unwrap_err().0;
        assert!(err.contains("does not take --disk-losses"), "{err}");
    }
}
