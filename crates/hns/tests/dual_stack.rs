#![allow(clippy::expect_used, clippy::unwrap_used)]
//! IPv6 dual-stack networks, with real traffic inside a lab of namespaces.

mod lab;

use hns::{EndpointPolicy, PortMappingPolicySetting};
use lab::{
    addr_of, connect, container, endpoint, network, seen, serve_on, HOST_IP, HOST_IP6, UPSTREAM_IP,
    UPSTREAM_IP6,
};

#[test]
fn dual_stack_endpoints_reach_each_other_upstream_and_published_ports_over_ipv6() {
    let Some(lab) = lab::lab("6") else { return };
    lab.warm_ipv6();
    let svc = lab.service();
    // IPv6 listed first: the IPv4 subnet is still found, and both are recorded with gateways.
    let net = svc
        .create_network(network("ds", "NAT", &["fd00:233:7::/64", "10.233.7.0/24"]))
        .unwrap();
    let routes: Vec<_> = net.ipams[0]
        .subnets
        .iter()
        .map(|s| (s.ip_address_prefix.clone(), s.routes[0].next_hop.clone()))
        .collect();
    assert_eq!(
        routes,
        vec![
            ("fd00:233:7::/64".to_string(), "fd00:233:7::1".to_string()),
            ("10.233.7.0/24".to_string(), "10.233.7.1".to_string()),
        ]
    );
    let web = endpoint(
        "web",
        "ds",
        vec![EndpointPolicy::PortMapping(PortMappingPolicySetting {
            protocol: 6,
            internal_port: 80,
            external_port: 8080,
            ..Default::default()
        })],
    );
    let (web, web_ns) = container(&svc, web);
    let (db, db_ns) = container(&svc, endpoint("db", "ds", vec![]));
    let (web6, db6) = (addr_of(&web, true), addr_of(&db, true));
    assert!(
        web6.starts_with("fd00:233:7::") && web6 != db6,
        "{web6} {db6}"
    );
    assert_eq!(web.ip_configurations[1].prefix_length, 64);

    // Endpoint to endpoint over IPv6, source kept.
    let rx = serve_on(&db_ns, "::", 7000, 1);
    assert_eq!(connect(&web_ns, &format!("[{db6}]:7000")).unwrap(), "hello");
    assert_eq!(seen(&rx), web6);

    // To upstream over IPv6 with the source rewritten to the host's address; IPv4 still too.
    let rx = serve_on(&lab.upstream_path(), "::", 9000, 1);
    assert_eq!(
        connect(&web_ns, &format!("[{UPSTREAM_IP6}]:9000")).unwrap(),
        "hello"
    );
    assert_eq!(seen(&rx), HOST_IP6);
    let rx = serve_on(&lab.upstream_path(), UPSTREAM_IP, 9001, 1);
    assert_eq!(
        connect(&db_ns, &format!("{UPSTREAM_IP}:9001")).unwrap(),
        "hello"
    );
    assert_eq!(seen(&rx), HOST_IP);

    // The published port answers on the host's IPv6 address, from upstream (client kept)
    // and hairpin from the neighbour.
    let rx = serve_on(&web_ns, "::", 80, 2);
    assert_eq!(
        connect(&lab.upstream_path(), &format!("[{HOST_IP6}]:8080")).unwrap(),
        "hello"
    );
    assert_eq!(seen(&rx), UPSTREAM_IP6);
    assert_eq!(
        connect(&db_ns, &format!("[{HOST_IP6}]:8080")).unwrap(),
        "hello"
    );
    seen(&rx);

    // The ip6 table is ours alone and holds the endpoint's rules until it is deleted.
    let rules6 = lab.nft_list_family("ip6");
    assert!(rules6.contains("dnat to [fd00:233:7::"), "{rules6}");
    assert!(rules6.contains("masquerade"), "{rules6}");
    let tag = format!("ep:{}", web.id);
    assert!(svc.rule_tags("prerouting").unwrap().contains(&tag));
    svc.detach(&web.host_compute_namespace, "web").unwrap();
    svc.delete_endpoint("web").unwrap();
    for chain in ["prerouting", "output", "postrouting", "forward"] {
        assert!(!svc.rule_tags(chain).unwrap().contains(&tag), "{chain}");
    }
    assert!(!lab.nft_list_family("ip6").contains("dnat to"));
    // Its IPv6 address is free again and can be asked for explicitly.
    let mut again = endpoint("again", "ds", vec![]);
    again.ip_configurations = vec![hns::IpConfig {
        ip_address: web6.clone(),
        prefix_length: 64,
    }];
    let again = svc.create_endpoint(again).unwrap();
    assert_eq!(addr_of(&again, true), web6);
    assert!(addr_of(&again, false).starts_with("10.233.7."));
}
