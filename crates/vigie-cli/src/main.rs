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
///
/// The batch commands also turn transparent huge pages off for the process
/// ([`no_huge_pages`]).
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
        cli::Command::Train(_) | cli::Command::Predict(_) | cli::Command::Forecast(_) => {
            unsafe { mi_option_set(PURGE_DELAY, -1) };
            no_huge_pages();
        }
        _ => {}
    }
}

/// Turns transparent huge pages off for this process. mimalloc asks the
/// kernel for them on its arenas, and where the machine allows them only
/// when asked (`madvise`), the kernel compacts memory to find each 2 MiB
/// page at the fault that wants it: the forecasting benchmark's revenue
/// training spent 0.05 to 0.75 s of system time in it from one run to the
/// next (wall 1.9 to 2.5 s), against 0.15 to 0.20 s (wall 2.1 s) without.
/// mimalloc's own option is read when its first arena is made, before `main`.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn no_huge_pages() {
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag of this process;
    // a kernel that does not know it returns an error, which changes nothing.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

#[cfg(not(target_os = "linux"))]
fn no_huge_pages() {}

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
