//! Which cgroup hierarchies this host mounts, where, and with which controllers.
//!
//! Detected once per process from `/proc/self/mountinfo` (plus one read of the cgroup2 mount's
//! `cgroup.controllers`) and cached; see [`layout`]. Everything here except [`layout`] is pure so
//! tests can feed literal mountinfo text.

use super::Error;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// Controllers a v1 `cgroup` mount can carry in its super options. Anything else there is a
/// mount option (`rw`, `xattr`, `clone_children`, `release_agent=...`, ...).
const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// How the host arranges its hierarchies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only v1 hierarchies (one mount per controller or controller group).
    Legacy,
    /// Only the cgroup2 hierarchy, normally mounted at `/sys/fs/cgroup`.
    Unified,
    /// v1 controller hierarchies plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`) that
    /// holds whatever controllers are not bound to v1.
    Hybrid,
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// `true` for the cgroup2 hierarchy.
    pub v2: bool,
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy the mount shows (mountinfo field 4; `/` unless the mount is
    /// a bind of a subtree, e.g. inside a container without a cgroup namespace).
    pub root: PathBuf,
    /// v1: the controllers bound to it, and `name=<n>` for a named hierarchy. v2: the controllers
    /// listed in `cgroup.controllers` at the mount point.
    pub controllers: Vec<String>,
}

impl Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// All hierarchies of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub mode: Mode,
    /// v1 hierarchies first (mountinfo order), then the cgroup2 hierarchy if any.
    pub hierarchies: Vec<Hierarchy>,
}

static LAYOUT: OnceLock<Layout> = OnceLock::new();

/// This host's layout, detected on first use and cached for the life of the process.
pub fn layout() -> Result<&'static Layout, Error> {
    if let Some(layout) = LAYOUT.get() {
        return Ok(layout);
    }
    let text = super::fs::read_path(Path::new(MOUNTINFO)).map_err(|source| Error::ReadFile {
        path: MOUNTINFO.into(),
        source,
    })?;
    let detected = Layout::from_mountinfo(&text, |mount| {
        let path = mount.join("cgroup.controllers");
        std::fs::read_to_string(&path).map_err(|source| Error::ReadFile { path, source })
    })?;
    Ok(LAYOUT.get_or_init(|| detected))
}

impl Layout {
    /// Builds a layout from mountinfo text; `controllers` reads `cgroup.controllers` of a cgroup2
    /// mount point (only called when there is one).
    pub fn from_mountinfo(
        mountinfo: &str,
        controllers: impl FnOnce(&Path) -> Result<String, Error>,
    ) -> Result<Layout, Error> {
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        let mut unified: Option<Hierarchy> = None;
        for line in mountinfo.lines() {
            let Some(mount) = parse_line(line) else {
                continue;
            };
            match mount.fstype {
                "cgroup" => {
                    let ctrls: Vec<String> = mount
                        .super_options
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_owned)
                        .collect();
                    // The same hierarchy mounted twice (bind mounts): the first mount wins.
                    if ctrls.is_empty() || hierarchies.iter().any(|h| h.controllers == ctrls) {
                        continue;
                    }
                    hierarchies.push(Hierarchy {
                        v2: false,
                        mount_point: mount.mount_point,
                        root: mount.root,
                        controllers: ctrls,
                    });
                }
                "cgroup2" if unified.is_none() => {
                    unified = Some(Hierarchy {
                        v2: true,
                        mount_point: mount.mount_point,
                        root: mount.root,
                        controllers: Vec::new(),
                    });
                }
                _ => {}
            }
        }
        let has_v1_controller = hierarchies
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        let mode = match (has_v1_controller, unified.is_some()) {
            (true, true) => Mode::Hybrid,
            (true, false) => Mode::Legacy,
            (false, true) => Mode::Unified,
            (false, false) => return Err(Error::NoHierarchy),
        };
        if let Some(mut v2) = unified {
            v2.controllers = controllers(&v2.mount_point)?
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            hierarchies.push(v2);
        }
        Ok(Layout { mode, hierarchies })
    }

    /// The cgroup2 hierarchy, if mounted.
    pub fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.v2)
    }
}

struct MountLine<'a> {
    root: PathBuf,
    mount_point: PathBuf,
    fstype: &'a str,
    super_options: &'a str,
}

/// `36 35 98:0 /root /mount/point rw,relatime shared:1 - cgroup cgroup rw,memory`
fn parse_line(line: &str) -> Option<MountLine<'_>> {
    let (left, right) = line.split_once(" - ")?;
    let mut left = left.split(' ');
    let root = left.nth(3)?;
    let mount_point = left.next()?;
    let mut right = right.split(' ');
    let fstype = right.next()?;
    let super_options = right.nth(1)?;
    Some(MountLine {
        root: PathBuf::from(unescape(root)),
        mount_point: PathBuf::from(unescape(mount_point)),
        fstype,
        super_options,
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let Some(d) = octal {
            out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The caller's cgroup in `hierarchy`, from the text of `/proc/self/cgroup`, as a path relative
/// to the hierarchy's mount point.
pub(super) fn own_cgroup(proc_self_cgroup: &str, hierarchy: &Hierarchy) -> Result<PathBuf, Error> {
    let found = proc_self_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let id = parts.next()?;
        let ctrls = parts.next()?;
        let path = parts.next()?;
        let matches = if hierarchy.v2 {
            id == "0" && ctrls.is_empty()
        } else {
            !ctrls.is_empty()
                && ctrls.split(',').count() == hierarchy.controllers.len()
                && ctrls.split(',').all(|c| hierarchy.has(c))
        };
        matches.then_some(path)
    });
    let hierarchy_name = || {
        if hierarchy.v2 {
            "cgroup2".to_owned()
        } else {
            hierarchy.controllers.join(",")
        }
    };
    let path = found.ok_or_else(|| Error::OwnCgroup {
        hierarchy: hierarchy_name(),
        reason: "not listed in /proc/self/cgroup".into(),
    })?;
    // The mount may show only a subtree of the hierarchy: our cgroup must lie inside it.
    let rel = Path::new(path)
        .strip_prefix(&hierarchy.root)
        .map_err(|_| Error::OwnCgroup {
            hierarchy: hierarchy_name(),
            reason: format!(
                "{path} is outside the mounted subtree {}",
                hierarchy.root.display()
            ),
        })?;
    Ok(rel.to_path_buf())
}

/// `linux.cgroupsPath` checked and split: `(absolute, path without leading /)`.
pub(super) fn parse_cgroups_path(
    cgroups_path: Option<&Path>,
    id: &str,
) -> Result<(bool, PathBuf), Error> {
    let invalid = |path: &Path, reason: &'static str| Error::InvalidPath {
        field: "linux.cgroupsPath",
        path: path.display().to_string(),
        reason,
    };
    let path = match cgroups_path {
        Some(p) => p.to_path_buf(),
        None => {
            if id.is_empty() || id.contains('/') || id == "." || id == ".." {
                return Err(invalid(
                    Path::new(id),
                    "container id is not a single path component",
                ));
            }
            Path::new("runhcs").join(id)
        }
    };
    let text = path.to_string_lossy();
    if !path.is_absolute() && text.split(':').count() == 3 {
        return Err(Error::Unsupported {
            field: "linux.cgroupsPath".into(),
            reason: format!(
                "{text:?} is a systemd slice:prefix:name path; only the cgroupfs driver is supported"
            ),
        });
    }
    let mut rel = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => rel.push(c),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(invalid(&path, "contains a `..` component")),
            Component::Prefix(_) => return Err(invalid(&path, "not a unix path")),
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(invalid(&path, "names the root cgroup"));
    }
    Ok((path.is_absolute(), rel))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const V1: &str = "\
25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
32 25 0:28 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
99 30 0:26 /docker /mnt/memory\\040bind rw,relatime - cgroup cgroup rw,memory
";

    const V2: &str = "\
22 18 0:19 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    fn parse(text: &str) -> Layout {
        Layout::from_mountinfo(text, |p| {
            assert!(p.starts_with("/sys/fs/cgroup"));
            Ok("cpuset cpu io memory hugetlb pids rdma misc\n".into())
        })
        .unwrap()
    }

    #[test]
    fn hybrid_layout() {
        let l = Layout::from_mountinfo(HYBRID, |p| {
            assert_eq!(p, Path::new("/sys/fs/cgroup/unified"));
            Ok("hugetlb\n".into())
        })
        .unwrap();
        assert_eq!(l.mode, Mode::Hybrid);
        assert_eq!(l.hierarchies.len(), 10);
        assert_eq!(l.hierarchies[0].controllers, ["cpu"]);
        assert_eq!(l.hierarchies[8].controllers, ["name=systemd"]);
        let u = l.unified().unwrap();
        assert_eq!(u.mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(u.controllers, ["hugetlb"]);
    }

    #[test]
    fn v1_layout() {
        let l = parse(V1);
        assert_eq!(l.mode, Mode::Legacy);
        assert!(l.unified().is_none());
        let ctrls: Vec<_> = l
            .hierarchies
            .iter()
            .map(|h| h.controllers.join(","))
            .collect();
        // The second memory mount (a bind of /docker) is ignored.
        assert_eq!(
            ctrls,
            [
                "name=systemd",
                "cpu,cpuacct",
                "memory",
                "net_cls,net_prio",
                "pids"
            ]
        );
        assert_eq!(
            l.hierarchies[1].mount_point,
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
    }

    #[test]
    fn v2_layout() {
        let l = parse(V2);
        assert_eq!(l.mode, Mode::Unified);
        assert_eq!(l.hierarchies.len(), 1);
        assert!(l.hierarchies[0].v2 && l.hierarchies[0].has("memory"));
    }

    #[test]
    fn no_cgroups() {
        let text = "22 18 0:19 / /sys rw - sysfs sysfs rw\n";
        assert!(matches!(
            Layout::from_mountinfo(text, |_| unreachable!()),
            Err(Error::NoHierarchy)
        ));
    }

    #[test]
    fn unescapes_mount_points() {
        let line = "99 30 0:26 /a\\040b /mnt/x\\134y rw - cgroup cgroup rw,memory";
        let m = parse_line(line).unwrap();
        assert_eq!(m.root, Path::new("/a b"));
        assert_eq!(m.mount_point, Path::new("/mnt/x\\y"));
    }

    #[test]
    fn own_cgroup_per_hierarchy() {
        let l = Layout::from_mountinfo(HYBRID, |_| Ok("hugetlb".into())).unwrap();
        let proc = "9:name=systemd:/\n4:memory:/process_api/80b6\n1:cpu:/\n0::/user.slice\n";
        let memory = l.hierarchies.iter().find(|h| h.has("memory")).unwrap();
        assert_eq!(
            own_cgroup(proc, memory).unwrap(),
            Path::new("process_api/80b6")
        );
        assert_eq!(own_cgroup(proc, &l.hierarchies[0]).unwrap(), Path::new(""));
        assert_eq!(
            own_cgroup(proc, l.unified().unwrap()).unwrap(),
            Path::new("user.slice")
        );
        let systemd = &l.hierarchies[8];
        assert_eq!(own_cgroup(proc, systemd).unwrap(), Path::new(""));
        // pids is not listed.
        assert!(own_cgroup(proc, &l.hierarchies[7]).is_err());
    }

    #[test]
    fn own_cgroup_combined_controllers_and_subtree_mounts() {
        let h = Hierarchy {
            v2: false,
            mount_point: "/sys/fs/cgroup/cpu,cpuacct".into(),
            root: "/docker/abc".into(),
            controllers: vec!["cpu".into(), "cpuacct".into()],
        };
        let proc = "3:cpuacct,cpu:/docker/abc/sub\n";
        assert_eq!(own_cgroup(proc, &h).unwrap(), Path::new("sub"));
        let outside = "3:cpu,cpuacct:/other\n";
        assert!(matches!(
            own_cgroup(outside, &h),
            Err(Error::OwnCgroup { .. })
        ));
    }

    #[test]
    fn cgroups_path_forms() {
        let p = |s: &str| parse_cgroups_path(Some(Path::new(s)), "c1");
        assert_eq!(p("/a/b").unwrap(), (true, PathBuf::from("a/b")));
        assert_eq!(p("a/./b/").unwrap(), (false, PathBuf::from("a/b")));
        assert_eq!(
            parse_cgroups_path(None, "c1").unwrap(),
            (false, PathBuf::from("runhcs/c1"))
        );
        for bad in ["/a/../b", "..", "a/.."] {
            let e = p(bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::InvalidPath {
                        field: "linux.cgroupsPath",
                        ..
                    }
                ),
                "{bad}"
            );
        }
        assert!(matches!(p("/"), Err(Error::InvalidPath { .. })));
        let e = p("system.slice:runhcs:c1").unwrap_err();
        assert!(e.to_string().contains("linux.cgroupsPath"), "{e}");
        assert!(matches!(e, Error::Unsupported { .. }));
        assert!(parse_cgroups_path(None, "../x").is_err());
    }
}
