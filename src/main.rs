use std::process::ExitCode;

use clap::Parser;
use hookboard::cli::{self, Cli};
use hookboard::settings::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    hookboard::telemetry::init();
    let result = Settings::from_env().and_then(|settings| cli::run(cli, settings));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hookboard: {err:#}");
            ExitCode::FAILURE
        }
    }
}
