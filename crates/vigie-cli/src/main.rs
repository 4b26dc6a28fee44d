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

/// Sets mimalloc's options for the command before any thread starts.
///
/// `vigie serve`, a long-lived process judged by its resident memory:
/// mimalloc's defaults keep freed pages 10 ms before returning them and
/// commit arenas eagerly, which held 64 MiB after the serving benchmark's
/// load (59.6 MiB so tuned; 40.5 with glibc's allocator); so pages go back
/// at once and arenas are committed on demand.
///
/// `vigie train`, `predict` and `forecast`, short batch processes judged by
/// their time: a tree's large buffers are freed and taken again for the
/// next, so freed pages are kept until the process ends rather than
/// returned and faulted in again (system time 2.5 s → 1.7 s, wall time
/// about 8% less, on the forecasting benchmark's revenue training). The
/// long-lived stream processor and the demo's server keep the defaults.
#[allow(unsafe_code)]
fn tune_allocator(command: &cli::Command) {
    use libmimalloc_sys::mi_option_set;
    // The positions of these options in mimalloc 3's `mi_option_e`.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    match command {
        // SAFETY (both blocks): called in `main` before any thread is started;
        // `mi_option_set` stores an integer in mimalloc's option table.
        cli::Command::Serve { .. } => unsafe {
            mi_option_set(PURGE_DELAY, 0);
            mi_option_set(ARENA_EAGER_COMMIT, 0);
        },
        cli::Command::Train(_) | cli::Command::Predict(_) | cli::Command::Forecast(_) => unsafe {
            mi_option_set(PURGE_DELAY, -1);
        },
        _ => {}
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tune_allocator(&cli.command);
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
