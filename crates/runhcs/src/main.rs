//! `runhcs` — wharf's OCI runtime CLI, in the shape of runc (and of hcsshim's runhcs).
//!
//! **Owns:** argument parsing, one thin file per verb in [`commands`], the per-container monitor
//! ([`shim`]: its event loop, stdio, json-file log and exit file), exit codes and error
//! output (stderr and `--log` in text or json). **Does not own:** any container logic; every
//! verb calls into the `hcs` crate.
//!
//! `no_main`: runhcs starts once or twice per container operation, and std's start-up (a
//! SIGSEGV handler with an alternate stack, whose setup makes glibc parse /proc/self/maps to
//! find the main thread's stack) is a measurable part of that. We keep what matters of it:
//! SIGPIPE ignored (a closed output pipe is an EPIPE error, not a silent death) and stdout
//! flushed at exit (`std::process::exit` does that).
#![cfg_attr(not(test), no_main)]

mod cli;
mod commands;
mod log;
mod shim;

use clap::Parser;

/// The C entry point; std reads argv itself on Linux, so the arguments are not needed here.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: setting a signal disposition to SIG_IGN; no handler code involved.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    run()
}

#[cfg_attr(test, allow(dead_code))]
fn run() -> ! {
    let args: Vec<String> = std::env::args().collect();
    // Protect /proc/self/exe before anything else: the re-exec starts a fresh process, so work
    // done before it (argument parsing) would be done twice. A verb word anywhere in argv is
    // enough to decide; a false positive (a container named "run") costs one re-exec.
    let early = args
        .iter()
        .skip(1)
        .any(|a| matches!(a.as_str(), "create" | "run" | "exec" | "shim"))
        .then(|| hcs::process::protect_self_exe(&args));
    let cli = cli::Cli::parse();
    let logger = log::Logger::new(&cli.global);
    logger.install(cli.global.debug);
    if cli.command.spawns_container_process() {
        if let Err(e) = early.unwrap_or_else(|| hcs::process::protect_self_exe(&args)) {
            logger.error(&e);
            std::process::exit(1);
        }
    }
    let code = match commands::dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            logger.error(e.as_ref());
            // runc: exec exits 255 when the process could not be started.
            if matches!(cli.command, cli::Command::Exec(_)) {
                255
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}
