#![allow(clippy::expect_used, clippy::unwrap_used)]
//! With no daemon on the default socket, `wharf` starts wharfd in the background and goes on.
//! The test runs in its own mount namespace (tmpfs over /run, /var/lib and /var/log, so the
//! default paths are private) and network namespace, and stops the daemon it caused.

mod common;

use std::process::Command;

#[test]
fn starts_wharfd_when_the_default_socket_is_silent() {
    if !common::is_root() {
        return;
    }
    let ns = common::Netns::new("a");
    let script = format!(
        r#"mount -t tmpfs wharf-test /run && mount -t tmpfs wharf-test /var/lib && mount -t tmpfs wharf-test /var/log || exit 90
W={wharf}
$W version --format '{{{{.Server.ApiVersion}}}}' 2>/run/err; rc=$?
cat /run/err >&2
pid=$(sed -n 's/.*(pid \([0-9]*\),.*/\1/p' /run/err)
$W info --format 'root={{{{.DockerRootDir}}}}'
test -S /run/wharf/wharf.sock && echo socket-ok
test -s /var/log/wharfd.log && echo log-ok
if [ -n "$pid" ]; then
  kill $pid
  for i in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
fi
exit $rc"#,
        wharf = common::wharf_bin().display()
    );
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "nsenter"])
        .arg(format!("--net=/run/netns/{}", ns.0))
        .args(["--", "sh", "-c", &script])
        .env_remove("DOCKER_HOST")
        .env_remove("WHARF_HOST")
        .output()
        .expect("unshare");
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {out}\nstderr: {err}",
        o.status.code()
    );
    assert!(err.contains("wharf: started wharfd (pid "), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["1.50", "root=/var/lib/wharf", "socket-ok", "log-ok"],
        "stderr: {err}"
    );
}
