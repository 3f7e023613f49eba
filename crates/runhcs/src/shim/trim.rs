//! Gives back the memory an idle monitor no longer uses, so one per container stays cheap.
//!
//! A monitor is a fork of runhcs after the whole `create` path ran in it: argument parsing,
//! spec parsing, namespace and cgroup setup. That touched megabytes of the binary's text (each
//! fault maps a 64 KiB window), a deep stack and a heap, all of it counted in the monitor's RSS
//! although its loop needs a small fraction. When the loop goes idle:
//!
//! - the binary's read-only mappings that hold no private copies (`Anonymous: 0`: text and
//!   read-only data, never written) are dropped from the page tables with `MADV_DONTNEED`;
//!   what the loop runs faults back in from the page cache;
//! - stack pages well below the current stack pointer are dropped (nothing lives there: the
//!   monitor has no signal handlers);
//! - free heap memory goes back to the kernel (`malloc_trim`).

use std::io::Read;

/// Stack kept below the current frame: the calls `trim` itself makes, and the red zone.
const STACK_MARGIN: usize = 16 * 1024;

pub fn trim() {
    let mut smaps = String::new();
    if std::fs::File::open("/proc/self/smaps")
        .and_then(|mut f| f.read_to_string(&mut smaps))
        .is_err()
    {
        return;
    }
    let here = trim as *const () as usize;
    let vmas = parse(&smaps);
    let text_inode = vmas
        .iter()
        .find(|v| v.start <= here && here < v.end)
        .map(|v| v.inode)
        .filter(|&i| i != 0);
    for v in &vmas {
        if Some(v.inode) == text_inode && !v.writable && v.anonymous_kb == 0 {
            dont_need(v.start, v.end);
        }
    }
    if let Some(stack) = vmas.iter().find(|v| v.stack) {
        let marker = 0u8;
        let sp = std::hint::black_box(&marker) as *const u8 as usize;
        let top = sp.saturating_sub(STACK_MARGIN) & !(page_size() - 1);
        if top > stack.start && top < stack.end {
            dont_need(stack.start, top);
        }
    }
    drop(vmas);
    drop(smaps);
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap memory to the kernel; no live allocation moves.
    unsafe {
        libc::malloc_trim(0);
    }
}

struct Vma {
    start: usize,
    end: usize,
    writable: bool,
    inode: u64,
    stack: bool,
    anonymous_kb: u64,
}

fn parse(smaps: &str) -> Vec<Vma> {
    let mut out: Vec<Vma> = Vec::new();
    for line in smaps.lines() {
        if let Some(kb) = line.strip_prefix("Anonymous:") {
            if let Some(v) = out.last_mut() {
                v.anonymous_kb = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(1);
            }
            continue;
        }
        // A mapping header: `start-end perms offset dev inode [path]`.
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let Some((s, e)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(s, 16), usize::from_str_radix(e, 16))
        else {
            continue;
        };
        let inode = f.nth(2).and_then(|i| i.parse().ok()).unwrap_or(0);
        out.push(Vma {
            start,
            end,
            writable: perms.contains('w'),
            inode,
            stack: f.next() == Some("[stack]"),
            // Unknown until its Anonymous line: assume private copies (never dropped).
            anonymous_kb: 1,
        });
    }
    out
}

fn dont_need(start: usize, end: usize) {
    // SAFETY: the range is one of our own mappings as the kernel listed it: read-only file
    // pages without private copies (they fault back in unchanged from the page cache), or
    // stack below the live frames. Failure only leaves the pages resident.
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_smaps() {
        let text = "\
00200000-00313000 r--p 00000000 fe:00 6095493                            /
Rss:                 320 kB
Anonymous:             0 kB
00313000-00694000 r-xp 00112000 fe:00 6095493                            /
Anonymous:             0 kB
00694000-00699000 r--p 00492000 fe:00 6095493                            /
Anonymous:            16 kB
7ffe096e7000-7ffe09708000 rw-p 00000000 00:00 0                          [stack]
Anonymous:           100 kB
";
        let v = parse(text);
        assert_eq!(v.len(), 4);
        assert_eq!((v[1].start, v[1].end), (0x313000, 0x694000));
        assert_eq!(v[1].inode, 6095493);
        assert_eq!(v[2].anonymous_kb, 16);
        assert!(v[3].stack && v[3].writable && !v[0].writable);
    }

    #[test]
    fn trimming_keeps_the_process_working() {
        trim();
        // Text and stack fault back in: running more code after the trim works.
        assert_eq!(format!("{}", 6 * 7), "42");
    }
}
