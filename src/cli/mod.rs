//! The command line: `server`, `dev`, and the client, admin, failover,
//! conflict feed and fault commands.
//!
//! - `client_cmds`, `admin_cmds`, `failover_cmds`, `conflicts_cmds`,
//!   `fault_cmds`: each group's arguments (clap) and what it runs;
//!   `container_cmds`: `container create|list|show`, arguments, what they
//!   run and print.
//! - `kv_cmds`, `kv_output`: the key-value commands and what they print.
//! - `status_cmd`, `account_cmds`: `status`; `account` and `priorities`.
//! - `options`: `--endpoint`, `--region`, `--deadline`, `--json`, and how
//!   a command connects with them. `render`: tables and values as text.
//!   `print`: stdout, where a reader that went away ends a command quietly.
//! - `server`, `dev`, `verify`: running nodes, a dev account, the harness.

pub mod account_cmds;
pub mod admin_cmds;
pub mod client_cmds;
pub mod conflicts_cmds;
pub mod container_cmds;
pub mod dev;
pub mod failover_cmds;
pub mod fault_cmds;
pub mod kv_cmds;
pub mod kv_output;
pub mod options;
pub mod print;
pub mod render;
pub mod server;
pub mod status_cmd;
#[cfg(test)]
mod testing;
pub mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "meridian",
    version,
    about = "A multi-region replicated store with tunable consistency"
)]
pub struct Cli {
    /// Log filter, e.g. `info` or `meridian=debug` (RUST_LOG overrides it).
    // openraft logs expected election races at WARN, so it defaults to error.
    #[arg(long, global = true)]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one node from a TOML configuration file.
    Server(server::ServerArgs),
    /// Run a whole account in this process on loopback.
    Dev(dev::DevArgs),
    /// Run workloads under injected faults and check the recorded history.
    Verify(verify::VerifyArgs),
    #[command(flatten)]
    Client(client_cmds::ClientCommand),
    #[command(flatten)]
    Admin(admin_cmds::AdminCommand),
    #[command(flatten)]
    Failover(failover_cmds::FailoverCommand),
    /// Create, list and show containers and their conflict policies.
    #[command(subcommand)]
    Container(container_cmds::ContainerCommand),
    /// Read the conflict feed (writes lost to a failover), or delete an
    /// entry from it.
    Conflicts(conflicts_cmds::ConflictsArgs),
    /// Inject faults into an account run by `meridian dev`: cut a region
    /// off, heal.
    #[command(subcommand)]
    Fault(fault_cmds::FaultCommand),
}

/// The default log filter per command: `verify` provokes faults on
/// purpose, so the errors openraft logs about them are expected noise.
fn default_log_filter(command: &Command) -> &'static str {
    match command {
        Command::Verify(_) => "warn,openraft=off,meridian::verify=info",
        _ => "info,openraft=error",
    }
}

/// Runs a parsed command line to completion.
pub fn run(cli: Cli) -> ExitCode {
    let filter = cli
        .log
        .clone()
        .unwrap_or_else(|| default_log_filter(&cli.command).to_string());
    init_tracing(&filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meridian: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Dev(args) => dev::run(args).await,
            Command::Verify(args) => verify::run(args).await,
            Command::Client(cmd) => client_cmds::run(cmd).await,
            Command::Admin(cmd) => admin_cmds::run(cmd).await,
            Command::Failover(cmd) => failover_cmds::run(cmd).await,
            Command::Container(cmd) => container_cmds::run(cmd).await,
            Command::Conflicts(args) => conflicts_cmds::run(args).await,
            Command::Fault(cmd) => fault_cmds::run(cmd).await,
        }
    });
    match result {
        Ok(code) => code,
        // `| head` read what it wanted: not a failure, and nobody to tell.
        Err(e) if print::is_reader_gone(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meridian: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Completes on Ctrl-C or SIGTERM: the one way a foreground command stops.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
