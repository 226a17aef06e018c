//! The `ringway-loadgen` binary: parse flags, run, print the summary, write the files asked for.
use std::process::ExitCode;

use clap::Parser;
use ringway_loadgen::cli::Cli;
use ringway_loadgen::config::RunConfig;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match RunConfig::from_cli(&cli) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("ringway-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let run = match ringway_loadgen::run(&cfg) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("ringway-loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", ringway_loadgen::report::text::render(&run));
    if let Err(e) = ringway_loadgen::write_outputs(&run, &cli) {
        eprintln!("ringway-loadgen: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
