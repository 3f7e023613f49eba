#![allow(clippy::expect_used, clippy::unwrap_used)]
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use super::*;
use crate::digest::sha256;
use crate::leases::Leases;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("content")).unwrap();
    (dir, s)
}

fn ingest_files(s: &Store) -> usize {
    fs::read_dir(s.ingest_dir()).unwrap().count()
}

#[test]
fn put_read_info_delete() {
    let (_d, s) = store();
    let data = b"hello blob";
    let d = sha256(data);
    assert!(!s.exists(&d).unwrap());
    let info = s.put(data, Some(&d)).unwrap();
    assert_eq!(info.digest, d);
    assert_eq!(info.size, data.len() as u64);
    assert!(s.exists(&d).unwrap());
    assert_eq!(s.read(&d, 1024).unwrap(), data);
    s.verify(&d).unwrap();
    let p = s.blob_path(&d).unwrap();
    assert!(p.ends_with(format!("blobs/sha256/{}", d.digest())));
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert!(matches!(
        s.read(&d, 3),
        Err(Error::FailedPrecondition { .. })
    ));
    assert_eq!(s.list().unwrap().len(), 1);
    let u = s.usage().unwrap();
    assert_eq!((u.blobs, u.size, u.ingest), (1, data.len() as u64, 0));
    s.delete(&d).unwrap();
    assert!(!s.exists(&d).unwrap());
    let e = s.info(&d).unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::NotFound);
    assert!(e.to_string().contains(d.as_ref()), "{e}");
    assert!(matches!(s.delete(&d), Err(Error::NotFound { .. })));
    assert_eq!(ingest_files(&s), 0);
}

#[test]
fn sha512_and_unknown_digest() {
    let (_d, s) = store();
    let mut h = Digester::new(&DigestAlgorithm::Sha512);
    h.update(b"x");
    let d = h.finish();
    s.put(b"x", Some(&d)).unwrap();
    assert!(s
        .blob_path(&d)
        .unwrap()
        .to_str()
        .unwrap()
        .contains("blobs/sha512/"));
    s.verify(&d).unwrap();
    // Without an expected digest, sha256 is computed.
    let info = s.put(b"y", None).unwrap();
    assert_eq!(info.digest, sha256(b"y"));
}

#[test]
fn mismatches_leave_nothing() {
    let (_d, s) = store();
    let wrong = sha256(b"other");
    let e = s.put(b"data", Some(&wrong)).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains(wrong.as_ref()), "{e}");
    assert!(!s.exists(&wrong).unwrap());
    assert!(!s.exists(&sha256(b"data")).unwrap());

    let mut w = s.writer(None, Some(10)).unwrap();
    w.write_all(b"short").unwrap();
    assert!(matches!(
        w.commit(),
        Err(Error::SizeMismatch {
            expected: 10,
            actual: 5,
            ..
        })
    ));
    let mut w = s.writer(None, Some(2)).unwrap();
    assert!(w.write_all(b"too long").is_err());
    drop(w);
    assert_eq!(ingest_files(&s), 0);
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn concurrent_writers_of_one_blob() {
    let (_d, s) = store();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let d = sha256(&data);
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (s, data, d, b) = (s.clone(), data.clone(), d.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut w = s.writer(Some(&d), Some(data.len() as u64)).unwrap();
                b.wait();
                for chunk in data.chunks(4096) {
                    w.write_all(chunk).unwrap();
                }
                w.commit().unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().size, data.len() as u64);
    }
    s.verify(&d).unwrap();
    assert_eq!(s.list().unwrap().len(), 1);
    assert_eq!(ingest_files(&s), 0);
}

#[test]
fn reader_never_sees_partial_blob() {
    let (_d, s) = store();
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 241) as u8).collect();
    let d = sha256(&data);
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (s, d, done, len) = (s.clone(), d.clone(), done.clone(), data.len());
        std::thread::spawn(move || {
            let mut seen = 0;
            while !done.load(Ordering::SeqCst) || seen == 0 {
                if s.exists(&d).unwrap() {
                    let bytes = s.read(&d, u64::MAX).unwrap();
                    assert_eq!(bytes.len(), len, "reader saw a partial blob");
                    assert_eq!(sha256(&bytes), d);
                    seen += 1;
                }
            }
        })
    };
    let mut w = s.writer(Some(&d), None).unwrap();
    for chunk in data.chunks(1000) {
        w.write_all(chunk).unwrap();
        assert!(!s.exists(&d).unwrap());
    }
    w.commit().unwrap();
    done.store(true, Ordering::SeqCst);
    reader.join().unwrap();
}

#[test]
fn clean_ingest_spares_live_writers() {
    let (_d, s) = store();
    let mut live = s.writer(None, None).unwrap();
    live.write_all(b"in progress").unwrap();
    // A leftover from a dead writer: an unlocked file.
    fs::write(s.ingest_dir().join("dead-1-1"), b"partial").unwrap();
    assert_eq!(s.usage().unwrap().ingest, 18);
    assert_eq!(s.clean_ingest().unwrap(), 1);
    assert!(live.ingest_path().exists());
    live.write_all(b"!").unwrap();
    let info = live.commit().unwrap();
    assert_eq!(s.read(&info.digest, 100).unwrap(), b"in progress!");
    assert_eq!(ingest_files(&s), 0);
}

fn json_blob(s: &Store, v: serde_json::Value) -> Digest {
    s.put(&serde_json::to_vec(&v).unwrap(), None)
        .unwrap()
        .digest
}

fn desc(d: &Digest, mt: &str) -> serde_json::Value {
    serde_json::json!({"mediaType": mt, "digest": d.to_string(), "size": 1})
}

#[test]
fn gc_marks_images_and_leases() {
    let (dir, s) = store();
    let leases = Leases::new(crate::meta::open_db(&dir.path().join("meta.redb")).unwrap()).unwrap();
    let l1 = s.put(b"layer one", None).unwrap().digest;
    let l2 = s.put(b"layer two", None).unwrap().digest;
    let config = json_blob(
        &s,
        serde_json::json!({"architecture": "amd64", "os": "linux",
        "config": {"Env": []}, "rootfs": {"type": "layers", "diff_ids": []}}),
    );
    let manifest = json_blob(
        &s,
        serde_json::json!({"schemaVersion": 2,
        "config": desc(&config, "application/vnd.oci.image.config.v1+json"),
        "layers": [desc(&l1, "application/vnd.oci.image.layer.v1.tar"),
                   desc(&l2, "application/vnd.oci.image.layer.v1.tar")]}),
    );
    let index = json_blob(
        &s,
        serde_json::json!({"schemaVersion": 2,
        "manifests": [desc(&manifest, "application/vnd.oci.image.manifest.v1+json")]}),
    );
    let orphan = s.put(b"nobody refers to me", None).unwrap().digest;
    let leased = s.put(b"a pull in progress", None).unwrap().digest;
    let expired = s.put(b"an abandoned pull", None).unwrap().digest;
    leases.create("pull-1", None, Default::default()).unwrap();
    leases.add_content("pull-1", &leased).unwrap();
    leases
        .create(
            "pull-0",
            Some(std::time::Duration::from_secs(1)),
            Default::default(),
        )
        .unwrap();
    leases.add_content("pull-0", &expired).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));

    let r = gc::collect(&s, Some(&leases), std::slice::from_ref(&index)).unwrap();
    let mut removed: Vec<_> = r.removed.iter().map(|d| d.to_string()).collect();
    removed.sort();
    let mut want = vec![orphan.to_string(), expired.to_string()];
    want.sort();
    assert_eq!(removed, want);
    assert_eq!(r.expired_leases, vec!["pull-0".to_string()]);
    for d in [&index, &manifest, &config, &l1, &l2, &leased] {
        assert!(s.exists(d).unwrap(), "{d} was collected");
    }
    // Dropping the lease frees its blob; dropping the root frees the image.
    leases.delete("pull-1").unwrap();
    let r = gc::collect(&s, Some(&leases), std::slice::from_ref(&index)).unwrap();
    assert_eq!(r.removed, vec![leased]);
    let r = gc::collect(&s, Some(&leases), &[]).unwrap();
    assert_eq!(r.removed.len(), 5);
    assert!(s.list().unwrap().is_empty());
    assert_eq!(s.usage().unwrap(), Usage::default());
}

#[test]
fn commit_leased_protects_new_blob() {
    let (dir, s) = store();
    let leases = Leases::new(crate::meta::open_db(&dir.path().join("meta.redb")).unwrap()).unwrap();
    leases.create("commit", None, Default::default()).unwrap();
    let mut w = s.writer(None, None).unwrap();
    w.write_all(b"new layer").unwrap();
    let info = w.commit_leased(&leases, "commit").unwrap();
    assert_eq!(leases.content("commit").unwrap(), vec![info.digest.clone()]);
    gc::collect(&s, Some(&leases), &[]).unwrap();
    assert!(s.exists(&info.digest).unwrap());
    assert!(matches!(
        leases.add_content("nope", &info.digest),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        leases.create("commit", None, Default::default()),
        Err(Error::AlreadyExists { .. })
    ));
}
