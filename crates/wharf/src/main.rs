//! `wharf`: the command-line client of wharfd, with docker's verbs, flags and exit codes.
//!
//! Owns: parsing the command line, speaking the Docker Engine API over wharfd's unix socket
//! (HTTP/1.1, version negotiation, hijacked attach/exec streams), the local terminal (raw
//! mode, resize, signal proxying), output (tables, `--format`, progress bars), the local end
//! of `cp`'s tar streams, and starting wharfd when the default socket does not answer.
//!
//! Does not own: any container, image, network or volume state (all of it lives in wharfd;
//! this crate depends on no other wharf crate and shares no types with the daemon — the wire
//! JSON is the contract).

mod archive;
mod autostart;
mod cli;
mod client;
mod cmd;
mod error;
mod output;
mod progress;
mod stdio;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wharf: start async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = rt.block_on(cmd::dispatch(cli));
    // A thread may be blocked reading stdin (attach/exec); do not wait for it.
    rt.shutdown_background();
    let code = match result {
        Ok(()) => 0,
        Err(error::Error::Status(c)) => c,
        // The reader went away (`wharf ps | head -1`): nothing left to say.
        Err(error::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            0
        }
        Err(e) => {
            eprintln!("{}", chain(&e));
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// The error and its sources on one line (messages do not repeat their source).
fn chain(e: &error::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}
