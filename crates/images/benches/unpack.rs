#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Unpack benchmark: a generated gzip layer (~100 MB: 20 000 small files and a few large
//! incompressible ones, plus symlinks and hard links) unpacked into a fresh snapshot by wharf,
//! against GNU `tar -xzf` of the same file into a directory on the same disk. Runs are
//! interleaved (the order alternates), caches are flushed with `sync` before each timed run,
//! and the medians and their ratio are printed. Unpacked trees are removed only at the end, so
//! no run pays for the previous one's deletions. Two rounds: without any flush to disk (what
//! `tar` does), and durable (wharf's default `syncfs` against `tar` followed by `sync -f`).
//!
//! `cargo bench -p images --bench unpack -- [-n RUNS] [--dir DIR]` (as root, for ownership).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use images::snapshots::Snapshotter;
use images::unpack::Options;

fn main() {
    let mut n = 5usize;
    let mut dir = PathBuf::from("/var/tmp");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-n" => n = args.next().and_then(|v| v.parse().ok()).expect("-n RUNS"),
            "--dir" => dir = args.next().map(PathBuf::from).expect("--dir DIR"),
            "--generate" => {
                // Only write the layer (for looking at it with other tools).
                let path = args.next().map(PathBuf::from).expect("--generate PATH");
                let (entries, size) = generate(&path);
                println!("{}: {entries} entries, {size} bytes of tar", path.display());
                return;
            }
            "--once" => {
                // Unpack an existing layer once with wharf (for strace/perf).
                let layer = args.next().map(PathBuf::from).expect("--once LAYER TARGET");
                let target = args.next().map(PathBuf::from).expect("--once LAYER TARGET");
                let d = unpack_wharf(&layer, &target, false);
                println!("{}: {:.3}s", target.display(), d.as_secs_f64());
                return;
            }
            _ => {} // cargo bench passes --bench
        }
    }
    let work = dir.join(format!("wharf-bench-unpack-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let _cleanup = Cleanup(work.clone());
    let layer = work.join("layer.tar.gz");
    let t = Instant::now();
    let (files, tar_size) = generate(&layer);
    let gz_size = std::fs::metadata(&layer).unwrap().len();
    println!(
        "layer: {files} entries, {:.1} MB tar, {:.1} MB gzip (generated in {:.1}s); {n} runs each, interleaved",
        tar_size as f64 / 1e6,
        gz_size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    for durable in [false, true] {
        let mut wharf = Vec::new();
        let mut tar = Vec::new();
        for i in 0..n {
            let order: [bool; 2] = if i % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for is_wharf in order {
                let target = work.join(format!("run-{i}-{is_wharf}-{durable}"));
                settle();
                if is_wharf {
                    wharf.push(unpack_wharf(&layer, &target, durable));
                } else {
                    tar.push(unpack_tar(&layer, &target, durable));
                }
                // Targets stay until the end: ext4 skips inodes freed in the last ~30 s when
                // allocating (`recently_deleted`), so removing a tree here would bill the
                // next run, whichever tool it is, for scanning past them.
            }
        }
        let (w, t) = (median(&mut wharf), median(&mut tar));
        println!(
            "{}: wharf median {:.3}s, tar -xzf median {:.3}s, ratio wharf/tar {:.2} ({})",
            if durable {
                "durable (syncfs / sync -f)"
            } else {
                "page cache (no flush)"
            },
            w.as_secs_f64(),
            t.as_secs_f64(),
            w.as_secs_f64() / t.as_secs_f64(),
            if w <= t {
                "wharf at least as fast"
            } else {
                "wharf slower"
            }
        );
    }
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("remove {}: {e}", self.0.display());
        }
    }
}

/// Flushes dirty pages left by the previous run so it does not bill the next one.
fn settle() {
    let st = Command::new("sync").status().unwrap();
    assert!(st.success());
}

fn unpack_wharf(layer: &Path, target: &Path, durable: bool) -> Duration {
    let t = Instant::now();
    let snaps = Snapshotter::open(target).unwrap();
    let f = std::fs::File::open(layer).unwrap();
    let opts = Options {
        no_sync: !durable,
        ..Default::default()
    };
    snaps.apply_layer("layer", None, f, &opts).unwrap().unwrap();
    t.elapsed()
}

fn unpack_tar(layer: &Path, target: &Path, durable: bool) -> Duration {
    std::fs::create_dir_all(target).unwrap();
    let t = Instant::now();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(layer)
        .arg("-C")
        .arg(target)
        .status()
        .unwrap();
    assert!(st.success());
    if durable {
        let st = Command::new("sync").arg("-f").arg(target).status().unwrap();
        assert!(st.success());
    }
    t.elapsed()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let x = self.next().to_le_bytes();
            c.copy_from_slice(&x[..c.len()]);
        }
    }
}

/// Writes the layer; returns (entries, uncompressed size).
fn generate(path: &Path) -> (u64, u64) {
    const WORDS: &[&str] = &[
        "container",
        "layer",
        "overlay",
        "whiteout",
        "digest",
        "manifest",
        "index",
        "config",
        "snapshot",
        "registry",
        "lease",
        "blob",
        "wharf",
        "kernel",
        "namespace",
        "cgroup",
    ];
    let f = std::fs::File::create(path).unwrap();
    let gz =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(f), flate2::Compression::default());
    let mut counting = Counting(gz, 0);
    let mut b = tar::Builder::new(&mut counting);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut entries = 0u64;
    let header = |kind: tar::EntryType, size: u64, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_700_000_000);
        h
    };
    for d in 0..200 {
        let dir = format!("usr/share/pkg{d:03}");
        b.append_data(
            &mut header(tar::EntryType::Directory, 0, 0o755),
            &dir,
            std::io::empty(),
        )
        .unwrap();
        entries += 1;
        for i in 0..100 {
            let size = 512 + (rng.next() % 7680) as usize;
            let mut text = String::with_capacity(size + 16);
            while text.len() < size {
                text.push_str(WORDS[(rng.next() % WORDS.len() as u64) as usize]);
                text.push(if rng.next().is_multiple_of(9) {
                    '\n'
                } else {
                    ' '
                });
            }
            let name = format!("{dir}/file{i:03}.txt");
            b.append_data(
                &mut header(tar::EntryType::Regular, text.len() as u64, 0o644),
                &name,
                text.as_bytes(),
            )
            .unwrap();
            entries += 1;
        }
        let mut h = header(tar::EntryType::Symlink, 0, 0o777);
        b.append_link(&mut h, format!("{dir}/latest"), "file000.txt")
            .unwrap();
        let mut h = header(tar::EntryType::Link, 0, 0o644);
        b.append_link(
            &mut h,
            format!("{dir}/copy.txt"),
            format!("{dir}/file001.txt"),
        )
        .unwrap();
        entries += 2;
    }
    b.append_data(
        &mut header(tar::EntryType::Directory, 0, 0o755),
        "opt/big",
        std::io::empty(),
    )
    .unwrap();
    for i in 0..4 {
        let mut data = vec![0u8; 18 << 20];
        rng.fill(&mut data);
        b.append_data(
            &mut header(tar::EntryType::Regular, data.len() as u64, 0o644),
            format!("opt/big/blob{i}.bin"),
            &data[..],
        )
        .unwrap();
        entries += 1;
    }
    b.finish().unwrap();
    drop(b);
    let size = counting.1;
    counting.0.finish().unwrap().flush().unwrap();
    (entries, size)
}

struct Counting<W>(W, u64);

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1 += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
