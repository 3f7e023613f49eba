#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Pull benchmark: a multi-layer image (built here, ~80 MB of gzip layers) in a local
//! `docker-registry` on loopback inside a private network namespace, pulled into an empty store
//! by wharf against `skopeo copy docker://… oci:…` of the same image into an empty directory.
//! Runs are interleaved (the order alternates), dirty pages are flushed before each run, and
//! medians and their ratio are printed. wharf fsyncs every blob it commits; skopeo does not.
//!
//! `cargo bench -p images --bench pull -- [-n RUNS] [--dir DIR]` (as root).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::registry::{in_netns, runtime, Registry};
use images::commit::{commit, Options as CommitOptions};
use images::progress::Progress;
use images::registry::{pull, push, Options};
use images::{Reference, Service};

fn main() {
    let mut n = 5usize;
    let mut dir = PathBuf::from("/var/tmp");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-n" => n = args.next().and_then(|v| v.parse().ok()).expect("-n RUNS"),
            "--dir" => dir = args.next().map(PathBuf::from).expect("--dir DIR"),
            _ => {}
        }
    }
    for tool in ["skopeo", common::registry::REGISTRY_BIN] {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "{tool} is missing: run scripts/deps.sh");
    }
    let work = dir.join(format!("wharf-bench-pull-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let _cleanup = Cleanup(work.clone());
    in_netns(move || run(&work, n));
}

fn run(work: &Path, n: usize) {
    let reg = Registry::start(&work.join("registry"), None);
    let src = Service::open(work.join("src")).unwrap();
    let local = build(&src, work);
    let remote = Reference::parse(&format!("{}/bench/img:1", reg.addr)).unwrap();
    let rt = runtime();
    let opts = Options::default();
    rt.block_on(push(&src, &local, &remote, &opts, &Progress::none()))
        .unwrap();
    let r = src.resolve_host(&local).unwrap();
    let total: u64 = r.manifest.layers.iter().map(|l| l.size).sum();
    println!(
        "image: {} layers, {:.1} MB compressed; {n} runs each, interleaved",
        r.manifest.layers.len(),
        total as f64 / 1e6
    );
    let mut wharf = Vec::new();
    let mut skopeo = Vec::new();
    for i in 0..n {
        let order: [bool; 2] = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_wharf in order {
            let target = work.join(format!("run-{i}-{is_wharf}"));
            settle();
            let t = Instant::now();
            if is_wharf {
                let dst = Service::open(&target).unwrap();
                rt.block_on(pull(&dst, &remote, &opts, &Progress::none()))
                    .unwrap();
                wharf.push(t.elapsed());
            } else {
                let out = Command::new("skopeo")
                    .args([
                        "--insecure-policy",
                        "copy",
                        "--quiet",
                        "--src-tls-verify=false",
                    ])
                    .arg(format!("docker://{remote}"))
                    .arg(format!("oci:{}:img", target.display()))
                    .output()
                    .unwrap();
                skopeo.push(t.elapsed());
                assert!(
                    out.status.success(),
                    "skopeo: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::fs::remove_dir_all(&target).unwrap();
        }
    }
    let (w, s) = (median(&mut wharf), median(&mut skopeo));
    println!(
        "pull: wharf median {:.3}s, skopeo copy median {:.3}s, ratio wharf/skopeo {:.2} ({})",
        w.as_secs_f64(),
        s.as_secs_f64(),
        w.as_secs_f64() / s.as_secs_f64(),
        if w <= s {
            "wharf no slower"
        } else {
            "wharf slower"
        }
    );
}

/// Four layers: a busybox root filesystem, two with large incompressible files, one with many
/// small text files.
fn build(svc: &Service, work: &Path) -> Reference {
    let name = Reference::parse("localhost/bench/img:1").unwrap();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let opts = CommitOptions {
        created: Some(1_700_000_000),
        gzip_level: Some(1),
        ..Default::default()
    };
    let l0 = work.join("l0");
    common::busybox_rootfs(&l0);
    commit(svc, &l0, None, &name, &opts, &Progress::none()).unwrap();
    for (i, mb) in [(1, 40usize), (2, 24)] {
        let d = work.join(format!("l{i}"));
        std::fs::create_dir_all(d.join("data")).unwrap();
        let mut buf = vec![0u8; mb << 20];
        for c in buf.chunks_mut(8) {
            let x = next().to_le_bytes();
            c.copy_from_slice(&x[..c.len()]);
        }
        std::fs::write(d.join("data/blob.bin"), &buf).unwrap();
        commit(svc, &d, Some(&name), &name, &opts, &Progress::none()).unwrap();
    }
    let d = work.join("l3");
    for i in 0..3000 {
        let p = d.join(format!("share/{:02}", i % 50));
        std::fs::create_dir_all(&p).unwrap();
        let text: String = (0..(next() % 4000 + 200))
            .map(|_| (b'a' + (next() % 26) as u8) as char)
            .collect();
        std::fs::write(p.join(format!("f{i}.txt")), text).unwrap();
    }
    commit(svc, &d, Some(&name), &name, &opts, &Progress::none()).unwrap();
    name
}

fn settle() {
    assert!(Command::new("sync").status().unwrap().success());
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("remove {}: {e}", self.0.display());
        }
    }
}
