#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The content store across processes: writers killed with SIGKILL at any point leave a
//! consistent store (only complete, verified blobs) whose ingest leftovers are cleaned on open,
//! and several processes writing the same blob all succeed.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use images::content::Store;
use images::digest::sha256;

const CHILD_ENV: &str = "WHARF_IMAGES_CONTENT_CHILD";

fn blob(i: u32) -> Vec<u8> {
    let len = 10_000 + (i as usize * 7919) % 200_000;
    (0..len)
        .map(|j| (j as u32).wrapping_mul(i + 1) as u8)
        .collect()
}

/// Not a test by itself: the body of the child processes, selected by an environment variable.
#[test]
fn child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mode, root) = spec.split_once(':').unwrap();
    let s = Store::open(root).unwrap();
    match mode {
        "slow" => {
            let data = blob(1);
            let mut w = s.writer(Some(&sha256(&data)), None).unwrap();
            w.write_all(&data[..data.len() / 2]).unwrap();
            println!("half-written");
            std::io::stdout().flush().unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        "loop" => {
            println!("looping");
            std::io::stdout().flush().unwrap();
            for i in 0.. {
                let data = blob(i % 50);
                s.put(&data, Some(&sha256(&data))).unwrap();
            }
        }
        "same" => {
            let data = blob(7).repeat(20);
            s.put(&data, Some(&sha256(&data))).unwrap();
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn spawn(mode: &str, root: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{mode}:{}", root.display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_line(child: &mut Child, want: &str) {
    let out = child.stdout.take().unwrap();
    for line in BufReader::new(out).lines() {
        if line.unwrap().contains(want) {
            return;
        }
    }
    panic!("child exited before printing {want:?}");
}

fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn assert_consistent(root: &Path) {
    let s = Store::open(root).unwrap();
    for info in s.list().unwrap() {
        s.verify(&info.digest).unwrap();
        assert_eq!(
            std::fs::metadata(s.blob_path(&info.digest).unwrap())
                .unwrap()
                .len(),
            info.size
        );
    }
    assert_eq!(
        std::fs::read_dir(root.join("ingest")).unwrap().count(),
        0,
        "ingest not cleaned"
    );
    assert_eq!(s.usage().unwrap().ingest, 0);
}

#[test]
fn writer_killed_midway() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    let mut child = spawn("slow", &root);
    wait_for_line(&mut child, "half-written");
    let s = Store::open(&root).unwrap();
    // The live writer's file survives another process opening the store.
    assert_eq!(std::fs::read_dir(root.join("ingest")).unwrap().count(), 1);
    let d = sha256(&blob(1));
    assert!(!s.exists(&d).unwrap());
    kill(child);
    assert!(
        !s.exists(&d).unwrap(),
        "a killed writer's blob became visible"
    );
    assert_eq!(std::fs::read_dir(root.join("ingest")).unwrap().count(), 1);
    assert_consistent(&root);
    // The same blob can be written afterwards.
    s.put(&blob(1), Some(&d)).unwrap();
    s.verify(&d).unwrap();
}

#[test]
fn writers_killed_during_commits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    for delay_ms in [5, 50, 200] {
        // Two processes writing the same sequence of blobs race on every commit.
        let mut a = spawn("loop", &root);
        let mut b = spawn("loop", &root);
        wait_for_line(&mut a, "looping");
        wait_for_line(&mut b, "looping");
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill(a);
        kill(b);
        assert_consistent(&root);
    }
    assert!(!Store::open(&root).unwrap().list().unwrap().is_empty());
}

#[test]
fn processes_write_the_same_blob() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    let children: Vec<_> = (0..4).map(|_| spawn("same", &root)).collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let s = Store::open(&root).unwrap();
    let list = s.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].digest, sha256(&blob(7).repeat(20)));
    assert_consistent(&root);
}
