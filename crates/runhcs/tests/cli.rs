#![allow(clippy::expect_used, clippy::unwrap_used)]
//! CLI surface: `spec`, `features`, error messages, global `--log`/`--log-format`.

mod common;

use std::fs;

use common::{each_runtime, Bundle};
use serde_json::json;

#[test]
fn harness_default_spec_is_a_valid_oci_spec() {
    // Guards the harness itself: the bundle config must parse as an OCI runtime spec.
    let spec: Result<oci_spec::runtime::Spec, _> =
        serde_json::from_value(common::bundle::default_spec());
    assert!(spec.is_ok(), "{spec:?}");
}

#[test]
fn spec_writes_valid_config() {
    each_runtime(|rt| {
        let d = common::host_dir("wt-spec-");
        rt.cmd(&["spec", "--bundle", &d.path().to_string_lossy()])
            .run()
            .ok();
        let text = fs::read_to_string(d.path().join("config.json")).expect("config.json written");
        let spec: oci_spec::runtime::Spec =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("invalid spec ({e}): {text}"));
        assert!(spec.version().starts_with("1."), "{}", spec.version());
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["root"]["path"], "rootfs");
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .iter()
            .filter_map(|n| n["type"].as_str())
            .collect();
        for want in ["pid", "network", "ipc", "uts", "mount"] {
            assert!(ns.contains(&want), "{want} missing in {ns:?}");
        }
        // A second `spec` must not clobber an existing config.json.
        rt.cmd(&["spec", "--bundle", &d.path().to_string_lossy()])
            .run()
            .fails();
    });
}

#[test]
fn features_prints_oci_versions() {
    each_runtime(|rt| {
        let out = rt.cmd(&["features"]).run().ok();
        let v: serde_json::Value =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
        let min = v["ociVersionMin"].as_str().unwrap_or("");
        let max = v["ociVersionMax"].as_str().unwrap_or("");
        assert!(min.starts_with("1.0"), "{v}");
        assert!(max.starts_with("1."), "{v}");
        let hooks = v["hooks"].as_array().expect("hooks list");
        assert!(hooks.iter().any(|h| h == "prestart"), "{v}");
        assert!(v["linux"]["namespaces"].is_array(), "{v}");
    });
}

#[test]
fn wrong_type_in_config_names_file_and_field() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.set("/process/user/uid", json!("zero"));
        let out = rt.container(&b).run().fails();
        // runc: "json: cannot unmarshal string into Go struct field User.process.user.uid".
        assert!(out.stderr.contains("process.user.uid"), "{out}");
        if rt.is_runhcs() {
            // runhcs-only: runc does not say which file it was parsing.
            assert!(out.stderr.contains("config.json"), "{out}");
        }
    });
}

#[test]
fn missing_bundle_names_the_path() {
    each_runtime(|rt| {
        let b = Bundle::busybox();
        let c = rt.container(&b);
        let missing = format!("/nonexistent/wt-bundle-{}", common::unique());
        let mut cmd = c.cmd(&["run", "--bundle", &missing]);
        cmd.arg(&c.id);
        let out = cmd.run().fails();
        assert!(out.stderr.contains(&missing), "{out}");
    });
}

#[test]
fn unknown_container_id() {
    each_runtime(|rt| {
        let b = Bundle::busybox();
        let c = rt.container(&b);
        for verb in [
            vec!["state"],
            vec!["start"],
            vec!["kill"],
            vec!["delete"],
            vec!["pause"],
            vec!["resume"],
            vec!["ps"],
            vec!["exec"],
        ] {
            let mut cmd = c.cmd(&verb);
            cmd.arg("wt-no-such-container");
            if verb == ["exec"] {
                cmd.arg("true");
            }
            let out = cmd.run();
            // `exec` propagates the process's exit code, so runc reports its own failures
            // as 255 there; everything else exits 1.
            let want = if verb == ["exec"] { 255 } else { 1 };
            assert_eq!(out.code, Some(want), "{verb:?}: {out}");
            assert!(
                out.stderr.contains("does not exist") || out.stderr.contains("not exist"),
                "{verb:?}: {out}"
            );
        }
    });
}

#[test]
fn log_file_in_json_format() {
    each_runtime(|rt| {
        let d = common::host_dir("wt-log-");
        let log = d.path().join("runtime.log");
        let b = Bundle::busybox();
        let c = rt.container(&b);
        let out = c
            .cmd(&[
                "--log",
                &log.to_string_lossy(),
                "--log-format",
                "json",
                "start",
                "wt-no-such-container",
            ])
            .run()
            .fails();
        let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("no log file ({e}): {out}"));
        let entries: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let err = entries
            .iter()
            .find(|e| e["level"] == "error")
            .unwrap_or_else(|| panic!("no error entry in {text}"));
        assert!(
            err["msg"].as_str().unwrap_or("").contains("not exist"),
            "{err}"
        );
    });
}

#[test]
fn ps_lists_container_processes() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.args(&["sleep", "1000"]);
        let c = rt.container(&b);
        c.run_detached().ok();
        let out = c.cmd(&["ps", "--format", "json", &c.id]).run().ok();
        let pids: Vec<i64> = serde_json::from_str(&out.stdout).expect("ps json");
        assert_eq!(pids, [c.pid() as i64]);
        let table = c.cmd(&["ps", &c.id]).run().ok();
        assert!(table.stdout.contains("PID"), "{table}");
        assert!(table.stdout.contains(&c.pid().to_string()), "{table}");
    });
}

/// Each runtime prints its own version text; both must mention "version" and exit 0.
#[test]
fn version() {
    each_runtime(|rt| {
        let out = rt.cmd(&["--version"]).run().ok();
        assert!(out.stdout.contains("version"), "{out}");
    });
}

#[test]
fn debug_flag_is_accepted() {
    each_runtime(|rt| {
        let mut b = Bundle::busybox();
        b.sh("exit 4");
        let c = rt.container(&b);
        let mut cmd = c.cmd(&["--debug", "run", "--bundle"]);
        cmd.arg(b.path()).arg(&c.id);
        cmd.run().code_is(4);
    });
}
