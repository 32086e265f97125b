//! `eo`: model-check, explore and simulate exactly-once protocols.
//!
//! Exit status: 0 when every expectation is met, 1 when a property is violated
//! (or a simulation breaks an invariant), 2 for bad usage or configuration.

mod args;
mod check;
mod explore;
mod list;
mod per_model;
mod sim;
mod svg;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use eo_models::catalog::Settings;
use std::net::SocketAddr;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "eo",
    version,
    about = "Exactly-once message processing: model-checked and implemented"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the models, their flags with defaults, properties and variants.
    List {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Model-check one model (`eo check MODEL --help` lists its flags), or with
    /// no model every model and variant (a table).
    Check(check::CheckArgs),
    /// Serve the Stateright Explorer for a model, with every property evaluated
    /// on the state shown (see docs/cli.md).
    Explore {
        /// The model to explore (see `eo list`).
        model: String,
        #[command(flatten)]
        settings: SettingsArgs,
        /// Where to serve (loopback by default).
        #[arg(long, default_value = "127.0.0.1:3000")]
        address: SocketAddr,
        /// Show Stateright's internal bookkeeping (`timers_set`,
        /// `random_choices`) in the state text.
        #[arg(long)]
        internals: bool,
    },
    /// Run the deterministic simulator: the reference implementation under
    /// faults, checked against a ghost history.
    Sim(sim::SimArgs),
}

/// The configuration flags of every model; each model takes the ones `eo list`
/// shows for it and refuses the others.
#[derive(Args, Clone, Debug, Default)]
pub struct SettingsArgs {
    /// The variant to check: `correct` (default) or a bug variant.
    #[arg(long)]
    variant: Option<String>,
    /// ack-retry: number of senders.
    #[arg(long, allow_negative_numbers = true, value_parser = args::count)]
    senders: Option<u32>,
    /// ack-retry: messages per sender.
    #[arg(long, allow_negative_numbers = true, value_parser = args::count)]
    messages: Option<u32>,
    /// Crashes per behaviour, of any actor.
    #[arg(long, allow_negative_numbers = true, value_parser = args::count)]
    crashes: Option<u32>,
    /// ack-retry: unordered | unordered-dup | ordered (all lossy).
    #[arg(long)]
    network: Option<String>,
    /// two-phase models: number of participants (resource managers).
    #[arg(long, allow_negative_numbers = true, value_parser = args::count)]
    participants: Option<u32>,
    /// two-phase-commit: transactions the client runs one after another.
    #[arg(long, allow_negative_numbers = true, value_parser = args::count)]
    transactions: Option<u32>,
    /// two-phase models: symmetry reduction over participants.
    #[arg(long)]
    symmetry: bool,
    /// two-phase-commit: the coordinator crashes and never recovers (2PC blocks).
    #[arg(long)]
    coordinator_never_recovers: bool,
}

impl SettingsArgs {
    fn to_settings(&self) -> Settings {
        Settings {
            variant: self.variant.clone(),
            senders: self.senders,
            messages: self.messages,
            crashes: self.crashes,
            network: self.network.clone(),
            participants: self.participants,
            transactions: self.transactions,
            symmetry: self.symmetry,
            coordinator_never_recovers: self.coordinator_never_recovers,
        }
    }
}

/// A failure to report on one line with exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

fn main() -> ExitCode {
    restore_default_sigpipe();
    let command = Cli::command().mut_subcommand("check", |check| {
        check
            .subcommands(per_model::commands())
            .subcommand_value_name("MODEL")
            .subcommand_help_heading("Models")
            .disable_help_subcommand(true)
    });
    let matches = match command.try_get_matches() {
        Ok(matches) => matches,
        Err(error) => return args::report(&error),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => return args::report(&error),
    };
    let result = match cli.command {
        Command::List { json } => list::run(json),
        Command::Check(args) => model_of_check(&matches)
            .and_then(|model| check::run(&args, model.as_ref().map(|(m, s)| (*m, s.clone())))),
        Command::Explore {
            model,
            settings,
            address,
            internals,
        } => {
            let settings = settings.to_settings();
            let flags = check::flags_for(&eo_models::catalog::Settings {
                variant: None,
                ..settings.clone()
            });
            explore::run(&model, &settings, flags, address, internals)
        }
        Command::Sim(args) => sim::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(UsageError(message)) => {
            eprintln!("eo: {message}");
            ExitCode::from(2)
        }
    }
}

/// Lets `eo list | head` end quietly: with the default SIGPIPE action a closed
/// pipe ends the process, where Rust's runtime would have `println!` panic.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any thread exists; it only
    // restores the signal's default disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The model `eo check` was given, as its subcommand, with its settings.
fn model_of_check(matches: &ArgMatches) -> Result<Option<(&'static str, Settings)>, UsageError> {
    let Some((name, sub)) = matches
        .subcommand_matches("check")
        .and_then(ArgMatches::subcommand)
    else {
        return Ok(None);
    };
    let entry = eo_models::catalog::find(name).map_err(|e| UsageError(e.0))?;
    let info = entry.info();
    let settings = per_model::settings(&info, sub)?;
    Ok(Some((info.name, settings)))
}
