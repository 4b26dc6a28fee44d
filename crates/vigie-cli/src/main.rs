//! `vigie`: the command line of the Vigie ML platform.
//!
//! Glue only: parse arguments, open the project's stores, call the library
//! crates, print results as text or JSON, and turn errors into messages and
//! exit codes (0 success, 2 bad input, 1 anything else).

mod cli;
mod commands;
mod example;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A closed pipe (`vigie models list | head`) is not a failure.
            if error.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {error:#}");
            ExitCode::from(commands::exit_code(&error))
        }
    }
}
