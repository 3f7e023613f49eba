//! Digests: parsing restricted to the algorithms the store can verify, and streaming hashers.
//!
//! The public digest type is [`oci_spec::image::Digest`], so descriptors from manifests are used
//! as they are; this module adds the checks that matter here (a supported algorithm, lowercase
//! hex of the right length) and computes digests while bytes stream through.

use std::io::{self, Read, Write};

pub use oci_spec::image::{Digest, DigestAlgorithm};
use sha2::Digest as _;

use crate::error::{Error, Result};

/// Parses `s` as `algorithm:hex` for sha256, sha384 or sha512.
pub fn parse(s: &str) -> Result<Digest> {
    let bad = |reason: &str| Error::InvalidDigest {
        digest: s.to_string(),
        reason: reason.to_string(),
    };
    let (alg, hex) = s
        .split_once(':')
        .ok_or_else(|| bad("missing ':' between algorithm and hex"))?;
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        "" => return Err(bad("empty algorithm")),
        _ => return Err(bad("unsupported algorithm (sha256, sha384, sha512 are)")),
    };
    if hex.len() != len {
        return Err(bad(&format!(
            "{alg} needs {len} hex characters, got {}",
            hex.len()
        )));
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad("hex part must be lowercase hexadecimal"));
    }
    Digest::try_from(s).map_err(|e| bad(&e.to_string()))
}

/// Checks that a digest taken from a document is one the store can verify.
pub fn check(d: &Digest) -> Result<()> {
    parse(d.as_ref()).map(|_| ())
}

/// The sha256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    let mut d = Digester::new(&DigestAlgorithm::Sha256);
    d.update(bytes);
    d.finish()
}

/// A running hash for one of the supported algorithms.
#[derive(Clone)]
pub enum Digester {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Digester {
    /// A hasher for `alg`; algorithms other than sha384/sha512 get sha256 (callers check first).
    pub fn new(alg: &DigestAlgorithm) -> Self {
        match alg {
            DigestAlgorithm::Sha384 => Digester::Sha384(sha2::Sha384::new()),
            DigestAlgorithm::Sha512 => Digester::Sha512(sha2::Sha512::new()),
            _ => Digester::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Digester::Sha256(h) => h.update(bytes),
            Digester::Sha384(h) => h.update(bytes),
            Digester::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        let (alg, hex) = match self {
            Digester::Sha256(h) => ("sha256", hex(&h.finalize())),
            Digester::Sha384(h) => ("sha384", hex(&h.finalize())),
            Digester::Sha512(h) => ("sha512", hex(&h.finalize())),
        };
        // The string is built from a known algorithm and lowercase hex of its exact length.
        match Digest::try_from(format!("{alg}:{hex}")) {
            Ok(d) => d,
            Err(e) => unreachable!("well-formed digest rejected: {e}"),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// A reader that hashes and counts every byte read through it.
pub struct HashingReader<R> {
    inner: R,
    digester: Digester,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R, alg: &DigestAlgorithm) -> Self {
        HashingReader {
            inner,
            digester: Digester::new(alg),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest of everything read so far, and the byte count.
    pub fn finish(self) -> (Digest, u64) {
        (self.digester.finish(), self.count)
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digester.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts every byte written through it.
pub struct HashingWriter<W> {
    inner: W,
    digester: Digester,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W, alg: &DigestAlgorithm) -> Self {
        HashingWriter {
            inner,
            digester: Digester::new(alg),
            count: 0,
        }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.digester.finish(), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            sha256(b"").as_ref(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut d = Digester::new(&DigestAlgorithm::Sha512);
        d.update(b"abc");
        assert!(d.finish().as_ref().starts_with("sha512:ddaf35a193617aba"));
    }

    #[test]
    fn parse_table() {
        let hex64 = "a".repeat(64);
        let ok = [
            format!("sha256:{hex64}"),
            format!("sha512:{}", "0".repeat(128)),
        ];
        for s in ok {
            assert_eq!(parse(&s).unwrap().as_ref(), s);
        }
        let bad = [
            ("sha256", "missing ':'"),
            (":abc", "empty algorithm"),
            ("md5:abcd", "unsupported"),
            ("sha256:abc", "64 hex"),
            (&format!("sha256:{}", "A".repeat(64)), "lowercase"),
            (&format!("sha256:{}", "g".repeat(64)), "lowercase"),
        ];
        for (s, why) in bad {
            let e = parse(s).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
            assert!(e.contains(s), "{s}: error must name the digest: {e}");
        }
    }
}
