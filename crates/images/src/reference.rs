//! Docker-style image references, parsed by the distribution reference grammar and normalised the
//! way the docker CLI does (`busybox` → `docker.io/library/busybox:latest`).
//!
//! ```text
//! reference   := name [ ":" tag ] [ "@" digest ]
//! name        := [ domain "/" ] path
//! domain      := host [ ":" port ]          host: dns labels, or "[" ipv6 "]"
//! path        := component ( "/" component )*
//! component   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag         := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! ```
//!
//! Written here rather than taken from `oci-spec`'s `distribution::Reference`, which reports every
//! malformed name as one "invalid reference format" and accepts some names docker refuses; these
//! errors name the part (domain, path, tag, digest) that is wrong and why.

use std::fmt;
use std::str::FromStr;

use crate::digest::{self, Digest};
use crate::error::{Error, Result};

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
/// Longest allowed name (domain and path), as in the distribution grammar.
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// A normalised reference: always a domain, and a tag or a digest (or both).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises `s` (the docker CLI's `ParseNormalizedNamed` + `TagNameOnly`).
    pub fn parse(s: &str) -> Result<Self> {
        let fail = |part: &'static str, reason: String| Error::InvalidReference {
            reference: s.to_string(),
            part,
            reason,
        };
        if s.is_empty() {
            return Err(fail("name", "empty reference".into()));
        }
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(fail(
                "name",
                "a 64-character hexadecimal string is an image id, not a repository name".into(),
            ));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let d = digest::parse(d).map_err(|e| match e {
                    Error::InvalidDigest { reason, .. } => fail("digest", reason),
                    other => other,
                })?;
                (rest, Some(d))
            }
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; earlier ones belong to a domain's port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(|r| fail("tag", r))?;
        }
        if name.is_empty() {
            return Err(fail("name", "repository name is empty".into()));
        }
        if name.len() > NAME_MAX {
            return Err(fail("name", format!("longer than {NAME_MAX} characters")));
        }
        let (domain, path) = split_domain(name);
        check_domain(domain).map_err(|r| fail("domain", r))?;
        check_path(path).map_err(|r| fail("name", r))?;
        let mut domain = domain.to_string();
        if domain == LEGACY_DEFAULT_DOMAIN {
            domain = DEFAULT_DOMAIN.to_string();
        }
        let mut path = path.to_string();
        if domain == DEFAULT_DOMAIN && !path.contains('/') {
            path = format!("{OFFICIAL_REPO_PREFIX}{path}");
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The registry host (and port), e.g. `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.path
    }

    /// `domain/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        check_tag(tag).map_err(|reason| Error::InvalidReference {
            reference: tag.to_string(),
            part: "tag",
            reason,
        })?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to `digest`, without a tag.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The short form docker prints: `busybox:latest`, `user/app:1`, `localhost:5000/a:b`.
    pub fn familiar(&self) -> String {
        let name = match (
            self.domain.as_str(),
            self.path.strip_prefix(OFFICIAL_REPO_PREFIX),
        ) {
            (DEFAULT_DOMAIN, Some(short)) if !short.contains('/') => short.to_string(),
            (DEFAULT_DOMAIN, _) => self.path.clone(),
            _ => self.name(),
        };
        suffix(name, self.tag.as_deref(), self.digest.as_ref())
    }
}

fn suffix(mut s: String, tag: Option<&str>, digest: Option<&Digest>) -> String {
    if let Some(t) = tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(d.as_ref());
    }
    s
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&suffix(
            self.name(),
            self.tag.as_deref(),
            self.digest.as_ref(),
        ))
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

/// The first component is a domain if it has a '.' or ':' or is `localhost`; otherwise the name
/// is on Docker Hub. (docker also takes a bare uppercase word as a domain; `Uppercase/app` is far
/// more likely a mistyped repository, so here it fails as "must be lowercase".)
fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => (DEFAULT_DOMAIN, name),
    }
}

fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let mut bytes = tag.bytes();
    match bytes.next() {
        None => return Err("empty tag".into()),
        Some(b) if b.is_ascii_alphanumeric() || b == b'_' => {}
        Some(b) => {
            return Err(format!(
                "tag must start with a letter, digit or '_', not {:?}",
                b as char
            ))
        }
    }
    if let Some(b) = bytes.find(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
    {
        return Err(format!("{:?} is not allowed in a tag", b as char));
    }
    if tag.len() > TAG_MAX {
        return Err(format!("tag longer than {TAG_MAX} characters"));
    }
    Ok(())
}

fn check_domain(domain: &str) -> std::result::Result<(), String> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("unclosed '[' in an IPv6 host")?;
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(format!("{v6:?} is not an IPv6 address"));
        }
        match after {
            "" => return Ok(()),
            p => (None, Some(p.strip_prefix(':').ok_or("junk after ']'")?)),
        }
    } else {
        match domain.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("port {port:?} must be a number"));
        }
    }
    if let Some(host) = host {
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(format!(
                    "{label:?} is not a valid host name label in {host:?}"
                ));
            }
        }
    }
    Ok(())
}

fn check_path(path: &str) -> std::result::Result<(), String> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("repository name {path:?} must be lowercase"));
    }
    for comp in path.split('/') {
        check_component(comp).map_err(|r| format!("path component {comp:?}: {r}"))?;
    }
    Ok(())
}

fn check_component(c: &str) -> std::result::Result<(), &'static str> {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() {
        return Err("empty");
    }
    if !b
        .iter()
        .all(|&x| alnum(x) || matches!(x, b'.' | b'_' | b'-'))
    {
        return Err("only [a-z0-9] and the separators '.', '_', '__', '-' are allowed");
    }
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err("must start and end with a lowercase letter or digit");
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__" or one or more "-".
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => {}
        }
        if i == start || !b.get(i).copied().is_some_and(alnum) {
            return Err("separators must sit between letters or digits");
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
