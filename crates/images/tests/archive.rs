#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Save / load: both formats round-trip through wharf, and interoperate both ways with the real
//! `skopeo` and `podman` (isolated podman storage, vfs driver). "Byte-checked" means: the config
//! (whose digest is the image id) is identical, every layer's uncompressed digest equals the
//! original diff_id, every stored blob re-hashes to its digest.

mod common;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use images::archive::{load, save, Format};
use images::progress::Progress;
use images::{ErrorKind, Reference, Service};

fn save_to(svc: &Service, names: &[Reference], f: Format, path: &Path) {
    save(
        svc,
        names,
        f,
        File::create(path).unwrap(),
        &Progress::none(),
    )
    .unwrap();
}

fn load_from(path: &Path, root: &Path) -> (Service, Vec<Reference>) {
    let svc = Service::open(root).unwrap();
    let loaded = load(&svc, File::open(path).unwrap(), &Progress::none())
        .unwrap_or_else(|e| panic!("load {}: {e}", path.display()));
    let names = loaded.into_iter().map(|l| l.name).collect();
    (svc, names)
}

#[test]
fn wharf_round_trip_both_formats_several_images() {
    let tmp = common::tempdir("archive-rt");
    let svc = Service::open(tmp.path().join("src")).unwrap();
    let (base, app) = common::build_images(&svc, tmp.path());
    for (f, file) in [
        (Format::DockerArchive, "d.tar"),
        (Format::OciArchive, "o.tar"),
    ] {
        let path = tmp.path().join(file);
        let (tx, rx) = std::sync::mpsc::channel();
        save(
            &svc,
            &[base.clone(), app.clone()],
            f,
            File::create(&path).unwrap(),
            &Progress::channel(tx),
        )
        .unwrap();
        assert!(rx.try_iter().count() > 3, "save reports progress");
        let (dst, mut names) = load_from(&path, &tmp.path().join(format!("dst-{file}")));
        names.sort_by_key(|n| n.to_string());
        assert_eq!(names, vec![app.clone(), base.clone()], "{f:?}");
        for n in [&base, &app] {
            assert_eq!(
                common::identity(&dst, n),
                common::identity(&svc, n),
                "{f:?} {n}"
            );
        }
        if f == Format::OciArchive {
            // OCI layouts carry the manifests themselves: same bytes, same digest.
            assert_eq!(
                dst.images.get(&app).unwrap().target.digest,
                svc.images.get(&app).unwrap().target.digest
            );
        }
        // Loading again finds everything present.
        let again = load(&dst, File::open(&path).unwrap(), &Progress::none()).unwrap();
        assert_eq!(again.len(), 2);
        assert!(
            dst.leases.list().unwrap().is_empty(),
            "load released its lease"
        );
    }
}

#[test]
fn corrupt_archives_are_refused_and_leave_no_image() {
    let tmp = common::tempdir("archive-bad");
    let svc = Service::open(tmp.path().join("src")).unwrap();
    let (_, app) = common::build_images(&svc, tmp.path());
    let layer = svc.resolve_host(&app).unwrap().manifest.layers[1].clone();
    for f in [Format::OciArchive, Format::DockerArchive] {
        let path = tmp.path().join("a.tar");
        save_to(&svc, std::slice::from_ref(&app), f, &path);
        // Flip one byte inside the top layer's data ("hello" is in app/run.sh; in the gzip
        // layer of the OCI archive, flip a byte in the middle of the member instead).
        let mut bytes = fs::read(&path).unwrap();
        let at = match f {
            Format::DockerArchive => find(&bytes, b"echo hello").unwrap(),
            Format::OciArchive => {
                let name = format!("blobs/sha256/{}", layer.digest.digest());
                find(&bytes, name.as_bytes()).unwrap() + 512 + 40
            }
        };
        bytes[at] ^= 0x20;
        fs::write(&path, &bytes).unwrap();
        let dst = Service::open(tmp.path().join(format!("dst-{f:?}"))).unwrap();
        let e = load(&dst, File::open(&path).unwrap(), &Progress::none()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{f:?}: {e}");
        assert!(e.to_string().contains("digest mismatch"), "{f:?}: {e}");
        assert!(dst.images.list().unwrap().is_empty());
        // Every blob that did get in is intact; GC after the lease expires cleans up.
        for b in dst.content.list().unwrap() {
            dst.content.verify(&b.digest).unwrap();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn skopeo_reads_wharf_archives_and_writes_archives_wharf_loads() {
    if !common::have_tool("skopeo", "skopeo interop") {
        return;
    }
    let tmp = common::tempdir("archive-skopeo");
    let svc = Service::open(tmp.path().join("src")).unwrap();
    let (base, app) = common::build_images(&svc, tmp.path());
    let (config, diff_ids) = common::identity(&svc, &app);
    let config_hex = images::digest::sha256(&config).digest().to_string();
    let d = tmp.path().join("wharf-d.tar");
    let o = tmp.path().join("wharf-o.tar");
    save_to(
        &svc,
        &[base.clone(), app.clone()],
        Format::DockerArchive,
        &d,
    );
    save_to(&svc, &[base.clone(), app.clone()], Format::OciArchive, &o);

    let skopeo = |args: &[String]| {
        common::run(
            Command::new("skopeo")
                .arg("--insecure-policy")
                .arg("--tmpdir")
                .arg(tmp.path())
                .args(args),
        )
    };
    let s = |p: &Path| p.display().to_string();
    // wharf → skopeo: read the app from both archives (by name, among two images).
    let from_d = tmp.path().join("oci-from-d");
    skopeo(&[
        "copy".into(),
        format!("docker-archive:{}:{app}", s(&d)),
        format!("oci:{}:app", s(&from_d)),
    ]);
    let from_o = tmp.path().join("oci-from-o");
    skopeo(&[
        "copy".into(),
        format!("oci-archive:{}:{app}", s(&o)),
        format!("oci:{}:app", s(&from_o)),
    ]);
    // docker-archive → oci: skopeo converts the Docker manifest to OCI and re-encodes the
    // config, so compare what the config says; the uncompressed layers keep their digests.
    let blob = |dir: &Path, hex: &str| dir.join("blobs/sha256").join(hex);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(from_d.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"].as_str().unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(blob(&from_d, &mdigest[7..])).unwrap()).unwrap();
    let cfg = fs::read(blob(&from_d, &m["config"]["digest"].as_str().unwrap()[7..])).unwrap();
    assert_eq!(semantic(&cfg), semantic(&config));
    // skopeo compresses the (uncompressed) docker-archive layers for the OCI layout.
    for (l, id) in m["layers"].as_array().unwrap().iter().zip(&diff_ids) {
        let data = fs::read(blob(&from_d, &l["digest"].as_str().unwrap()[7..])).unwrap();
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&data[..]), &mut tar).unwrap();
        assert_eq!(&images::digest::sha256(&tar).to_string(), id);
    }
    // OCI → OCI: the config byte for byte.
    assert_eq!(fs::read(blob(&from_o, &config_hex)).unwrap(), config);
    // OCI → OCI keeps the manifest byte for byte.
    let ours = svc.images.get(&app).unwrap().target.digest;
    assert!(from_o.join("blobs/sha256").join(ours.digest()).exists());

    // skopeo → wharf: archives written by skopeo copy.
    let sd = tmp.path().join("skopeo-d.tar");
    let so = tmp.path().join("skopeo-o.tar");
    skopeo(&[
        "copy".into(),
        format!("oci:{}:app", s(&from_o)),
        format!("docker-archive:{}:{app}", s(&sd)),
    ]);
    skopeo(&[
        "copy".into(),
        format!("oci:{}:app", s(&from_o)),
        format!("oci-archive:{}:{app}", s(&so)),
    ]);
    for (file, tag) in [(&sd, "d"), (&so, "o")] {
        let (dst, names) = load_from(file, &tmp.path().join(format!("load-{tag}")));
        assert_eq!(names, vec![app.clone()], "{}", file.display());
        assert_eq!(
            common::identity(&dst, &app),
            (config.clone(), diff_ids.clone())
        );
    }
}

/// What a config says about the image, independent of its JSON encoding.
fn semantic(config: &[u8]) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(config).unwrap();
    serde_json::json!([
        v["rootfs"],
        v["history"],
        v["created"],
        v["architecture"],
        v["os"]
    ])
}

struct Podman {
    root: PathBuf,
    run: PathBuf,
    tmp: PathBuf,
}

impl Podman {
    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.run)
            .arg("--tmpdir")
            .arg(&self.tmp)
            .args(["--storage-driver", "vfs", "--events-backend", "none"])
            .env("CONTAINERS_STORAGE_CONF", self.tmp.join("storage.conf"))
            .env("TMPDIR", &self.tmp);
        c
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // vfs layers are plain directories; remove them with podman's own reset of this root.
        if let Err(e) = self.cmd().args(["system", "reset", "--force"]).output() {
            eprintln!("podman system reset: {e}");
        }
    }
}

#[test]
fn podman_loads_wharf_archives_and_its_saves_load_in_wharf() {
    if !common::have_tool("podman", "podman interop") {
        return;
    }
    let tmp = common::tempdir("archive-podman");
    let svc = Service::open(tmp.path().join("src")).unwrap();
    let (base, app) = common::build_images(&svc, tmp.path());
    let (config, diff_ids) = common::identity(&svc, &app);
    let image_id = images::digest::sha256(&config).digest().to_string();
    let p = Podman {
        root: tmp.path().join("podman-root"),
        run: tmp.path().join("podman-run"),
        tmp: tmp.path().join("podman-tmp"),
    };
    fs::create_dir_all(&p.tmp).unwrap();
    fs::write(
        p.tmp.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
            p.run.display(),
            p.root.display()
        ),
    )
    .unwrap();
    let s = |p: &Path| p.display().to_string();
    for (f, file) in [
        (Format::DockerArchive, "d.tar"),
        (Format::OciArchive, "o.tar"),
    ] {
        let path = tmp.path().join(file);
        let names = if f == Format::DockerArchive {
            vec![base.clone(), app.clone()]
        } else {
            vec![app.clone()]
        };
        save_to(&svc, &names, f, &path);
        let out = common::run(p.cmd().args(["load", "-i", &s(&path)]));
        assert!(out.contains("localhost/test/app:1"), "{f:?}: {out}");
        let id = common::run(p.cmd().args([
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            "localhost/test/app:1",
        ]));
        assert_eq!(id.trim(), image_id, "{f:?}: podman sees the same image id");
        let layers = common::run(p.cmd().args([
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            "localhost/test/app:1",
        ]));
        let layers: Vec<String> = serde_json::from_str(layers.trim()).unwrap();
        assert_eq!(layers, diff_ids);
    }
    // podman save → wharf load, both formats.
    for (format, file) in [("docker-archive", "pd.tar"), ("oci-archive", "po.tar")] {
        let path = tmp.path().join(file);
        common::run(p.cmd().args([
            "save",
            "--format",
            format,
            "-o",
            &s(&path),
            "localhost/test/app:1",
        ]));
        let (dst, names) = load_from(&path, &tmp.path().join(format!("load-{file}")));
        assert_eq!(names, vec![app.clone()], "{format}");
        assert_eq!(
            common::identity(&dst, &app),
            (config.clone(), diff_ids.clone()),
            "{format}"
        );
    }
}
