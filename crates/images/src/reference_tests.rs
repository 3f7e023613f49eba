#![allow(clippy::expect_used, clippy::unwrap_used)]
use super::*;

const H64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

#[test]
fn good_references() {
    let d = format!("sha256:{H64}");
    // input, domain, repository, tag, digest?, normalised string
    type Row<'a> = (String, &'a str, &'a str, Option<&'a str>, bool, String);
    let table: Vec<Row> = vec![
        (
            "busybox".into(),
            "docker.io",
            "library/busybox",
            Some("latest"),
            false,
            "docker.io/library/busybox:latest".into(),
        ),
        (
            "busybox:1.36".into(),
            "docker.io",
            "library/busybox",
            Some("1.36"),
            false,
            "docker.io/library/busybox:1.36".into(),
        ),
        (
            "user/app".into(),
            "docker.io",
            "user/app",
            Some("latest"),
            false,
            "docker.io/user/app:latest".into(),
        ),
        (
            "index.docker.io/busybox".into(),
            "docker.io",
            "library/busybox",
            Some("latest"),
            false,
            "docker.io/library/busybox:latest".into(),
        ),
        (
            "docker.io/library/busybox:latest".into(),
            "docker.io",
            "library/busybox",
            Some("latest"),
            false,
            "docker.io/library/busybox:latest".into(),
        ),
        (
            "localhost/app".into(),
            "localhost",
            "app",
            Some("latest"),
            false,
            "localhost/app:latest".into(),
        ),
        (
            "localhost:5000/a/b:tag".into(),
            "localhost:5000",
            "a/b",
            Some("tag"),
            false,
            "localhost:5000/a/b:tag".into(),
        ),
        (
            "test.com:5000/repo".into(),
            "test.com:5000",
            "repo",
            Some("latest"),
            false,
            "test.com:5000/repo:latest".into(),
        ),
        (
            "test.com:tag".into(),
            "docker.io",
            "library/test.com",
            Some("tag"),
            false,
            "docker.io/library/test.com:tag".into(),
        ),
        (
            "test.com:5000".into(),
            "docker.io",
            "library/test.com",
            Some("5000"),
            false,
            "docker.io/library/test.com:5000".into(),
        ),
        (
            format!("busybox@{d}"),
            "docker.io",
            "library/busybox",
            None,
            true,
            format!("docker.io/library/busybox@{d}"),
        ),
        (
            format!("test:5000/repo:tag@{d}"),
            "test:5000",
            "repo",
            Some("tag"),
            true,
            format!("test:5000/repo:tag@{d}"),
        ),
        (
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
            "sub-dom1.foo.com",
            "bar/baz/quux",
            Some("some-long-tag"),
            false,
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
        ),
        (
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
            "b.gcr.io",
            "test.example.com/my-app",
            Some("test.example.com"),
            false,
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
        ),
        (
            "xn--n3h.com/myimage:xn--n3h.com".into(),
            "xn--n3h.com",
            "myimage",
            Some("xn--n3h.com"),
            false,
            "xn--n3h.com/myimage:xn--n3h.com".into(),
        ),
        (
            "foo_bar.com:8080".into(),
            "docker.io",
            "library/foo_bar.com",
            Some("8080"),
            false,
            "docker.io/library/foo_bar.com:8080".into(),
        ),
        (
            "a/b__c/d-e--f.g".into(),
            "docker.io",
            "a/b__c/d-e--f.g",
            Some("latest"),
            false,
            "docker.io/a/b__c/d-e--f.g:latest".into(),
        ),
        (
            "[::1]:5000/x:Y_1".into(),
            "[::1]:5000",
            "x",
            Some("Y_1"),
            false,
            "[::1]:5000/x:Y_1".into(),
        ),
        (
            "lowercase:Uppercase".into(),
            "docker.io",
            "library/lowercase",
            Some("Uppercase"),
            false,
            "docker.io/library/lowercase:Uppercase".into(),
        ),
        (
            "Example.COM/app".into(),
            "Example.COM",
            "app",
            Some("latest"),
            false,
            "Example.COM/app:latest".into(),
        ),
    ];
    for (input, domain, repo, tag, has_digest, whole) in table {
        let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.domain(), domain, "{input}");
        assert_eq!(r.repository(), repo, "{input}");
        assert_eq!(r.tag(), tag, "{input}");
        assert_eq!(r.digest().is_some(), has_digest, "{input}");
        assert_eq!(r.to_string(), whole, "{input}");
        // Normalising is idempotent.
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r, "{input}");
    }
}

#[test]
fn bad_references() {
    let long = "a".repeat(256);
    let long_tag = format!("a:{}", "t".repeat(129));
    // input, part the error must name, a word of the reason
    let table: Vec<(String, &str, &str)> = vec![
        ("".into(), "name", "empty"),
        (":justtag".into(), "name", "empty"),
        (format!("@sha256:{H64}"), "name", "empty"),
        ("Uppercase:tag".into(), "name", "lowercase"),
        (
            "test:5000/Uppercase/lowercase:tag".into(),
            "name",
            "lowercase",
        ),
        ("docker.io/Library/busybox".into(), "name", "lowercase"),
        ("Uppercase/lowercase:tag".into(), "name", "lowercase"),
        ("repo@sha256:ffff".into(), "digest", "64 hex"),
        (format!("repo@md5:{H64}"), "digest", "unsupported"),
        ("repo@sha256".into(), "digest", "missing"),
        ("aa/asdf$$^/aa".into(), "name", "only [a-z0-9]"),
        ("a/-b".into(), "name", "start and end"),
        ("a/b..c".into(), "name", "separators"),
        ("a/b___c".into(), "name", "separators"),
        ("a//b".into(), "name", "empty"),
        ("a/".into(), "name", "empty"),
        ("repo:".into(), "tag", "empty"),
        ("repo:-tag".into(), "tag", "must start"),
        ("repo:ta+g".into(), "tag", "not allowed"),
        (long_tag, "tag", "longer"),
        (long, "name", "longer"),
        ("localhost:port/x".into(), "domain", "must be a number"),
        ("-bad.com/x".into(), "domain", "not a valid host"),
        ("[zz]:5/x".into(), "domain", "IPv6"),
        (H64.into(), "name", "image id"),
    ];
    for (input, part, why) in table {
        match Reference::parse(&input) {
            Ok(r) => panic!("{input:?} parsed as {r}"),
            Err(Error::InvalidReference {
                reference,
                part: p,
                reason,
            }) => {
                assert_eq!(reference, input);
                assert_eq!(p, part, "{input:?}: {reason}");
                assert!(reason.contains(why), "{input:?}: {reason}");
            }
            Err(e) => panic!("{input:?}: wrong error {e}"),
        }
    }
}

#[test]
fn familiar_and_with() {
    let r = Reference::parse("busybox").unwrap();
    assert_eq!(r.familiar(), "busybox:latest");
    assert_eq!(r.name(), "docker.io/library/busybox");
    let r2 = r.with_tag("1.0").unwrap();
    assert_eq!(r2.to_string(), "docker.io/library/busybox:1.0");
    assert!(r.with_tag("bad tag").is_err());
    let d = crate::digest::sha256(b"x");
    assert_eq!(r.with_digest(d.clone()).familiar(), format!("busybox@{d}"));
    assert_eq!(
        Reference::parse("user/app:2").unwrap().familiar(),
        "user/app:2"
    );
    assert_eq!(
        Reference::parse("localhost:5000/a").unwrap().familiar(),
        "localhost:5000/a:latest"
    );
}
