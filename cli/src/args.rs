//! Reading the command line: value parsers that word every range the same way,
//! and clap's own errors turned into the one-line `eo: …` form.
//!
//! Every range error reads `--FLAG VALUE is out of range: it must be …`, whether
//! it comes from a parser here (a bound known before the model is: `--threads`,
//! `eo sim`'s sizes and fault rates) or from a model's own limits
//! (`eo_models::catalog::bounded`).

use clap::error::{ContextKind, ContextValue, ErrorKind};
use std::process::ExitCode;

/// The tail of every range error: `is out of range: it must be between 1 and 4`.
pub fn between<T: std::fmt::Display>(min: T, max: T) -> String {
    format!("is out of range: it must be between {min} and {max}")
}

/// A whole number in `min..=max`; a negative number or one beyond `u64` is a
/// range error, anything else that is not a whole number says so.
pub fn whole(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let number: i128 = text
        .trim()
        .parse()
        .map_err(|_| "is not a whole number".to_owned())?;
    if number < i128::from(min) || number > i128::from(max) {
        return Err(between(min, max));
    }
    u64::try_from(number).map_err(|_| between(min, max))
}

/// A configuration count of a model (`--senders`, `--messages`, …): any
/// `u32` parses; the model then applies its own limits.
pub fn count(text: &str) -> Result<u32, String> {
    whole(text, 0, u64::from(u32::MAX))
        .map(|n| u32::try_from(n).expect("whole() kept it within u32"))
        .map_err(|_| match text.trim().parse::<i128>() {
            Ok(_) => "is out of range: it must be 0 or more (`eo list` shows each model's limits)"
                .to_owned(),
            Err(_) => "is not a whole number".to_owned(),
        })
}

/// The log modes `--log` accepts (see `eo_models::system::LogMode`).
pub const LOG_MODES: [&str; 2] = ["atomic", "sync"];

/// `--log`: `atomic` or `sync`.
pub fn log_mode(text: &str) -> Result<String, String> {
    let mode = text.trim();
    if LOG_MODES.contains(&mode) {
        Ok(mode.to_owned())
    } else {
        Err(format!(
            "is not a log mode: it must be {}",
            LOG_MODES.join(" or ")
        ))
    }
}

/// The most checker threads `--threads` accepts.
pub const THREADS_MAX: u64 = 1_024;

/// `--threads`: from 1 to [`THREADS_MAX`].
pub fn threads(text: &str) -> Result<usize, String> {
    whole(text, 1, THREADS_MAX).map(|n| usize::try_from(n).expect("THREADS_MAX fits usize"))
}

/// A `u64` (`--seed`): every value from 0 to 18446744073709551615.
pub fn seed(text: &str) -> Result<u64, String> {
    whole(text, 0, u64::MAX)
}

/// A probability `p` with `0 <= p <= 1`, or `0 <= p < 1` when `below_one`.
pub fn probability(text: &str, below_one: bool) -> Result<f64, String> {
    let p: f64 = text
        .trim()
        .parse()
        .map_err(|_| "is not a number".to_owned())?;
    let ok = p >= 0.0 && if below_one { p < 1.0 } else { p <= 1.0 };
    if ok {
        Ok(p)
    } else if below_one {
        Err("is out of range: it must be at least 0 and below 1".to_owned())
    } else {
        Err(between(0, 1))
    }
}

/// Prints a clap error as `eo` reports errors — one line `eo: …`, exit 2 — or,
/// for `--help` and `--version`, what was asked for with exit 0.
pub fn report(error: &clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("eo: {}", one_line(error));
            ExitCode::from(2)
        }
    }
}

/// A clap error in one line, ending with where to read more.
pub fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let command = usage_command(&rendered);
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    // `--messages <MESSAGES>` → `--messages`.
    let flag = context(ContextKind::InvalidArg)
        .map(|a| a.split_whitespace().next().unwrap_or_default().to_owned());
    let value = context(ContextKind::InvalidValue);
    let message = match (error.kind(), flag, value) {
        // Complete in itself: `--loss 2 is out of range: it must be …`.
        (ErrorKind::ValueValidation, Some(flag), Some(value)) => {
            let why = std::error::Error::source(error)
                .map(ToString::to_string)
                .unwrap_or_else(|| "is not valid".to_owned());
            return format!("{flag} {value} {why}");
        }
        (ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand, _, _)
        | (ErrorKind::MissingSubcommand, _, _) => {
            if rendered.contains("<MODEL>") {
                "a model is missing".to_owned()
            } else {
                "a command is missing".to_owned()
            }
        }
        (ErrorKind::MissingRequiredArgument, _, _) => match error.get(ContextKind::InvalidArg) {
            Some(ContextValue::Strings(missing)) => format!("{} is missing", missing.join(", ")),
            _ => "an argument is missing".to_owned(),
        },
        _ => rendered
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or("bad usage")
            .to_owned(),
    };
    format!("{message} (see '{command} --help')")
}

/// The command a usage error is about, from clap's `Usage: eo sim ack-retry
/// [OPTIONS]` line: `eo sim ack-retry`.
fn usage_command(rendered: &str) -> String {
    let usage = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .unwrap_or("eo");
    let words: Vec<&str> = usage
        .split_whitespace()
        .take_while(|w| !w.starts_with(['[', '<', '-']))
        .collect();
    if words.is_empty() {
        "eo".to_owned()
    } else {
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_word_every_range_the_same_way() {
        assert_eq!(whole("3", 1, 4), Ok(3));
        assert_eq!(
            whole("0", 1, 4),
            Err("is out of range: it must be between 1 and 4".to_owned())
        );
        assert_eq!(
            whole("-1", 1, 4),
            Err("is out of range: it must be between 1 and 4".to_owned())
        );
        assert_eq!(whole("x", 1, 4), Err("is not a whole number".to_owned()));
        assert_eq!(seed("18446744073709551615"), Ok(u64::MAX));
        assert!(seed("18446744073709551616").is_err());
    }

    #[test]
    fn probabilities_refuse_what_a_run_cannot_use() {
        assert_eq!(probability("0.5", true), Ok(0.5));
        assert!(probability("1", true).is_err());
        assert_eq!(probability("1", false), Ok(1.0));
        assert!(probability("-0.1", false).is_err());
        assert!(probability("NaN", false).is_err());
    }

    #[test]
    fn log_modes_are_atomic_or_sync() {
        assert_eq!(log_mode("sync"), Ok("sync".to_owned()));
        assert_eq!(log_mode("atomic"), Ok("atomic".to_owned()));
        assert_eq!(
            log_mode("fsync"),
            Err("is not a log mode: it must be atomic or sync".to_owned())
        );
    }

    #[test]
    fn the_usage_line_names_the_command() {
        assert_eq!(
            usage_command("error: x\n\nUsage: eo sim ack-retry [OPTIONS]\n"),
            "eo sim ack-retry"
        );
        assert_eq!(usage_command("Usage: eo <COMMAND>"), "eo");
        assert_eq!(usage_command("nothing"), "eo");
    }
}
