#![allow(clippy::expect_used, clippy::unwrap_used)]
//! One namespace on two networks: each endpoint gets its own interface, traffic reaches both
//! networks, and the default route moves when the endpoint that held it is detached.

mod lab;

use hns::{ErrorKind, HostComputeEndpoint, HostComputeNamespace};
use lab::{connect, container, endpoint, seen, serve, HOST_IP, UPSTREAM_IP};

fn ip_of(ep: &HostComputeEndpoint) -> String {
    lab::addr_of(ep, false)
}

#[test]
fn a_namespace_on_two_networks_reaches_both_and_keeps_a_default_route() {
    let Some(lab) = lab::lab("m") else { return };
    let svc = lab.service();
    svc.create_network(lab::network("front", "NAT", &["10.233.7.0/24"]))
        .unwrap();
    svc.create_network(lab::network("back", "NAT", &["10.233.8.0/24"]))
        .unwrap();
    let (front_peer, front_ns) = container(&svc, endpoint("fp", "front", vec![]));
    let (back_peer, back_ns) = container(&svc, endpoint("bp", "back", vec![]));

    // Both endpoints of one namespace, the second without a name of its own.
    let ns = svc
        .create_namespace(HostComputeNamespace::default())
        .unwrap();
    let x_ns = svc.namespace_path(&ns.id);
    let xf = svc
        .create_endpoint(endpoint("xf", "front", vec![]))
        .unwrap();
    let xb = svc.create_endpoint(endpoint("xb", "back", vec![])).unwrap();
    svc.attach(&ns.id, &xf.id).unwrap();
    svc.attach(&ns.id, &xb.id).unwrap();
    let xf = svc.get_endpoint(&xf.id).unwrap();
    let xb = svc.get_endpoint(&xb.id).unwrap();
    assert_eq!(xf.interface_name, "eth0");
    assert_eq!(xb.interface_name, "eth1");

    // Each network's peer sees the address the namespace has on that network.
    let rx = serve(&front_ns, 7000, 1);
    assert_eq!(
        connect(&x_ns, &format!("{}:7000", ip_of(&front_peer))).unwrap(),
        "hello"
    );
    assert_eq!(seen(&rx), ip_of(&xf));
    let rx = serve(&back_ns, 7000, 2);
    assert_eq!(
        connect(&x_ns, &format!("{}:7000", ip_of(&back_peer))).unwrap(),
        "hello"
    );
    assert_eq!(seen(&rx), ip_of(&xb));
    // The networks stay apart for the peers: front's peer does not reach back's.
    assert!(connect(&front_ns, &format!("{}:7000", ip_of(&back_peer))).is_err());

    // Upstream is reached through the first network's gateway.
    let up = serve(&lab.upstream_path(), 9000, 2);
    assert_eq!(
        connect(&x_ns, &format!("{UPSTREAM_IP}:9000")).unwrap(),
        "hello"
    );
    assert_eq!(seen(&up), HOST_IP);

    // Detaching the first endpoint: its network is gone from the namespace, the second
    // one takes over the default route.
    svc.detach(&ns.id, &xf.id).unwrap();
    assert!(connect(&x_ns, &format!("{}:7000", ip_of(&front_peer))).is_err());
    assert_eq!(
        connect(&x_ns, &format!("{UPSTREAM_IP}:9000")).unwrap(),
        "hello"
    );
    assert_eq!(seen(&up), HOST_IP);
    assert_eq!(
        connect(&x_ns, &format!("{}:7000", ip_of(&back_peer))).unwrap(),
        "hello"
    );
    seen(&rx);

    // Attached again, it takes the lowest free name.
    svc.attach(&ns.id, &xf.id).unwrap();
    assert_eq!(svc.get_endpoint(&xf.id).unwrap().interface_name, "eth0");

    // A name asked for is used; one that is taken or malformed is refused by name.
    let named = svc
        .create_endpoint(HostComputeEndpoint {
            interface_name: "net1".into(),
            ..endpoint("named", "back", vec![])
        })
        .unwrap();
    svc.attach(&ns.id, &named.id).unwrap();
    assert_eq!(svc.get_endpoint(&named.id).unwrap().interface_name, "net1");
    let clash = svc
        .create_endpoint(HostComputeEndpoint {
            interface_name: "net1".into(),
            ..endpoint("clash", "front", vec![])
        })
        .unwrap();
    let e = svc.attach(&ns.id, &clash.id).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition, "{e}");
    assert!(e.to_string().contains("net1"), "{e}");
    let e = svc
        .create_endpoint(HostComputeEndpoint {
            interface_name: "../../x".into(),
            ..endpoint("bad", "front", vec![])
        })
        .unwrap_err();
    assert!(e.to_string().contains("InterfaceName"), "{e}");

    for ep in [&xf.id, &xb.id, &named.id] {
        svc.detach(&ns.id, ep).unwrap();
        svc.delete_endpoint(ep).unwrap();
    }
    svc.delete_endpoint(&clash.id).unwrap();
    svc.delete_namespace(&ns.id).unwrap();
}

#[test]
fn private_networks_give_no_route_renamed_links_still_go_and_acls_cannot_cross_networks() {
    let Some(lab) = lab::lab("q") else { return };
    let svc = lab.service();
    svc.create_network(lab::network("inner", "Private", &["10.233.10.0/24"]))
        .unwrap();
    svc.create_network(lab::network("outer", "NAT", &["10.233.11.0/24"]))
        .unwrap();
    svc.create_network(lab::network("other", "NAT", &["10.233.12.0/24"]))
        .unwrap();

    // Private first, NAT second: the way out is the NAT network's.
    let ns = svc
        .create_namespace(HostComputeNamespace::default())
        .unwrap();
    let x_ns = svc.namespace_path(&ns.id);
    let xi = svc
        .create_endpoint(endpoint("xi", "inner", vec![]))
        .unwrap();
    let xo = svc
        .create_endpoint(endpoint("xo", "outer", vec![]))
        .unwrap();
    svc.attach(&ns.id, &xi.id).unwrap();
    svc.attach(&ns.id, &xo.id).unwrap();
    let up = serve(&lab.upstream_path(), 9000, 1);
    assert_eq!(
        connect(&x_ns, &format!("{UPSTREAM_IP}:9000")).unwrap(),
        "hello"
    );
    assert_eq!(seen(&up), HOST_IP);

    // The namespace's owner renames its interface: detach still takes the link away.
    let st = std::process::Command::new("nsenter")
        .arg(format!("--net={}", x_ns.display()))
        .args(["ip", "link", "set", "eth1", "down", "name", "renamed"])
        .status()
        .unwrap();
    assert!(st.success());
    svc.detach(&ns.id, &xo.id).unwrap();
    let links = std::process::Command::new("nsenter")
        .arg(format!("--net={}", x_ns.display()))
        .args(["ip", "-o", "link", "show"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains("renamed"), "{links}");

    // An endpoint allowed everything outbound still does not reach another network.
    let allow_all = hns::EndpointPolicy::Acl(hns::AclPolicySetting {
        action: hns::AclAction::Allow,
        direction: hns::AclDirection::Out,
        priority: 100,
        ..Default::default()
    });
    let (_a, a_ns) = container(&svc, endpoint("a", "outer", vec![allow_all]));
    let (b, b_ns) = container(&svc, endpoint("b", "other", vec![]));
    let _rx = serve(&b_ns, 7000, 1);
    assert!(connect(&a_ns, &format!("{}:7000", ip_of(&b))).is_err());
}
