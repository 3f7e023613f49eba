#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `network connect` / `disconnect` through the real docker CLI: running containers gain and
//! lose networks, peers find each other by name on every network they share, and networks
//! stay apart from each other otherwise.

mod common;

fn serve(text: &str) -> String {
    format!("echo {text} > /tmp/index.html; httpd -f -p 80 -h /tmp")
}

/// What `app` gets from `http://<target>/` (wget's stderr on failure).
fn fetch(d: &common::Daemon, ctr: &str, target: &str) -> String {
    let url = format!("http://{target}/index.html");
    let o = d.docker(&["exec", ctr, "timeout", "3", "wget", "-qO-", &url]);
    if o.status.success() {
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    } else {
        format!("failed: {}", String::from_utf8_lossy(&o.stderr).trim())
    }
}

/// Asserts that `ctr` gets `want` from `target`, allowing the server a moment to start.
fn reaches(d: &common::Daemon, ctr: &str, target: &str, want: &str) {
    let mut got = String::new();
    for _ in 0..30 {
        got = fetch(d, ctr, target);
        if got == want {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{ctr} -> {target}: got {got:?}, want {want:?}");
}

fn ip_on(d: &common::Daemon, ctr: &str, net: &str) -> String {
    let f = format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}");
    d.ok(&["inspect", "--format", &f, ctr]).trim().to_string()
}

fn networks_of(d: &common::Daemon, ctr: &str) -> String {
    let f = "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}";
    d.ok(&["inspect", "--format", f, ctr]).trim().to_string()
}

#[test]
fn running_containers_connect_and_disconnect() {
    let Some(d) = common::daemon("n") else { return };
    d.import_busybox();
    d.ok(&["network", "create", "front"]);
    d.ok(&["network", "create", "back"]);
    for (name, net) in [("web", "front"), ("api", "back")] {
        d.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            net,
            "busybox",
            "sh",
            "-c",
            &serve(name),
        ]);
    }
    d.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "--network",
        "front",
        "busybox",
        "sleep",
        "1000",
    ]);
    let api_ip = ip_on(&d, "api", "back");

    // On front only: web by name, nothing of back, not even by address.
    reaches(&d, "app", "web", "web");
    assert!(fetch(&d, "app", &api_ip).starts_with("failed"));

    // Connected to back while running: a second interface, and api by name and address.
    d.ok(&["network", "connect", "back", "app"]);
    assert_eq!(networks_of(&d, "app"), "back front");
    let links = d.ok(&["exec", "app", "ip", "-o", "-4", "addr", "show"]);
    let app_back = ip_on(&d, "app", "back");
    assert!(
        links.contains("eth1") && links.contains(&format!("{app_back}/")),
        "{links}"
    );
    reaches(&d, "app", "api", "api");
    reaches(&d, "app", &api_ip, "api");
    // Both responders know the newcomer, each by its address on their network.
    let ns = d.ok(&["exec", "api", "nslookup", "app"]);
    assert!(ns.contains(&app_back), "nslookup app from api: {ns}");
    let ns = d.ok(&["exec", "app", "nslookup", "api"]);
    assert!(ns.contains(&api_ip), "nslookup api from app: {ns}");
    // web is still on front only.
    assert!(fetch(&d, "web", &api_ip).starts_with("failed"));

    // Twice is refused, and so are containers on the host's stack or unknown networks.
    let o = d.docker(&["network", "connect", "back", "app"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already exists in network back"),
        "{o:?}"
    );
    d.ok(&[
        "create",
        "--name",
        "hosty",
        "--network",
        "host",
        "busybox",
        "true",
    ]);
    let o = d.docker(&["network", "connect", "back", "hosty"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("hosty"),
        "{o:?}"
    );
    let o = d.docker(&["network", "disconnect", "back", "web"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not connected to network back"),
        "{o:?}"
    );

    // Disconnected from its first network: front is gone, back stays and carries on.
    d.ok(&["network", "disconnect", "front", "app"]);
    assert_eq!(networks_of(&d, "app"), "back");
    // It forgets front's peers, and names on back still resolve through DNS.
    let hosts = d.ok(&["exec", "app", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("web"), "{hosts}");
    let ns = d.ok(&["exec", "app", "nslookup", "api"]);
    assert!(
        ns.contains(&api_ip),
        "nslookup api after leaving front: {ns}"
    );
    assert!(fetch(&d, "app", "web").starts_with("failed"));
    reaches(&d, "app", "api", "api");
    // front has no endpoint of app left.
    let members = d.ok(&[
        "network",
        "inspect",
        "--format",
        "{{len .Containers}}",
        "front",
    ]);
    assert_eq!(members.trim(), "1");

    // With no network left it still runs.
    d.ok(&["network", "disconnect", "back", "app"]);
    assert_eq!(networks_of(&d, "app"), "");
    assert_eq!(d.ok(&["exec", "app", "echo", "alive"]), "alive\n");

    // A stopped container joins its networks when it starts; so does `--network a
    // --network b` at create.
    d.ok(&[
        "create",
        "--name",
        "later",
        "--network",
        "front",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.ok(&["network", "connect", "back", "later"]);
    assert_eq!(networks_of(&d, "later"), "back front");
    d.ok(&["start", "later"]);
    reaches(&d, "later", "web", "web");
    reaches(&d, "later", "api", "api");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "both",
        "--network",
        "front",
        "--network",
        "back",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(networks_of(&d, "both"), "back front");
    reaches(&d, "both", "api", "api");
    reaches(&d, "both", "web", "web");

    // After rm, nothing of the containers is left on the networks: both can be removed.
    d.ok(&["rm", "-f", "web", "api", "app", "later", "both", "hosty"]);
    d.ok(&["network", "rm", "front", "back"]);
}

#[test]
fn aliases_and_fixed_addresses() {
    let Some(d) = common::daemon("a") else { return };
    d.import_busybox();
    d.ok(&["network", "create", "--subnet", "10.251.3.0/24", "svcnet"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "svc-1",
        "--network",
        "svcnet",
        "--network-alias",
        "svc",
        "--ip",
        "10.251.3.50",
        "busybox",
        "sh",
        "-c",
        &serve("svc-1"),
    ]);
    assert_eq!(ip_on(&d, "svc-1", "svcnet"), "10.251.3.50");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "svcnet",
        "busybox",
        "sleep",
        "1000",
    ]);
    // The alias answers through /etc/hosts and through the DNS responder.
    reaches(&d, "client", "svc", "svc-1");
    let ns = d.ok(&["exec", "client", "nslookup", "svc"]);
    assert!(ns.contains("10.251.3.50"), "nslookup svc: {ns}");

    // An alias given at connect, on a running container.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "busybox",
        "sh",
        "-c",
        &serve("late"),
    ]);
    d.ok(&["network", "connect", "--alias", "backup", "svcnet", "late"]);
    reaches(&d, "client", "backup", "late");

    // A fixed address that is taken, or outside the subnet, is refused by name.
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "dup",
        "--network",
        "svcnet",
        "--ip",
        "10.251.3.50",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("10.251.3.50") && err.contains("in use"),
        "{err}"
    );
    let o = d.docker(&[
        "create",
        "--network",
        "svcnet",
        "--ip",
        "not-an-ip",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());

    d.ok(&["rm", "-f", "svc-1", "client", "late", "dup"]);
    d.ok(&["network", "rm", "svcnet"]);
}
