#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `docker image prune` (dangling images only) and `docker image prune -a` (every image no
//! container uses) through the real docker CLI against a private wharfd: what the answer lists,
//! the space it reports, its filters, and what `docker images` shows afterwards.

mod common;

/// `docker images` as sorted `repo:tag id` lines (full ids).
fn images(d: &common::Daemon) -> Vec<String> {
    let out = d.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]);
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn image_id(d: &common::Daemon, name: &str) -> String {
    d.ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

/// The ids after `deleted: ` and the names after `untagged: ` in prune's output.
fn pruned(out: &str) -> (Vec<String>, Vec<String>) {
    let pick = |p: &str| -> Vec<String> {
        let mut v: Vec<String> = out
            .lines()
            .filter_map(|l| l.strip_prefix(p))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    (pick("deleted: "), pick("untagged: "))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn image_prune_reports_what_it_deleted() {
    let Some(d) = common::daemon("p") else { return };
    d.import_busybox();
    let busybox = image_id(&d, "busybox");

    // A container that keeps busybox in use, with a file to commit.
    d.ok(&[
        "run",
        "--name",
        "pr-src",
        "busybox",
        "sh",
        "-c",
        "echo data > /payload",
    ]);

    // Committing twice to one tag leaves the first image dangling; so does an untagged commit.
    d.ok(&["commit", "pr-src", "pr-app:1"]);
    let app1_old = image_id(&d, "pr-app:1");
    d.ok(&["commit", "-m", "second", "pr-src", "pr-app:1"]);
    let app1 = image_id(&d, "pr-app:1");
    assert_ne!(app1, app1_old);
    let untagged = d
        .ok(&["commit", "-m", "untagged", "pr-src"])
        .trim()
        .to_string();
    assert!(untagged.starts_with("sha256:"), "{untagged}");

    // A dangling image that a container still uses is kept by both kinds of prune.
    d.ok(&["commit", "-m", "used", "pr-src", "pr-app:2"]);
    let app2_used = image_id(&d, "pr-app:2");
    d.ok(&["create", "--name", "pr-user", "pr-app:2", "true"]);
    d.ok(&["commit", "-m", "newer", "pr-src", "pr-app:2"]);
    let app2 = image_id(&d, "pr-app:2");
    // A labelled image for the label filter.
    d.ok(&[
        "commit",
        "-c",
        "LABEL tier=web",
        "-m",
        "labelled",
        "pr-src",
        "pr-lab:1",
    ]);
    let lab = image_id(&d, "pr-lab:1");

    let none = |id: &str| format!("<none>:<none> {id}");
    assert_eq!(
        images(&d),
        sorted(vec![
            none(&app1_old),
            none(&untagged),
            none(&app2_used),
            format!("busybox:latest {busybox}"),
            format!("pr-app:1 {app1}"),
            format!("pr-app:2 {app2}"),
            format!("pr-lab:1 {lab}"),
        ])
    );
    let dangling = d.ok(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    assert_eq!(
        sorted(dangling.lines().map(str::to_string).collect()),
        sorted(vec![app1_old.clone(), untagged.clone(), app2_used.clone()])
    );

    // A filter that matches nothing: nothing goes, nothing is reclaimed.
    let out = d.ok(&["image", "prune", "-f", "--filter", "until=240h"]);
    assert_eq!(out.trim(), "Total reclaimed space: 0B", "{out}");

    // Default prune: the unused dangling images only.
    let out = d.ok(&["image", "prune", "-f"]);
    let (deleted, untags) = pruned(&out);
    assert_eq!(
        deleted,
        sorted(vec![app1_old.clone(), untagged.clone()]),
        "{out}"
    );
    assert!(untags.is_empty(), "{out}");
    assert!(out.starts_with("Deleted Images:\n"), "{out}");
    let space = out
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .expect("reclaimed line");
    assert_ne!(
        space, "0B",
        "the two images' configs and manifests were freed: {out}"
    );
    assert_eq!(
        images(&d),
        sorted(vec![
            none(&app2_used),
            format!("busybox:latest {busybox}"),
            format!("pr-app:1 {app1}"),
            format!("pr-app:2 {app2}"),
            format!("pr-lab:1 {lab}"),
        ])
    );
    // A pruned image is gone for good.
    let o = d.docker(&["image", "inspect", &app1_old]);
    assert!(!o.status.success());

    // -a with a label filter: only the unused image with that label.
    let out = d.ok(&["image", "prune", "-a", "-f", "--filter", "label=tier=web"]);
    assert_eq!(
        pruned(&out),
        (vec![lab], vec!["pr-lab:1".to_string()]),
        "{out}"
    );

    // -a: every image no container uses, tagged or not.
    let out = d.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(
        pruned(&out),
        (
            sorted(vec![app1, app2]),
            sorted(vec!["pr-app:1".to_string(), "pr-app:2".to_string()])
        ),
        "{out}"
    );
    assert_eq!(
        images(&d),
        sorted(vec![none(&app2_used), format!("busybox:latest {busybox}"),])
    );

    // Once its container is gone, the last dangling image goes too; busybox stays in use.
    d.ok(&["rm", "pr-user"]);
    let out = d.ok(&["image", "prune", "-f"]);
    assert_eq!(pruned(&out), (vec![app2_used], vec![]), "{out}");
    assert_eq!(images(&d), vec![format!("busybox:latest {busybox}")]);
    let out = d.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(out.trim(), "Total reclaimed space: 0B", "{out}");

    // A bad filter is the daemon's error.
    let o = d.docker(&["image", "prune", "-f", "--filter", "until=soon"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("invalid filter 'until=soon'"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
