#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The docker scenario through `wharf`: two containers on a user network reaching each other
//! by name, a published port fetched from the host, a volume carrying data between
//! containers, and `logs -f` following a running container.

mod common;

use std::io::Read;
use std::time::Duration;

/// `ctr` fetching `url` with busybox wget, retried while the server starts.
fn fetch(d: &common::Daemon, args: &[&str], want: &str) {
    let mut got = String::new();
    for _ in 0..50 {
        let o = d.wharf(args);
        got = String::from_utf8_lossy(&o.stdout).into_owned();
        if got == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{args:?}: got {got:?}, want {want:?}\n{}", d.log());
}

#[test]
fn network_names_published_ports_volumes_and_follow() {
    let Some(d) = common::daemon("s") else { return };
    d.import_busybox();

    // Two containers on a user network, by name.
    d.ok(&["network", "create", "scn-net"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "scn-db",
        "--network",
        "scn-net",
        "--network-alias",
        "database",
        "busybox",
        "sh",
        "-c",
        "echo from-db > /tmp/index.html; httpd -f -p 80 -h /tmp",
    ]);
    // By its name and by its alias.
    for host in ["scn-db", "database"] {
        let url = format!("http://{host}/index.html");
        fetch(
            &d,
            &[
                "run",
                "--rm",
                "--network",
                "scn-net",
                "busybox",
                "wget",
                "-qO-",
                &url,
            ],
            "from-db\n",
        );
    }

    // A published port, from the daemon's host via localhost.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "scn-web",
        "-p",
        "18181:80",
        "busybox",
        "sh",
        "-c",
        "echo from-web > /tmp/index.html; httpd -f -p 80 -h /tmp",
    ]);
    let mut body = String::new();
    for _ in 0..50 {
        let o = d.in_netns(&[
            "busybox",
            "wget",
            "-qO-",
            "http://127.0.0.1:18181/index.html",
        ]);
        body = String::from_utf8_lossy(&o.stdout).into_owned();
        if body == "from-web\n" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(body, "from-web\n");

    // A named volume carries data from one container to the next.
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "scn-vol:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "scn-vol:/data:ro",
            "busybox",
            "cat",
            "/data/f"
        ]),
        "kept\n"
    );

    // logs -f follows a running container and ends when it exits.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "scn-tick",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo tick $i; sleep 0.3; done",
    ]);
    let mut follow = d.spawn(&["logs", "-f", "scn-tick"]);
    let mut out = String::new();
    follow
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(follow.wait().unwrap().success());
    assert_eq!(out, "tick 1\ntick 2\ntick 3\n");

    d.ok(&["rm", "-f", "scn-db", "scn-web", "scn-tick"]);
    d.ok(&["network", "rm", "scn-net"]);
    d.ok(&["volume", "rm", "scn-vol"]);
}
