use std::process::ExitCode;

use clap::Parser;
use hookboard::cli::{self, Cli};
use hookboard::settings::Settings;

fn main() -> ExitCode {
    return_large_allocations();
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

/// Each password check (argon2id) allocates 19 MiB. With glibc's adaptive threshold those
/// blocks end up in per-thread arenas that keep them after they are freed: a burst of
/// logins left `serve` at over 500 MiB. A fixed threshold maps every allocation above
/// 1 MiB on its own and gives it back to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_allocations() {
    // SAFETY: mallopt only sets an allocator parameter; it runs first thing in main,
    // before any other thread exists.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_allocations() {}
