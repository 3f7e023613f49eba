#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Terminals: `--console-socket` (pty master over SCM_RIGHTS) and a foreground `run` whose
//! stdio is a pty the test provides.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::term::{console_socket, PtyReader};
use common::{each_runtime, Bundle};
use serde_json::json;

const SHELL_LOOP: &str = "while read -r l; do eval \"$l\"; done";

#[test]
fn console_socket_receives_pty_master() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.set("/process/terminal", json!(true));
        // A shell reading commands from the tty without line editing: busybox's interactive
        // ash sends a cursor-position query (ESC[6n) and waits for the terminal's answer.
        b.args(&["sh", "-c", SHELL_LOOP]);
        let c = rt.container(&b);
        let sock = c.scratch().join("console.sock");
        let rx = console_socket(&sock);
        c.create_with(&["--console-socket", &sock.to_string_lossy()])
            .ok();
        let master = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("no connection on the console socket")
            .unwrap_or_else(|e| panic!("receiving the pty master: {e}"));
        let mut writer = std::fs::File::from(master.try_clone().expect("dup master"));
        let mut reader = PtyReader::new(master);
        c.start().ok();
        // $((6*7)) so the typed echo differs from the output.
        writer
            .write_all(b"echo $((6*7)); tty; ls /dev/console && echo console-$((2+2))\n")
            .expect("write");
        assert!(
            reader.wait_for("console-4", Duration::from_secs(10)),
            "no reply on the pty: {:?}",
            reader.seen
        );
        let lines: Vec<&str> = reader.seen.lines().map(str::trim_end).collect();
        assert!(lines.contains(&"42"), "{:?}", reader.seen);
        assert!(lines.contains(&"/dev/pts/0"), "{:?}", reader.seen);
        writer.write_all(b"exit 3\n").expect("write");
        assert_eq!(c.wait_exit(), Some(3));
    });
}

#[test]
fn foreground_run_on_callers_pty() {
    each_runtime(|rt| {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let mut b = Bundle::busybox();
        b.set("/process/terminal", json!(true));
        // A shell reading commands from the tty without line editing: busybox's interactive
        // ash sends a cursor-position query (ESC[6n) and waits for the terminal's answer.
        b.args(&["sh", "-c", SHELL_LOOP]);
        let c = rt.container(&b);
        let mut writer = std::fs::File::from(pty.master.try_clone().expect("dup"));
        let mut reader = PtyReader::new(pty.master);
        let mut cmd = c.cmd(&["run", "--bundle"]);
        cmd.arg(b.path()).arg(&c.id);
        let slave = pty.slave;
        cmd.stdio(
            Stdio::from(slave.try_clone().expect("dup")),
            Stdio::from(slave.try_clone().expect("dup")),
            Stdio::from(slave),
        );
        // Run in the background; talk to the shell only once it answers (what is typed
        // before the runtime sets up its pty copy loop could be lost).
        let runner = std::thread::spawn(move || cmd.run());
        writer
            .write_all(b"echo $((6*7)); [ -t 0 ] && echo TTY-$((1+1))\n")
            .expect("write");
        assert!(
            reader.wait_for("TTY-2", Duration::from_secs(10)),
            "no reply through the caller's pty: {:?}",
            reader.seen
        );
        assert!(
            reader.seen.lines().any(|l| l.trim_end() == "42"),
            "{:?}",
            reader.seen
        );
        writer.write_all(b"exit 5\n").expect("write");
        let out = runner.join().expect("runner thread");
        assert_eq!(out.code, Some(5), "{out}\npty saw: {:?}", reader.seen);
    });
}
