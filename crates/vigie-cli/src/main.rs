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

/// mimalloc's defaults keep freed pages 10 ms before returning them and
/// commit arenas eagerly: `vigie serve` then held 54 MiB idle where it holds
/// 33 MiB with glibc's allocator. Returned at once and committed on demand,
/// it holds what glibc's did, and keeps its speed.
#[allow(unsafe_code)]
fn tune_allocator() {
    use libmimalloc_sys::mi_option_set;
    // The positions of these options in mimalloc 3's `mi_option_e`.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: called first in `main`, before any thread is started;
    // `mi_option_set` stores an integer in mimalloc's option table.
    unsafe {
        mi_option_set(PURGE_DELAY, 0);
        mi_option_set(ARENA_EAGER_COMMIT, 0);
    }
}

fn main() -> ExitCode {
    tune_allocator();
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
