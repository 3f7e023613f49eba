#![allow(clippy::expect_used, clippy::unwrap_used)]
//! End-to-end network tests with real traffic, each in its own lab of namespaces.

mod lab;

use hns::{
    AclAction, AclDirection, AclPolicySetting, EndpointPolicy, ErrorKind, HostComputeEndpoint,
    HostComputeNetwork, PortMappingPolicySetting,
};
use lab::{connect, container, endpoint, seen, serve, HOST_IP, UPSTREAM_IP};

fn network(name: &str, ty: &str, subnet: &str) -> HostComputeNetwork {
    lab::network(name, ty, &[subnet])
}

fn ip_of(ep: &HostComputeEndpoint) -> String {
    lab::addr_of(ep, false)
}

#[test]
fn nat_network_traffic_port_mappings_and_exact_endpoint_removal() {
    let Some(lab) = lab::lab("n") else { return };
    let svc = lab.service();
    svc.create_network(network("nat", "NAT", "10.233.1.0/24"))
        .unwrap();
    let web = endpoint(
        "web",
        "nat",
        vec![EndpointPolicy::PortMapping(PortMappingPolicySetting {
            protocol: 6,
            internal_port: 80,
            external_port: 8080,
            ..Default::default()
        })],
    );
    let (web, web_ns) = container(&svc, web);
    let (db, db_ns) = container(&svc, endpoint("db", "nat", vec![]));
    assert_ne!(ip_of(&web), ip_of(&db));

    // Two endpoints on one network reach each other, source unchanged.
    let rx = serve(&db_ns, 7000, 1);
    assert_eq!(
        connect(&web_ns, &format!("{}:7000", ip_of(&db))).unwrap(),
        "hello"
    );
    assert_eq!(seen(&rx), ip_of(&web));

    // Outbound NAT: upstream sees the host's address, not the container's.
    let rx = serve(&lab.upstream_path(), 9000, 1);
    assert_eq!(
        connect(&web_ns, &format!("{UPSTREAM_IP}:9000")).unwrap(),
        "hello"
    );
    assert_eq!(seen(&rx), HOST_IP);

    // Published port: from upstream (client address kept), from the host via localhost and
    // its own address, and hairpin from the container itself and from its neighbour.
    let rx = serve(&web_ns, 80, 5);
    assert_eq!(
        connect(&lab.upstream_path(), &format!("{HOST_IP}:8080")).unwrap(),
        "hello"
    );
    assert_eq!(seen(&rx), UPSTREAM_IP);
    assert_eq!(
        connect(&lab.host_path(), "127.0.0.1:8080").unwrap(),
        "hello"
    );
    seen(&rx);
    assert_eq!(
        connect(&lab.host_path(), &format!("{HOST_IP}:8080")).unwrap(),
        "hello"
    );
    seen(&rx);
    assert_eq!(
        connect(&web_ns, &format!("{HOST_IP}:8080")).unwrap(),
        "hello"
    );
    seen(&rx);
    assert_eq!(
        connect(&db_ns, &format!("{HOST_IP}:8080")).unwrap(),
        "hello"
    );
    seen(&rx);

    // Deleting an endpoint removes exactly its rules, its link and its address.
    let before = lab.nft_list();
    assert!(before.contains("dnat to"), "{before}");
    let db_tag = format!("ep:{}", db.id);
    let web_tag = format!("ep:{}", web.id);
    svc.delete_endpoint("db").unwrap();
    for chain in [
        "prerouting",
        "output",
        "postrouting",
        "forward",
        "filter_input",
        "filter_output",
    ] {
        let tags = svc.rule_tags(chain).unwrap();
        assert!(!tags.contains(&db_tag), "{chain}: {tags:?}");
    }
    assert_eq!(
        svc.rule_tags("prerouting").unwrap(),
        vec![web_tag.clone()],
        "web's mapping stays"
    );
    assert_eq!(
        lab.nft_list(),
        before,
        "db had no rules; nothing else changed"
    );
    let nets = svc.list_networks().unwrap();
    assert!(svc.get_endpoint("db").is_err());
    assert_eq!(svc.list_endpoints().unwrap().len(), 1);
    // Its address is free again: it can be requested explicitly.
    let mut again = endpoint("db2", "nat", vec![]);
    again.ip_configurations = vec![hns::IpConfig {
        ip_address: ip_of(&db),
        prefix_length: 24,
    }];
    let again = svc.create_endpoint(again).unwrap();
    assert_eq!(ip_of(&again), ip_of(&db));
    // ... and while it is in use, not twice.
    let mut dup = endpoint("db3", "nat", vec![]);
    dup.ip_configurations = again.ip_configurations.clone();
    let err = svc.create_endpoint(dup).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(
        err.to_string(),
        format!(
            "create endpoint db3 on network nat: address {} in use",
            ip_of(&db)
        )
    );

    // Removing the endpoint with the mapping removes its rules too; the network's stay.
    svc.delete_endpoint(&again.id).unwrap();
    let ns_of_web = svc.get_endpoint("web").unwrap().host_compute_namespace;
    let err = svc.delete_network("nat").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert!(
        err.to_string().contains("still has endpoints: web"),
        "{err}"
    );
    svc.detach(&ns_of_web, "web").unwrap();
    svc.delete_endpoint("web").unwrap();
    assert!(svc.rule_tags("prerouting").unwrap().is_empty());
    assert_eq!(
        svc.rule_tags("postrouting").unwrap(),
        vec![format!("net:{}", nets[0].id); 3]
    );
    svc.delete_network("nat").unwrap();
    assert!(svc.rule_tags("postrouting").unwrap().is_empty());
}

#[test]
fn private_network_has_no_route_out() {
    let Some(lab) = lab::lab("p") else { return };
    let svc = lab.service();
    svc.create_network(network("priv", "Private", "10.233.2.0/24"))
        .unwrap();
    let (a, a_ns) = container(&svc, endpoint("a", "priv", vec![]));
    let (_b, b_ns) = container(&svc, endpoint("b", "priv", vec![]));
    let _rx = serve(&lab.upstream_path(), 9000, 1);
    assert!(connect(&a_ns, &format!("{UPSTREAM_IP}:9000")).is_err());
    // Inside the network traffic flows.
    let rx = serve(&a_ns, 7000, 1);
    assert_eq!(
        connect(&b_ns, &format!("{}:7000", ip_of(&a))).unwrap(),
        "hello"
    );
    seen(&rx);
}

#[test]
fn acl_block_drops_what_it_names_and_nothing_else() {
    let Some(lab) = lab::lab("a") else { return };
    let svc = lab.service();
    svc.create_network(network("nat", "NAT", "10.233.3.0/24"))
        .unwrap();
    let acl = EndpointPolicy::Acl(AclPolicySetting {
        protocols: "6".into(),
        action: AclAction::Block,
        direction: AclDirection::Out,
        remote_addresses: UPSTREAM_IP.into(),
        remote_ports: "9001".into(),
        priority: 100,
        ..Default::default()
    });
    let (_a, a_ns) = container(&svc, endpoint("a", "nat", vec![acl]));
    let (_b, b_ns) = container(&svc, endpoint("b", "nat", vec![]));
    let _blocked = serve(&lab.upstream_path(), 9001, 2);
    let open = serve(&lab.upstream_path(), 9002, 1);
    assert!(
        connect(&a_ns, &format!("{UPSTREAM_IP}:9001")).is_err(),
        "blocked port"
    );
    assert_eq!(
        connect(&a_ns, &format!("{UPSTREAM_IP}:9002")).unwrap(),
        "hello"
    );
    seen(&open);
    // Another endpoint is not affected by a's ACL.
    assert_eq!(
        connect(&b_ns, &format!("{UPSTREAM_IP}:9001")).unwrap(),
        "hello"
    );
}

#[test]
fn restart_finds_objects_and_reboot_recreates_the_host_side() {
    let Some(lab) = lab::lab("r") else { return };
    let svc = lab.service();
    let net = svc
        .create_network(network("nat", "NAT", "10.233.4.0/24"))
        .unwrap();
    let (ep, ns_path) = container(&svc, endpoint("web", "nat", vec![]));
    let ns_id = ep.host_compute_namespace.clone();
    let rules = lab.nft_list();
    drop(svc);

    // Restart: same objects, same rules, traffic still flows.
    let svc = lab.service();
    assert_eq!(svc.get_network("nat").unwrap(), net);
    assert_eq!(svc.get_endpoint("web").unwrap(), ep);
    assert_eq!(
        svc.get_namespace(&ns_id).unwrap().resources[0].data.id,
        ep.id
    );
    assert_eq!(lab.nft_list(), rules);
    let rx = serve(&lab.upstream_path(), 9000, 2);
    assert_eq!(
        connect(&ns_path, &format!("{UPSTREAM_IP}:9000")).unwrap(),
        "hello"
    );
    assert_eq!(seen(&rx), HOST_IP);
    drop(svc);

    // "Reboot": the switch, the host's interface, the namespace and the table are gone.
    let run = |args: &[&str]| {
        let st = std::process::Command::new("ip")
            .args(["netns", "exec", &lab.host])
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "{args:?}");
    };
    let short: String = net
        .id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(10)
        .collect();
    run(&["ip", "link", "del", &format!("wh-{short}")]);
    run(&["ip", "link", "del", &format!("wl{short}")]);
    run(&["nft", "delete", "table", "ip", "wharf"]);
    hns::linux::netns::remove_pinned(&ns_path).unwrap();
    std::fs::write(&ns_path, b"").unwrap(); // a stale file, as after a reboot of /run
    let svc = lab.service();
    assert_eq!(lab.nft_list(), rules);
    assert!(hns::linux::netns::is_pinned(&ns_path));
    assert_eq!(
        connect(&ns_path, &format!("{UPSTREAM_IP}:9000")).unwrap(),
        "hello"
    );
    assert_eq!(seen(&rx), HOST_IP);
    svc.detach(&ns_id, "web").unwrap();
    svc.delete_endpoint("web").unwrap();
    svc.delete_namespace(&ns_id).unwrap();
    svc.delete_network("nat").unwrap();
}

#[test]
fn errors_name_the_operation_and_object() {
    let Some(lab) = lab::lab("e") else { return };
    let svc = lab.service();
    let e = svc.delete_network("nope").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        "delete network nope: network \"nope\" not found"
    );
    let e = svc
        .create_endpoint(endpoint("x", "nope", vec![]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = svc
        .create_network(network("o", "Overlay", "10.233.5.0/24"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    svc.create_network(network("a", "NAT", "10.233.5.0/24"))
        .unwrap();
    let e = svc
        .create_network(network("b", "NAT", "10.233.5.128/25"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition, "{e}");
    let e = svc
        .create_network(network("a", "NAT", "10.233.6.0/24"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    svc.delete_network("a").unwrap();
}

#[test]
fn transparent_endpoint_is_on_the_upstream_l2() {
    let Some(lab) = lab::lab("t") else { return };
    let svc = lab.service();
    // The host's link to upstream is the "host interface"; upstream is the router.
    let net: HostComputeNetwork = serde_json::from_value(serde_json::json!({
        "Name": "tr", "Type": "Transparent",
        "Policies": [{"Type": "NetAdapterName", "Settings": {"NetworkAdapterName": lab.host_if}}],
        "Ipams": [{"Subnets": [{"IpAddressPrefix": "198.18.0.0/24",
            "Routes": [{"NextHop": UPSTREAM_IP, "DestinationPrefix": "0.0.0.0/0"}]}]}]
    }))
    .unwrap();
    svc.create_network(net).unwrap();
    let mut ep = endpoint("ctr", "tr", vec![]);
    ep.ip_configurations = vec![hns::IpConfig {
        ip_address: "198.18.0.50".into(),
        prefix_length: 24,
    }];
    let (ep, ns) = container(&svc, ep);
    assert!(svc.rule_tags("postrouting").unwrap().is_empty(), "no NAT");

    // Upstream reaches the container's own address directly, and sees it as it is.
    let rx = serve(&ns, 7000, 1);
    assert_eq!(
        connect(&lab.upstream_path(), "198.18.0.50:7000").unwrap(),
        "hello"
    );
    assert_eq!(seen(&rx), UPSTREAM_IP);
    let rx = serve(&lab.upstream_path(), 9000, 1);
    assert_eq!(
        connect(&ns, &format!("{UPSTREAM_IP}:9000")).unwrap(),
        "hello"
    );
    assert_eq!(seen(&rx), "198.18.0.50");
    // On the same L2: upstream resolved the address to the endpoint's own MAC.
    let o = std::process::Command::new("ip")
        .args(["-n", &lab.upstream, "neigh", "show", "198.18.0.50"])
        .output()
        .unwrap();
    let neigh = String::from_utf8_lossy(&o.stdout).to_lowercase();
    let mac = ep.mac_address.replace('-', ":").to_lowercase();
    assert!(neigh.contains(&mac), "{neigh} should name {mac}");

    // Detached, the address is gone from the L2.
    svc.detach(&ep.host_compute_namespace, "ctr").unwrap();
    assert!(connect(&lab.upstream_path(), "198.18.0.50:7000").is_err());
    svc.delete_endpoint("ctr").unwrap();
    svc.delete_network("tr").unwrap();
}

#[test]
fn acls_apply_between_container_and_host() {
    let Some(lab) = lab::lab("h") else { return };
    let svc = lab.service();
    svc.create_network(network("nat", "NAT", "10.233.8.0/24"))
        .unwrap();
    let gw = "10.233.8.1";
    let block_out = EndpointPolicy::Acl(AclPolicySetting {
        protocols: "6".into(),
        action: AclAction::Block,
        direction: AclDirection::Out,
        remote_addresses: gw.into(),
        remote_ports: "9100".into(),
        priority: 100,
        ..Default::default()
    });
    let block_in = EndpointPolicy::Acl(AclPolicySetting {
        protocols: "6".into(),
        action: AclAction::Block,
        direction: AclDirection::In,
        local_ports: "7001".into(),
        priority: 100,
        ..Default::default()
    });
    let (a, a_ns) = container(&svc, endpoint("a", "nat", vec![block_out, block_in]));
    let (b, b_ns) = container(&svc, endpoint("b", "nat", vec![]));

    // Container → host: only a's named port on the host is blocked, and only for a.
    let _blocked = serve(&lab.host_path(), 9100, 2);
    let open = serve(&lab.host_path(), 9101, 1);
    assert!(
        connect(&a_ns, &format!("{gw}:9100")).is_err(),
        "a → host:9100"
    );
    assert_eq!(connect(&a_ns, &format!("{gw}:9101")).unwrap(), "hello");
    assert_eq!(seen(&open), ip_of(&a));
    assert_eq!(connect(&b_ns, &format!("{gw}:9100")).unwrap(), "hello");

    // Host → container: a's port 7001 is blocked, its 7002 and b's 7001 are not.
    let _a7001 = serve(&a_ns, 7001, 1);
    let a7002 = serve(&a_ns, 7002, 1);
    let b7001 = serve(&b_ns, 7001, 1);
    let a_ip = ip_of(&a);
    assert!(
        connect(&lab.host_path(), &format!("{a_ip}:7001")).is_err(),
        "host → a:7001"
    );
    assert_eq!(
        connect(&lab.host_path(), &format!("{a_ip}:7002")).unwrap(),
        "hello"
    );
    seen(&a7002);
    assert_eq!(
        connect(&lab.host_path(), &format!("{}:7001", ip_of(&b))).unwrap(),
        "hello"
    );
    seen(&b7001);
    let tag = format!("ep:{}", a.id);
    assert!(svc.rule_tags("filter_input").unwrap().contains(&tag));
    assert!(svc.rule_tags("filter_output").unwrap().contains(&tag));
}

#[test]
fn acls_apply_between_neighbours_on_one_network() {
    let Some(lab) = lab::lab("b") else { return };
    let svc = lab.service();
    svc.create_network(network("nat", "NAT", "10.233.9.0/24"))
        .unwrap();
    let block_in = EndpointPolicy::Acl(AclPolicySetting {
        protocols: "6".into(),
        action: AclAction::Block,
        direction: AclDirection::In,
        local_ports: "7003".into(),
        priority: 100,
        ..Default::default()
    });
    let (a, a_ns) = container(&svc, endpoint("a", "nat", vec![block_in]));
    let (b, b_ns) = container(&svc, endpoint("b", "nat", vec![]));
    let block_out = EndpointPolicy::Acl(AclPolicySetting {
        protocols: "6".into(),
        action: AclAction::Block,
        direction: AclDirection::Out,
        remote_addresses: ip_of(&b),
        remote_ports: "7005".into(),
        priority: 100,
        ..Default::default()
    });
    let (_c, c_ns) = container(&svc, endpoint("c", "nat", vec![block_out]));

    // Inbound on a: its port 7003 is closed to a neighbour, 7004 is not.
    let a7003 = serve(&a_ns, 7003, 1);
    let a7004 = serve(&a_ns, 7004, 1);
    assert!(connect(&b_ns, &format!("{}:7003", ip_of(&a))).is_err());
    assert_eq!(
        connect(&b_ns, &format!("{}:7004", ip_of(&a))).unwrap(),
        "hello"
    );
    seen(&a7004);
    // Outbound from c: b's 7005 is blocked for c, and only for c.
    let b7005 = serve(&b_ns, 7005, 1);
    assert!(connect(&c_ns, &format!("{}:7005", ip_of(&b))).is_err());
    assert_eq!(
        connect(&a_ns, &format!("{}:7005", ip_of(&b))).unwrap(),
        "hello"
    );
    seen(&b7005);

    // Detached and attached again without ACLs, nothing of them is left.
    let ns = a.host_compute_namespace.clone();
    svc.detach(&ns, &a.id).unwrap();
    svc.delete_endpoint(&a.id).unwrap();
    // Same address again, so a rule left behind for it would still match.
    let mut again = endpoint("a2", "nat", vec![]);
    again.ip_configurations = vec![hns::IpConfig {
        ip_address: ip_of(&a),
        prefix_length: 0,
    }];
    let plain = svc.create_endpoint(again).unwrap();
    assert_eq!(ip_of(&plain), ip_of(&a));
    svc.attach(&ns, &plain.id).unwrap();
    let plain = svc.get_endpoint(&plain.id).unwrap();
    assert_eq!(
        connect(&b_ns, &format!("{}:7003", ip_of(&plain))).unwrap(),
        "hello"
    );
    seen(&a7003);
}
