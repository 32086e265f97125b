//! `eo`: model-check, explore and simulate exactly-once protocols.
//!
//! Exit status: 0 when every expectation is met, 1 when a property is violated
//! (or a simulation breaks an invariant), 2 for bad usage or configuration.

mod args;
mod check;
mod explore;
mod list;
mod node;
mod per_model;
mod run;
mod sim;
mod svg;
mod validate;

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
    /// Serve the Stateright Explorer for a model (`eo explore MODEL --help`
    /// lists its flags), with every property evaluated on the state shown.
    Explore(ExploreArgs),
    /// Run the deterministic simulator: the reference implementation under
    /// faults, checked against a ghost history.
    Sim(sim::SimArgs),
    /// Run a cluster of real nodes (`eo node`) on loopback as child processes,
    /// inject faults (SIGKILL, lost disks, dropped, duplicated and delayed
    /// frames), then verify every node's durable state.
    Run(run::RunArgs),
    /// Run one node of a cluster over TCP: the reference implementation with
    /// its log on disk (see docs/running.md).
    Node(node::NodeArgs),
    /// Check JSON-lines traces of the simulator or of real nodes against the
    /// model: exit 0 a behaviour of the model, 1 not (with the first event that
    /// does not match), 2 unreadable, malformed or beyond the model's bounds.
    Validate(validate::ValidateArgs),
}

/// The flags of `eo explore` itself; the model and its flags come as a
/// subcommand (see `per_model`). Each is global: it may follow the model.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Serving")]
pub struct ExploreArgs {
    /// Where to serve (loopback by default).
    #[arg(long, global = true, default_value = "127.0.0.1:3000")]
    address: SocketAddr,
    /// Show Stateright's internal bookkeeping (`timers_set`,
    /// `random_choices`) in the state text.
    #[arg(long, global = true)]
    internals: bool,
}

/// A failure to report on one line with exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

fn main() -> ExitCode {
    restore_default_sigpipe();
    let with_models = |command: clap::Command| {
        command
            .subcommands(per_model::commands())
            .subcommand_value_name("MODEL")
            .subcommand_help_heading("Models")
            .disable_help_subcommand(true)
    };
    let command = Cli::command()
        .mut_subcommand("check", with_models)
        .mut_subcommand("explore", |explore| {
            with_models(explore).subcommand_required(true)
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
        Command::Check(args) => model_of(&matches, "check")
            .and_then(|model| check::run(&args, model.as_ref().map(|(m, s)| (*m, s.clone())))),
        Command::Explore(args) => match model_of(&matches, "explore") {
            Ok(Some((model, settings))) => {
                let flags = check::flags_for(&Settings {
                    variant: None,
                    ..settings.clone()
                });
                explore::run(model, &settings, flags, args.address, args.internals)
            }
            Ok(None) => Err(UsageError(
                "a model is missing (see 'eo explore --help')".to_owned(),
            )),
            Err(e) => Err(e),
        },
        Command::Sim(args) => sim::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Node(args) => node::run(&args),
        Command::Validate(args) => validate::run(&args),
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

/// The model `eo check` or `eo explore` (`command`) was given, as its
/// subcommand, with its settings.
fn model_of(
    matches: &ArgMatches,
    command: &str,
) -> Result<Option<(&'static str, Settings)>, UsageError> {
    let Some((name, sub)) = matches
        .subcommand_matches(command)
        .and_then(ArgMatches::subcommand)
    else {
        return Ok(None);
    };
    let entry = eo_conformance::catalog::find(name).map_err(|e| UsageError(e.0))?;
    let info = entry.info();
    let settings = per_model::settings(&info, sub)?;
    Ok(Some((info.name, settings)))
}
