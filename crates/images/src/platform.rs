//! Platform selection from an image index / manifest list.
//!
//! [`select_platform`] is the one place an index is narrowed to a manifest. What "can run here"
//! and "is better" mean is a [`PlatformMatcher`]: [`Matcher`] implements the OCI rules (os,
//! architecture with aliases, CPU variants with backward compatibility, an optional preferred
//! `os.version`); the Windows build rules (`compat`) implement the same trait.

use crate::error::{Error, Result};
use crate::manifest::{is_manifest_type, Descriptor, Index, Platform};

/// Decides which platforms can run on a host and which one is preferred.
pub trait PlatformMatcher {
    /// `None` when an image for `p` cannot run here; otherwise a rank, lower is better.
    fn rank(&self, p: &Platform) -> Option<u32>;
    /// The wanted platform, for error messages.
    fn describe(&self) -> String;
}

/// The manifest in `index` that best fits `m` (ties go to the earlier entry, as in containerd).
pub fn select_platform<'a>(index: &'a Index, m: &dyn PlatformMatcher) -> Result<&'a Descriptor> {
    let mut best: Option<(u32, &Descriptor)> = None;
    for d in &index.manifests {
        if !is_manifest_type(&d.media_type) {
            continue;
        }
        let Some(rank) = d.platform.as_ref().and_then(|p| m.rank(p)) else {
            continue;
        };
        if best.is_none_or(|(r, _)| rank < r) {
            best = Some((rank, d));
        }
    }
    best.map(|(_, d)| d).ok_or_else(|| {
        let available: Vec<String> = index
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
            .collect();
        Error::NotFound {
            what: "platform",
            name: format!(
                "{} in index (available: {})",
                m.describe(),
                available.join(", ")
            ),
        }
    })
}

/// The OCI platform rules for one wanted platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// Normalised: lowercase os, GOARCH architecture, explicit default variant.
    pub platform: Platform,
}

impl Matcher {
    pub fn new(p: Platform) -> Self {
        Matcher {
            platform: normalize(&p),
        }
    }

    /// The platform this program runs on.
    pub fn host() -> Self {
        Matcher::new(Platform {
            os: std::env::consts::OS.to_string(),
            architecture: std::env::consts::ARCH.to_string(),
            ..Default::default()
        })
    }

    /// Parses `os[/arch[/variant]]` as the docker CLI's `--platform` does.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = |reason: &str| Error::InvalidArgument {
            field: format!("platform {s:?}"),
            reason: reason.to_string(),
        };
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(bad("expected os[/architecture[/variant]]"));
        }
        let host = Matcher::host().platform;
        Ok(Matcher::new(Platform {
            os: parts[0].to_string(),
            architecture: parts.get(1).map_or(host.architecture, |a| a.to_string()),
            variant: parts.get(2).map(|v| v.to_string()),
            ..Default::default()
        }))
    }
}

impl PlatformMatcher for Matcher {
    fn rank(&self, p: &Platform) -> Option<u32> {
        let p = normalize(p);
        let want = &self.platform;
        if p.os != want.os || p.architecture != want.architecture {
            return None;
        }
        let variant = variant_distance(
            &want.architecture,
            want.variant.as_deref(),
            p.variant.as_deref(),
        )?;
        let version = match (&want.os_version, &p.os_version) {
            (Some(w), Some(v)) if w == v => 0,
            (Some(_), _) => 1,
            (None, _) => 0,
        };
        Some(variant * 2 + version)
    }

    fn describe(&self) -> String {
        self.platform.to_string()
    }
}

/// How many variant steps older than the host's `want` an image's `have` is, or `None` if the
/// host cannot run it. An image without a variant runs on every variant of its architecture.
fn variant_distance(arch: &str, want: Option<&str>, have: Option<&str>) -> Option<u32> {
    let (want, have) = match (want, have) {
        (_, None) => return Some(1),
        // The host is the architecture's base level; the image needs a specific one.
        (None, Some(_)) => return None,
        (Some(w), Some(h)) if w == h => return Some(0),
        (Some(w), Some(h)) => (w, h),
    };
    let level = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u32>().ok());
    match arch {
        // arm v7 runs v6 and v5 binaries; amd64 v3 runs v2 and v1.
        "arm" | "amd64" => {
            let (w, h) = (level(want)?, level(have)?);
            (h < w).then(|| w - h + 1)
        }
        _ => None,
    }
}

/// containerd's normalisation: lowercase os, GOARCH names, default variants made explicit.
pub fn normalize(p: &Platform) -> Platform {
    let mut out = p.clone();
    out.os = match p.os.to_ascii_lowercase().as_str() {
        "macos" => "darwin".into(),
        os => os.into(),
    };
    let variant = p.variant.as_deref().map(str::to_ascii_lowercase);
    let (arch, variant) = match (
        p.architecture.to_ascii_lowercase().as_str(),
        variant.as_deref(),
    ) {
        ("i386" | "i686" | "x86", v) => ("386".to_string(), v.map(str::to_string)),
        ("x86_64" | "x86-64" | "amd64", Some("v1") | None) => ("amd64".into(), None),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64".into(), v.map(str::to_string)),
        ("aarch64" | "arm64", Some("8" | "v8") | None) => ("arm64".into(), Some("v8".into())),
        ("aarch64" | "arm64", v) => ("arm64".into(), v.map(str::to_string)),
        ("armhf", _) => ("arm".into(), Some("v7".into())),
        ("armel", _) => ("arm".into(), Some("v6".into())),
        ("arm", None) => ("arm".into(), Some("v7".into())),
        ("arm", Some(v @ ("5" | "6" | "7" | "8"))) => ("arm".into(), Some(format!("v{v}"))),
        (a, v) => (a.to_string(), v.map(str::to_string)),
    };
    out.architecture = arch;
    out.variant = variant;
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;
    use crate::digest::sha256;
    use crate::manifest::media;

    fn p(os: &str, arch: &str, variant: Option<&str>, ver: Option<&str>) -> Platform {
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
            os_version: ver.map(Into::into),
            ..Default::default()
        }
    }

    fn index(platforms: &[Platform]) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            artifact_type: None,
            manifests: platforms
                .iter()
                .enumerate()
                .map(|(i, pl)| {
                    let mut d = Descriptor::new(media::OCI_MANIFEST, sha256(&[i as u8]), 1);
                    d.platform = Some(pl.clone());
                    d
                })
                .collect(),
            subject: None,
            annotations: Default::default(),
        }
    }

    fn pick(ix: &Index, want: &str) -> Option<usize> {
        let d = select_platform(ix, &Matcher::parse(want).unwrap()).ok()?;
        ix.manifests.iter().position(|m| m == d)
    }

    #[test]
    fn selection_table() {
        let ix = index(&[
            p("linux", "amd64", None, None),
            p("linux", "arm", Some("v6"), None),
            p("linux", "arm", Some("v7"), None),
            p("linux", "arm64", Some("v8"), None),
            p("windows", "amd64", None, Some("10.0.17763.1")),
            p("unknown", "unknown", None, None),
        ]);
        let table = [
            ("linux/amd64", Some(0)),
            ("linux/x86_64", Some(0)),
            ("linux/amd64/v3", Some(0)),
            ("linux/arm/v7", Some(2)),
            ("linux/arm", Some(2)),
            ("linux/arm/v6", Some(1)),
            ("linux/arm/v5", None),
            ("linux/arm64", Some(3)),
            ("linux/aarch64", Some(3)),
            ("linux/arm64/v8", Some(3)),
            ("windows/amd64", Some(4)),
            ("linux/s390x", None),
            ("darwin/amd64", None),
        ];
        for (want, expect) in table {
            assert_eq!(pick(&ix, want), expect, "{want}");
        }
        // An arm v8 host with only v6/v7 images takes the newest compatible one.
        assert_eq!(
            pick(
                &index(&[
                    p("linux", "arm", Some("v6"), None),
                    p("linux", "arm", Some("v7"), None)
                ]),
                "linux/arm/v8"
            ),
            Some(1)
        );
        // Exact variants beat variant-less entries.
        assert_eq!(
            pick(
                &index(&[
                    p("linux", "arm64", None, None),
                    p("linux", "arm64", Some("v8"), None)
                ]),
                "linux/arm64"
            ),
            Some(0)
        );
    }

    #[test]
    fn os_version_preference_and_errors() {
        let ix = index(&[
            p("windows", "amd64", None, Some("10.0.17763.1")),
            p("windows", "amd64", None, Some("10.0.20348.1")),
        ]);
        let mut want = p("windows", "amd64", None, Some("10.0.20348.1"));
        assert_eq!(
            select_platform(&ix, &Matcher::new(want.clone())).unwrap(),
            &ix.manifests[1]
        );
        want.os_version = None;
        assert_eq!(
            select_platform(&ix, &Matcher::new(want)).unwrap(),
            &ix.manifests[0]
        );
        let e = select_platform(&ix, &Matcher::parse("linux/amd64").unwrap()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::NotFound);
        let msg = e.to_string();
        assert!(
            msg.contains("linux/amd64") && msg.contains("windows/amd64 (10.0.17763.1)"),
            "{msg}"
        );
        assert!(Matcher::parse("linux//x").is_err());
        assert!(Matcher::parse("a/b/c/d").is_err());
    }

    /// A custom matcher (as `compat` will provide) plugs into the same selection.
    #[test]
    fn custom_matcher() {
        struct BuildAtMost(u32);
        impl PlatformMatcher for BuildAtMost {
            fn rank(&self, p: &Platform) -> Option<u32> {
                let build: u32 = p.os_version.as_deref()?.split('.').nth(2)?.parse().ok()?;
                (build <= self.0).then(|| self.0 - build)
            }
            fn describe(&self) -> String {
                format!("windows build <= {}", self.0)
            }
        }
        let ix = index(&[
            p("windows", "amd64", None, Some("10.0.17763.1")),
            p("windows", "amd64", None, Some("10.0.20348.1")),
            p("windows", "amd64", None, Some("10.0.26100.1")),
        ]);
        assert_eq!(
            select_platform(&ix, &BuildAtMost(20348)).unwrap(),
            &ix.manifests[1]
        );
        assert_eq!(
            select_platform(&ix, &BuildAtMost(19000)).unwrap(),
            &ix.manifests[0]
        );
        assert!(select_platform(&ix, &BuildAtMost(1)).is_err());
    }
}
