//! `eo check MODEL` and `eo explore MODEL`: one subcommand per model, built from the model's own flag
//! list (`ModelInfo::flags` in the catalogue), so `eo check MODEL --help` shows
//! exactly that model's flags with their defaults and limits, and a new model
//! brings its flags without touching the others.

use crate::args;
use crate::UsageError;
use clap::{Arg, ArgAction, ArgMatches, Command};
use eo_models::catalog::{FlagInfo, ModelInfo, Settings};

/// A flag whose default is `off` (or `on`) is a switch; every other flag takes
/// a value.
fn is_switch(flag: &FlagInfo) -> bool {
    matches!(flag.default.as_str(), "off" | "on")
}

/// `--senders <SENDERS>`.
fn value_name(flag: &FlagInfo) -> String {
    flag.name.to_uppercase().replace('-', "_")
}

/// The subcommand of one model.
pub fn command(info: &ModelInfo) -> Command {
    let variants: Vec<&str> = info
        .variants
        .iter()
        .filter(|v| v.settings.variant.is_some())
        .map(|v| v.name)
        .collect();
    let configs: Vec<&str> = info.configs.iter().map(|c| c.name).collect();
    let mut command = Command::new(info.name)
        .about(info.about)
        .arg(
            Arg::new("variant")
                .long("variant")
                .value_name("VARIANT")
                .help(format!(
                    "The variant: {} [default: correct]",
                    variants.join(", ")
                )),
        )
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("NAME")
                .help(format!(
                "A named configuration (`eo list` shows what each sets; a flag given too wins): {}",
                if configs.is_empty() {
                    "none".to_owned()
                } else {
                    configs.join(", ")
                }
            )),
        );
    for flag in &info.flags {
        let arg = Arg::new(flag.name).long(flag.name);
        let arg = if is_switch(flag) {
            arg.action(ArgAction::SetTrue)
                .help(format!("{} [default: {}]", flag.help, flag.default))
        } else {
            arg.value_name(value_name(flag))
                .allow_negative_numbers(true)
                .help(format!("{} [default: {}]", flag.help, flag.default))
        };
        command = command.arg(arg);
    }
    let properties: Vec<String> = info
        .properties
        .iter()
        .map(|p| format!("  {:<22} {:<10} {}", p.name, p.expectation, p.about))
        .collect();
    command.after_help(format!("Properties:\n{}", properties.join("\n")))
}

/// Every model's subcommand, in the catalogue's order.
pub fn commands() -> Vec<Command> {
    eo_conformance::catalog::all()
        .iter()
        .map(|entry| command(&entry.info()))
        .collect()
}

/// The settings a model's subcommand was given.
pub fn settings(info: &ModelInfo, matches: &ArgMatches) -> Result<Settings, UsageError> {
    let mut settings = Settings {
        variant: matches.get_one::<String>("variant").cloned(),
        config: matches.get_one::<String>("config").cloned(),
        ..Settings::default()
    };
    for flag in &info.flags {
        if is_switch(flag) {
            let on = matches.get_flag(flag.name);
            match flag.name {
                "symmetry" => settings.symmetry = on,
                "coordinator-never-recovers" => settings.coordinator_never_recovers = on,
                other => return Err(unknown(info, other)),
            }
            continue;
        }
        let Some(text) = matches.get_one::<String>(flag.name) else {
            continue;
        };
        let count =
            || args::count(text).map_err(|why| UsageError(format!("--{} {text} {why}", flag.name)));
        match flag.name {
            "network" => settings.network = Some(text.clone()),
            "senders" => settings.senders = Some(count()?),
            "messages" => settings.messages = Some(count()?),
            "crashes" => settings.crashes = Some(count()?),
            "disk-losses" => settings.disk_losses = Some(count()?),
            "log" => {
                settings.log = Some(
                    args::log_mode(text)
                        .map_err(|why| UsageError(format!("--log {text} {why}")))?,
                )
            }
            "window" => settings.window = Some(count()?),
            "in-flight" => settings.in_flight = Some(count()?),
            "submissions" => settings.submissions = Some(count()?),
            "participants" => settings.participants = Some(count()?),
            "transactions" => settings.transactions = Some(count()?),
            other => return Err(unknown(info, other)),
        }
    }
    Ok(settings)
}

fn unknown(info: &ModelInfo, flag: &str) -> UsageError {
    UsageError(format!(
        "{} declares --{flag}, which eo does not know how to pass on",
        info.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_flag_becomes_an_argument_that_reaches_its_setting() {
        for entry in eo_conformance::catalog::all() {
            let info = entry.info();
            let mut argv = vec!["check".to_owned(), info.name.to_owned()];
            for flag in &info.flags {
                argv.push(format!("--{}", flag.name));
                if !is_switch(flag) {
                    argv.push(match flag.name {
                        "network" => "ordered".to_owned(),
                        "log" => "sync".to_owned(),
                        _ => "1".to_owned(),
                    });
                }
            }
            let matches = Command::new("check")
                .subcommands(commands())
                .try_get_matches_from(&argv)
                .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            let (name, sub) = matches.subcommand().unwrap();
            assert_eq!(name, info.name);
            let settings = settings(&info, sub).unwrap();
            let mut given = settings.given();
            given.sort_unstable();
            let mut declared: Vec<&str> = info.flags.iter().map(|f| f.name).collect();
            declared.sort_unstable();
            assert_eq!(given, declared, "{}", info.name);
        }
    }
}
