//! The `meridian` binary: parses arguments and hands over to `cli::run`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = meridian::cli::Cli::parse();
    meridian::cli::run(cli)
}
