//! OCI mount options → mount(2) flags, propagation changes, mount_setattr attributes and data.

use libc::c_ulong;

#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// Flags for the mount itself (MS_RDONLY, MS_NOSUID, MS_BIND, MS_REC, ...).
    pub flags: c_ulong,
    /// Flags the options explicitly cleared (`rw`, `suid`, `exec`, ...), for remounts.
    pub cleared: c_ulong,
    /// Propagation changes to apply after mounting, in order.
    pub propagation: Vec<c_ulong>,
    /// Recursive attributes (`rro`, `rnosuid`, ...) to set with mount_setattr(AT_RECURSIVE).
    pub rec_attr_set: u64,
    pub rec_attr_clr: u64,
    /// Filesystem-specific data (`size=64m,mode=755`).
    pub data: String,
    /// Options this runtime refuses (e.g. idmapped mounts), reported with the mount's index.
    pub unsupported: Vec<String>,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;
const MS_NOSYMFOLLOW: c_ulong = 256;

pub fn parse(options: &[String]) -> Parsed {
    let mut p = Parsed::default();
    for opt in options {
        let o = opt.as_str();
        let (set, clear): (c_ulong, c_ulong) = match o {
            "defaults" => (0, 0),
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "remount" => (libc::MS_REMOUNT, 0),
            "mand" => (libc::MS_MANDLOCK, 0),
            "nomand" => (0, libc::MS_MANDLOCK),
            "atime" => (0, libc::MS_NOATIME),
            "noatime" => (libc::MS_NOATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "lazytime" => (libc::MS_LAZYTIME, 0),
            "nolazytime" => (0, libc::MS_LAZYTIME),
            "silent" => (libc::MS_SILENT, 0),
            "loud" => (0, libc::MS_SILENT),
            "symfollow" => (0, MS_NOSYMFOLLOW),
            "nosymfollow" => (MS_NOSYMFOLLOW, 0),
            "bind" => (libc::MS_BIND, 0),
            "rbind" => (libc::MS_BIND | libc::MS_REC, 0),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                p.propagation.push(propagation_flag(o).unwrap_or(0));
                continue;
            }
            "rro" | "rrw" | "rnosuid" | "rsuid" | "rnodev" | "rdev" | "rnoexec" | "rexec"
            | "rnoatime" | "ratime" | "rstrictatime" | "rnodiratime" | "rdiratime"
            | "rnosymfollow" | "rsymfollow" => {
                let (attr, on) = rec_attr(o);
                if on {
                    p.rec_attr_set |= attr;
                } else {
                    p.rec_attr_clr |= attr;
                }
                continue;
            }
            "idmap" | "ridmap" => {
                p.unsupported.push(o.to_string());
                continue;
            }
            // runtime-specific extensions other runtimes accept and we do not need
            "tmpcopyup" | "notmpcopyup" | "copy-symlink" | "src-nofollow" => continue,
            _ => {
                if !p.data.is_empty() {
                    p.data.push(',');
                }
                p.data.push_str(o);
                continue;
            }
        };
        p.flags = (p.flags | set) & !clear;
        p.cleared = (p.cleared | clear) & !set;
    }
    p
}

pub fn propagation_flag(name: &str) -> Option<c_ulong> {
    Some(match name {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

fn rec_attr(o: &str) -> (u64, bool) {
    match o {
        "rro" => (MOUNT_ATTR_RDONLY, true),
        "rrw" => (MOUNT_ATTR_RDONLY, false),
        "rnosuid" => (MOUNT_ATTR_NOSUID, true),
        "rsuid" => (MOUNT_ATTR_NOSUID, false),
        "rnodev" => (MOUNT_ATTR_NODEV, true),
        "rdev" => (MOUNT_ATTR_NODEV, false),
        "rnoexec" => (MOUNT_ATTR_NOEXEC, true),
        "rexec" => (MOUNT_ATTR_NOEXEC, false),
        "rnoatime" => (MOUNT_ATTR_NOATIME, true),
        "ratime" => (MOUNT_ATTR_NOATIME, false),
        "rstrictatime" => (MOUNT_ATTR_STRICTATIME, true),
        "rnodiratime" => (MOUNT_ATTR_NODIRATIME, true),
        "rdiratime" => (MOUNT_ATTR_NODIRATIME, false),
        "rnosymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, true),
        _ => (MOUNT_ATTR_NOSYMFOLLOW, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_and_data() {
        let p = parse(&s(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "ro",
            "rprivate",
        ]));
        assert_eq!(
            p.flags,
            libc::MS_NOSUID | libc::MS_STRICTATIME | libc::MS_RDONLY
        );
        assert_eq!(p.data, "mode=755,size=65536k");
        assert_eq!(p.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
    }

    #[test]
    fn later_option_wins() {
        let p = parse(&s(&["ro", "rw"]));
        assert_eq!(p.flags & libc::MS_RDONLY, 0);
        assert_ne!(p.cleared & libc::MS_RDONLY, 0);
    }

    #[test]
    fn recursive_and_unsupported() {
        let p = parse(&s(&["rbind", "rro", "idmap"]));
        assert_eq!(p.flags, libc::MS_BIND | libc::MS_REC);
        assert_eq!(p.rec_attr_set, MOUNT_ATTR_RDONLY);
        assert_eq!(p.unsupported, vec!["idmap".to_string()]);
    }
}
