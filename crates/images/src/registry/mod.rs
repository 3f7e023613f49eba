//! Registry pull and push over the OCI distribution API, with `oci-client` (reqwest + rustls
//! with the ring provider; no OpenSSL) as the HTTP/auth layer.
//!
//! - **Auth**: anonymous, basic, or a bearer token given directly; when a registry answers with
//!   a `Bearer realm=…` challenge, `oci-client` fetches a token from the realm (with the basic
//!   credentials, if any) and caches it per repository and operation.
//! - **Transport**: HTTPS, except plain HTTP for registries listed in [`Options::insecure`] and
//!   for loopback hosts (`localhost`, `127.0.0.0/8`, `[::1]`).
//! - **Pull** ([`pull`]): resolve the tag to a manifest (narrowing an index to one platform),
//!   then fetch config and layers concurrently; blobs the store already has are skipped. Every
//!   blob goes through the content store's verified atomic writer under a lease, so a pull that
//!   breaks off leaves only complete blobs (kept by the lease until it expires) and a retry
//!   fetches just what is missing. The image record is written last.
//! - **Push** ([`push`]): each blob the registry lacks is mounted from another repository of
//!   the same registry when one is known to have it (explicit [`Options::mount_from`], or the
//!   repositories recorded in the image's `distribution.source.<registry>` labels by earlier
//!   pulls and pushes), otherwise uploaded (streamed from the store); then the manifest.
//!
//! Both report [`crate::progress`] events per blob.

mod pull;
mod push;

use std::net::IpAddr;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;

pub use pull::pull;
pub use push::push;

use crate::error::{Error, Result};
use crate::platform::Matcher;
use crate::reference::Reference;

/// Label prefix recording which repository of a registry has an image's blobs.
pub const SOURCE_LABEL_PREFIX: &str = "distribution.source.";

#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// A bearer token obtained elsewhere.
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Anonymous => f.write_str("Anonymous"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

impl Auth {
    fn to_oci(&self) -> RegistryAuth {
        match self {
            Auth::Anonymous => RegistryAuth::Anonymous,
            Auth::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Auth::Bearer(t) => RegistryAuth::Bearer(t.clone()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub auth: Auth,
    /// Registries (`host[:port]`) that may be reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Blobs transferred at the same time.
    pub concurrency: usize,
    /// The platform to pull from an index (default: this host's).
    pub platform: Matcher,
    /// Push only: repositories of the target registry to mount missing blobs from.
    pub mount_from: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            auth: Auth::Anonymous,
            insecure: Vec::new(),
            concurrency: 4,
            platform: Matcher::host(),
            mount_from: Vec::new(),
        }
    }
}

/// Whether `domain` (`host[:port]`) is a loopback address.
pub fn is_loopback(domain: &str) -> bool {
    let host = match domain.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => domain.rsplit_once(':').map_or(domain, |(h, _)| h),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn client(domain: &str, opts: &Options) -> Result<oci_client::Client> {
    install_crypto_provider();
    let mut plain: Vec<String> = opts.insecure.clone();
    if is_loopback(domain) {
        plain.push(domain.to_string());
    }
    let config = ClientConfig {
        protocol: ClientProtocol::HttpsExcept(plain),
        use_monolithic_push: true,
        max_concurrent_download: opts.concurrency.max(1),
        max_concurrent_upload: opts.concurrency.max(1),
        connect_timeout: Some(std::time::Duration::from_secs(30)),
        read_timeout: Some(std::time::Duration::from_secs(120)),
        ..Default::default()
    };
    oci_client::Client::try_from(config).map_err(|e| Error::Registry {
        step: "create client for",
        target: domain.to_string(),
        source: e,
    })
}

/// reqwest is built without a default TLS backend; wharf uses rustls with ring.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none()
        && rustls::crypto::ring::default_provider()
            .install_default()
            .is_err()
    {
        // Another thread installed one in between; any installed provider will do.
        tracing::trace!("rustls crypto provider already installed");
    }
}

fn oci_ref(r: &Reference) -> oci_client::Reference {
    let (domain, repo) = (r.domain().to_string(), r.repository().to_string());
    match (r.tag(), r.digest()) {
        (Some(t), Some(d)) => {
            oci_client::Reference::with_tag_and_digest(domain, repo, t.to_string(), d.to_string())
        }
        (None, Some(d)) => oci_client::Reference::with_digest(domain, repo, d.to_string()),
        (Some(t), None) => oci_client::Reference::with_tag(domain, repo, t.to_string()),
        (None, None) => oci_client::Reference::with_tag(domain, repo, "latest".into()),
    }
}

fn registry_err(
    step: &'static str,
    target: impl std::fmt::Display,
) -> impl FnOnce(oci_client::errors::OciDistributionError) -> Error {
    let target = target.to_string();
    move |source| Error::Registry {
        step,
        target,
        source,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts() {
        for d in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:80",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(super::is_loopback(d), "{d}");
        }
        for d in [
            "docker.io",
            "10.0.0.1:5000",
            "[fe80::1]:5000",
            "localhost.example.com",
        ] {
            assert!(!super::is_loopback(d), "{d}");
        }
    }
}
