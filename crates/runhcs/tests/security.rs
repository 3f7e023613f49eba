#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Security boundaries: fd hygiene, cwd resolution, /proc/<pid>/exe (CVE-2019-5736 class),
//! seccomp, LSM fields on a host without an LSM.

mod common;

use std::fs;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use common::{each_runtime, host_dir, poll_until, Bundle};
use serde_json::json;

/// Numeric entries of a `ls /proc/self/fd` listing, sorted.
fn fd_list(out: &str) -> Vec<u32> {
    let mut v: Vec<u32> = out
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// Makes `src` appear as fd `target` (without CLOEXEC) in the spawned runtime only.
fn leak_fd(cmd: &mut common::Cmd, src: RawFd, target: RawFd) {
    // SAFETY: dup2 and fcntl are async-signal-safe; `src` stays open in the parent until the
    // spawn ends.
    unsafe {
        cmd.pre_exec(move || {
            // dup2(x, x) is a no-op that keeps CLOEXEC, so clear the flag explicitly.
            if libc::dup2(src, target) < 0 || libc::fcntl(target, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn only_stdio_fds_even_when_caller_leaks() {
    each_runtime(|rt| {
        let leaked = fs::File::open("/").expect("open /");
        let mut b = Bundle::busybox();
        b.args(&["ls", "/proc/self/fd"]);
        let c = rt.container(&b);
        let mut cmd = c.cmd(&["run", "--bundle"]);
        cmd.arg(b.path()).arg(&c.id);
        leak_fd(&mut cmd, leaked.as_raw_fd(), 9);
        let out = cmd.run().ok();
        // 0-2 plus the directory fd ls itself opened.
        assert_eq!(fd_list(&out.stdout), [0, 1, 2, 3], "{out}");
    });
}

/// CVE-2024-21626 ("Leaky Vessels"): a cwd of /proc/self/fd/N must not reach a host dir.
#[test]
fn cwd_through_leaked_fd_does_not_escape() {
    each_runtime(|rt| {
        let h = host_dir("wt-leak-");
        fs::write(h.path().join("HOST-MARKER"), "").expect("write");
        let leaked = fs::File::open(h.path()).expect("open host dir");
        let mut b = Bundle::busybox();
        b.set("/process/cwd", json!("/proc/self/fd/9"));
        b.args(&["ls", "-a"]);
        let c = rt.container(&b);
        let mut cmd = c.cmd(&["run", "--bundle"]);
        cmd.arg(b.path()).arg(&c.id);
        leak_fd(&mut cmd, leaked.as_raw_fd(), 9);
        let out = cmd.run();
        assert!(
            !out.stdout.contains("HOST-MARKER"),
            "escaped to the host: {out}"
        );
        // runc refuses to start such a container.
        out.fails();
    });
}

#[test]
fn preserve_fds_passes_fd_3() {
    each_runtime(|rt| {
        let h = host_dir("wt-preserve-");
        fs::write(h.path().join("f"), "preserved\n").expect("write");
        let f = fs::File::open(h.path().join("f")).expect("open");
        let mut b = Bundle::busybox();
        b.sh("cat <&3; exec ls /proc/self/fd");
        let c = rt.container(&b);
        let mut cmd = c.cmd(&["run", "--preserve-fds", "1", "--bundle"]);
        cmd.arg(b.path()).arg(&c.id);
        leak_fd(&mut cmd, f.as_raw_fd(), 3);
        let out = cmd.run().ok();
        let (first, rest) = out.stdout.split_once('\n').unwrap_or(("", ""));
        assert_eq!(first, "preserved", "{out}");
        assert_eq!(fd_list(rest), [0, 1, 2, 3, 4], "{out}");
    });
}

#[test]
fn cwd_symlink_resolves_inside_rootfs() {
    each_runtime(|rt| {
        for relative in [false, true] {
            let h = host_dir("wt-cwd-");
            fs::write(h.path().join("HOST-MARKER"), "").expect("write");
            let mut b = Bundle::busybox();
            let target = if relative {
                format!("../../../../../../../..{}", h.path().display())
            } else {
                h.path().display().to_string()
            };
            std::os::unix::fs::symlink(&target, b.rootfs().join("escape")).expect("symlink");
            // Make the in-rootfs resolution exist so the container can start either way.
            let inner = b.rootfs().join(h.path().strip_prefix("/").expect("abs"));
            fs::create_dir_all(&inner).expect("mkdir inner");
            fs::write(inner.join("ROOTFS-MARKER"), "").expect("write");
            b.set("/process/cwd", json!("/escape"));
            b.args(&["ls", "-a"]);
            let out = rt.container(&b).run().ok();
            assert!(
                out.stdout.contains("ROOTFS-MARKER"),
                "relative={relative}: {out}"
            );
            assert!(!out.stdout.contains("HOST-MARKER"), "escaped: {out}");
            let entries = fs::read_dir(h.path()).expect("ls").count();
            assert_eq!(entries, 1, "host dir modified");
        }
    });
}

/// CVE-2019-5736 class: a container process must not be able to open the runtime's binary
/// for writing through `/proc/<pid>/exe`.
///
/// Design: after `create`, pid 1 of the container is still the runtime's own init stub. A
/// process exec'd into the created container (1) tries `: >> /proc/1/exe` (opens for append,
/// writes nothing: non-destructive), (2) keeps a read fd on `/proc/1/exe` if it can, waits
/// until `start` has exec'd the payload (so the runtime no longer runs that file), then
/// re-opens the held fd for writing via `/proc/self/fd/3` — the original exploit. runc
/// defends by running init from a sealed memfd copy. Finally the host binary must be
/// byte-identical. (If another instance of the runtime is running at that moment the kernel
/// answers ETXTBSY anyway; the test can then miss a weakness but never reports a false one.)
#[test]
fn proc_exe_of_runtime_not_writable() {
    each_runtime(|rt| {
        let before = fs::read(&rt.path).expect("read runtime binary");
        let mut b = Bundle::busybox();
        b.sh("sleep 3");
        let c = rt.container(&b);
        c.create().ok();
        // `( ... )` subshells: a failed redirection on a builtin would end busybox sh.
        let probe = "if (true >> /proc/1/exe) 2>/dev/null; then echo DIRECT-WRITE-OPENED; \
            else echo DIRECT-DENIED; fi; \
            if ! (true </proc/1/exe) 2>/dev/null; then echo HOLD-DENIED; exit 0; fi; \
            exec 3</proc/1/exe; echo HOLDING; n=0; \
            while [ \"$(readlink /proc/1/exe)\" != /bin/busybox ]; do \
              n=$((n+1)); [ $n -gt 400 ] && { echo TIMEOUT; exit 0; }; sleep 0.02; done; \
            if (true >> /proc/self/fd/3) 2>/dev/null; then echo REOPEN-WRITE-OPENED; \
            else echo REOPEN-DENIED; fi";
        let mut ex = c.cmd(&["exec", "-d"]);
        ex.arg(&c.id).args(&["sh", "-c", probe]);
        let out_path = ex.stdout_path().to_path_buf();
        ex.run().ok();
        let read = || fs::read_to_string(&out_path).unwrap_or_default();
        assert!(
            poll_until(Duration::from_secs(10), || read().contains("HOLD")),
            "probe did not report: {}",
            read()
        );
        c.start().ok();
        assert!(
            poll_until(Duration::from_secs(15), || {
                let r = read();
                r.contains("REOPEN-") || r.contains("HOLD-DENIED") || r.contains("TIMEOUT")
            }),
            "probe did not finish: {}",
            read()
        );
        let report = read();
        eprintln!("[{}] exe probe: {}", rt.name, report.replace('\n', " "));
        assert!(
            !report.contains("WRITE-OPENED"),
            "runtime binary writable: {report}"
        );
        assert!(
            !report.contains("TIMEOUT"),
            "init never exec'd the payload: {report}"
        );
        let after = fs::read(&rt.path).expect("read runtime binary");
        assert!(before == after, "runtime binary changed!");
    });
}

#[test]
fn seccomp_errno_and_mode() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.tmpfs("/tmp");
        b.set(
            "/linux/seccomp",
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{
                    "names": ["mkdir", "mkdirat"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": libc::EXDEV
                }]
            }),
        );
        b.sh("grep '^Seccomp:' /proc/self/status; touch /tmp/file && echo touched; mkdir /tmp/x");
        let out = rt.container(&b).run();
        assert_eq!(out.stdout, "Seccomp:\t2\ntouched\n", "{out}");
        assert!(
            out.stderr.contains("Invalid cross-device link"),
            "mkdir must fail with EXDEV: {out}"
        );
        out.fails();
    });
}

/// A seccomp profile older than `close_range` (Linux 5.9) denies it, e.g. runtime-tools'
/// default profile. The filter is in place before the runtime marks inherited descriptors
/// close-on-exec (early without noNewPrivileges, late with it), so that must not depend on
/// `close_range`: the container still starts and still sees only its stdio.
#[test]
fn seccomp_profile_denying_close_range() {
    each_runtime(|rt| {
        for nnp in [true, false] {
            let leaked = fs::File::open("/").expect("open /");
            let mut b = Bundle::busybox();
            b.set("/process/noNewPrivileges", json!(nnp));
            b.set(
                "/linux/seccomp",
                json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{
                        "names": ["close_range"],
                        "action": "SCMP_ACT_ERRNO",
                        "errnoRet": libc::EPERM
                    }]
                }),
            );
            b.args(&["ls", "/proc/self/fd"]);
            let c = rt.container(&b);
            let mut cmd = c.cmd(&["run", "--bundle"]);
            cmd.arg(b.path()).arg(&c.id);
            leak_fd(&mut cmd, leaked.as_raw_fd(), 9);
            let out = cmd.run();
            assert!(out.success(), "noNewPrivileges={nnp}: {out}");
            assert_eq!(
                fd_list(&out.stdout),
                [0, 1, 2, 3],
                "noNewPrivileges={nnp}: {out}"
            );
        }
    });
}

/// This host has no AppArmor and no SELinux. runc 1.1.5 fails too ("unable to apply apparmor
/// profile ... invalid argument", "selinux label is specified in config, but selinux is
/// disabled or not supported"), but its messages do not name the spec field: the field-path
/// check is runhcs-only.
#[test]
fn lsm_fields_without_lsm_fail() {
    each_runtime(|rt| {
        for (field, ptr, value) in [
            (
                "process.apparmorProfile",
                "/process/apparmorProfile",
                "wt-profile",
            ),
            (
                "process.selinuxLabel",
                "/process/selinuxLabel",
                "system_u:system_r:container_t:s0",
            ),
        ] {
            let mut b = Bundle::busybox();
            b.set(ptr, json!(value));
            b.args(&["true"]);
            let out = rt.container(&b).run().fails();
            if rt.is_runhcs() {
                // runhcs-only: the error names the field (runc's does not).
                assert!(out.stderr.contains(field), "error must name {field}: {out}");
            }
        }
    });
}
