//! `runhcs` — wharf's OCI runtime CLI, in the shape of runc (and of hcsshim's runhcs).
//!
//! **Owns:** argument parsing, one thin file per verb in [`commands`], exit codes and error
//! output (stderr and `--log` in text or json). **Does not own:** any container logic; every
//! verb calls into the `hcs` crate.

mod cli;
mod commands;
mod log;

use clap::Parser;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Protect /proc/self/exe before anything else: the re-exec starts a fresh process, so work
    // done before it (argument parsing) would be done twice. A verb word anywhere in argv is
    // enough to decide; a false positive (a container named "run") costs one re-exec.
    let early = args
        .iter()
        .skip(1)
        .any(|a| matches!(a.as_str(), "create" | "run" | "exec"))
        .then(|| hcs::process::protect_self_exe(&args));
    let cli = cli::Cli::parse();
    let logger = log::Logger::new(&cli.global);
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
