//! HTTP/1.1 over wharfd's unix socket: one connection per request (several run at once, as
//! the docker CLI does), API version negotiation with `HEAD /_ping`, Docker's JSON error
//! bodies turned into [`Error::Daemon`], JSON-lines and raw streaming bodies, and the
//! connection upgrade (`101`) that attach and exec use.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use crate::autostart;
use crate::error::{Error, Result};

/// The newest API version this client speaks.
pub const CLIENT_API: &str = "1.50";
/// Where wharfd listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/wharf/wharf.sock";

/// A request body: nothing, bytes in memory, or a stream fed through a channel (sent with
/// `Transfer-Encoding: chunked`). A [`Body::Stream`] whose producer sends an error aborts the
/// request without the final chunk, so the daemon never takes a cut-off stream for a whole one.
pub enum Body {
    Empty,
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Bytes>),
    Stream(mpsc::Receiver<std::io::Result<Bytes>>),
}

impl Body {
    pub fn json(v: &Value) -> Body {
        Body::Full(Some(Bytes::from(v.to_string())))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut *self {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Channel(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::Channel(_) | Body::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Body::Empty => http_body::SizeHint::with_exact(0),
            Body::Full(b) => {
                http_body::SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            Body::Channel(_) | Body::Stream(_) => http_body::SizeHint::default(),
        }
    }
}

/// Where the daemon is, and whether it is the default location (which we may start).
#[derive(Debug, Clone)]
pub struct Host {
    pub socket: PathBuf,
    pub is_default: bool,
}

impl Host {
    /// `-H`/`--host` (clap also fills it from `WHARF_HOST`), else `DOCKER_HOST`, else the
    /// default socket. Accepts `unix:///path` and plain paths.
    pub fn resolve(flag: Option<&str>) -> Result<Host> {
        let docker = std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty());
        let Some(v) = flag.map(str::to_string).or(docker) else {
            return Ok(Host {
                socket: PathBuf::from(DEFAULT_SOCKET),
                is_default: true,
            });
        };
        let path = if let Some(p) = v.strip_prefix("unix://") {
            p.to_string()
        } else if v.starts_with('/') {
            v.clone()
        } else {
            return Err(Error::usage(format!(
                "invalid host {v:?}: wharf speaks to wharfd over a unix socket (unix:///path)"
            )));
        };
        let socket = PathBuf::from(path);
        let is_default = socket == Path::new(DEFAULT_SOCKET);
        Ok(Host { socket, is_default })
    }
}

#[derive(Clone)]
pub struct Client {
    socket: PathBuf,
    version: String,
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes a name placed in a URL path; `/`, `:` and `@` stay (image names use them).
pub fn path_seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string builder: `Query::new().add("all", "1").opt("name", name)`.
#[derive(Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn new() -> Query {
        Query(Vec::new())
    }
    pub fn add(mut self, k: &str, v: impl Into<String>) -> Query {
        self.0.push((k.to_string(), v.into()));
        self
    }
    /// Adds `k=v` only when `v` is non-empty.
    pub fn opt(self, k: &str, v: &str) -> Query {
        if v.is_empty() {
            self
        } else {
            self.add(k, v)
        }
    }
    /// Adds `k=1` only when `b`.
    pub fn flag(self, k: &str, b: bool) -> Query {
        if b {
            self.add(k, "1")
        } else {
            self
        }
    }
    fn render(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

fn version_tuple(v: &str) -> (u32, u32) {
    let (a, b) = v.split_once('.').unwrap_or((v, "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

async fn connect(socket: &Path) -> std::io::Result<UnixStream> {
    UnixStream::connect(socket).await
}

impl Client {
    /// Connects (starting wharfd if the default socket does not answer) and negotiates the
    /// API version.
    pub async fn new(host: &Host) -> Result<Client> {
        if let Err(e) = connect(&host.socket).await {
            let startable = matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            );
            if host.is_default && startable {
                autostart::start(&host.socket).await?;
            } else {
                let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                    " (wharfd's socket is root-only: run as root)"
                } else {
                    " (is wharfd running?)"
                };
                return Err(Error::Connect {
                    socket: host.socket.clone(),
                    hint,
                    source: e,
                });
            }
        }
        let mut c = Client {
            socket: host.socket.clone(),
            version: CLIENT_API.to_string(),
        };
        c.version = c.negotiate().await?;
        Ok(c)
    }

    /// The API version in use.
    pub fn version(&self) -> &str {
        &self.version
    }

    async fn negotiate(&self) -> Result<String> {
        if let Ok(v) = std::env::var("DOCKER_API_VERSION") {
            if !v.is_empty() {
                return Ok(v.trim_start_matches('v').to_string());
            }
        }
        let mut resp = self.raw(Method::HEAD, "/_ping", Body::Empty, &[]).await?;
        if resp.status() != StatusCode::OK && resp.status() != StatusCode::INTERNAL_SERVER_ERROR {
            resp = self.raw(Method::GET, "/_ping", Body::Empty, &[]).await?;
        }
        let daemon = resp
            .headers()
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("1.24")
            .to_string();
        Ok(if version_tuple(&daemon) < version_tuple(CLIENT_API) {
            daemon
        } else {
            CLIENT_API.to_string()
        })
    }

    async fn raw(
        &self,
        method: Method,
        uri: &str,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let stream = connect(&self.socket)
            .await
            .map_err(|source| Error::Connect {
                socket: self.socket.clone(),
                hint: "",
                source,
            })?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| Error::Http {
                step: "http handshake",
                source,
            })?;
        tokio::spawn(async move {
            // Errors surface on the request future; a dropped connection is not news here.
            drop(conn.with_upgrades().await);
        });
        let needs_len = matches!(body, Body::Empty) && matches!(method, Method::POST | Method::PUT);
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "wharf")
            .header("user-agent", concat!("wharf/", env!("CARGO_PKG_VERSION")));
        if needs_len {
            req = req.header("content-length", "0");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body)
            .map_err(|e| Error::usage(format!("build request {uri}: {e}")))?;
        send.send_request(req).await.map_err(|source| Error::Http {
            step: "send request",
            source,
        })
    }

    /// Sends a versioned request; any status other than 1xx/2xx/304 becomes [`Error::Daemon`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        q: Query,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let uri = format!("/v{}{}{}", self.version, path, q.render());
        let resp = self.raw(method, &uri, body, headers).await?;
        let s = resp.status();
        if s.is_success() || s.is_informational() || s == StatusCode::NOT_MODIFIED {
            return Ok(resp);
        }
        let bytes = read_all(resp).await.unwrap_or_default();
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| {
                let t = String::from_utf8_lossy(&bytes).trim().to_string();
                if t.is_empty() {
                    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
                } else {
                    t
                }
            });
        Err(Error::Daemon {
            status: s.as_u16(),
            message,
        })
    }

    /// GET and decode a JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, q: Query) -> Result<T> {
        let resp = self.request(Method::GET, path, q, Body::Empty, &[]).await?;
        let b = read_all(resp).await?;
        serde_json::from_slice(&b).map_err(|source| Error::Decode {
            what: format!("GET {path}"),
            source,
        })
    }

    /// POST (JSON body or none); the answer as JSON, `Null` when empty.
    pub async fn post(&self, path: &str, q: Query, body: Option<&Value>) -> Result<Value> {
        let (b, h): (Body, &[(&str, &str)]) = match body {
            Some(v) => (Body::json(v), &[("content-type", "application/json")]),
            None => (Body::Empty, &[]),
        };
        let resp = self.request(Method::POST, path, q, b, h).await?;
        json_or_null(resp, path).await
    }

    /// DELETE; the answer as JSON, `Null` when empty.
    pub async fn delete(&self, path: &str, q: Query) -> Result<Value> {
        let resp = self
            .request(Method::DELETE, path, q, Body::Empty, &[])
            .await?;
        json_or_null(resp, path).await
    }

    /// A request upgraded to a raw duplex stream (attach, exec start): expects `101`.
    pub async fn hijack(
        &self,
        path: &str,
        q: Query,
        body: Option<&Value>,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>> {
        let (b, ct) = match body {
            Some(v) => (Body::json(v), "application/json"),
            None => (Body::Empty, "text/plain"),
        };
        let headers = [
            ("connection", "Upgrade"),
            ("upgrade", "tcp"),
            ("content-type", ct),
        ];
        let resp = self.request(Method::POST, path, q, b, &headers).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::Stream(format!(
                "unable to upgrade to tcp, received {}",
                resp.status().as_u16()
            )));
        }
        let up = hyper::upgrade::on(resp)
            .await
            .map_err(|source| Error::Http {
                step: "upgrade connection",
                source,
            })?;
        Ok(TokioIo::new(up))
    }
}

async fn json_or_null(resp: Response<Incoming>, path: &str) -> Result<Value> {
    let b = read_all(resp).await?;
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&b).map_err(|source| Error::Decode {
        what: path.to_string(),
        source,
    })
}

/// The whole response body.
pub async fn read_all(resp: Response<Incoming>) -> Result<Bytes> {
    Ok(resp
        .into_body()
        .collect()
        .await
        .map_err(|source| Error::Http {
            step: "read response",
            source,
        })?
        .to_bytes())
}

/// The next data chunk of a streaming body, `None` at the end.
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(source)) => {
                return Err(Error::Http {
                    step: "read response stream",
                    source,
                })
            }
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    return Ok(Some(d));
                }
            }
        }
    }
}

/// Reads newline-separated JSON objects from a streaming body.
pub struct JsonLines {
    body: Incoming,
    buf: Vec<u8>,
    done: bool,
}

impl JsonLines {
    pub fn new(resp: Response<Incoming>) -> JsonLines {
        JsonLines {
            body: resp.into_body(),
            buf: Vec::new(),
            done: false,
        }
    }

    pub async fn next(&mut self) -> Result<Option<Value>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return serde_json::from_slice(&line)
                    .map(Some)
                    .map_err(|source| Error::Decode {
                        what: "progress stream".into(),
                        source,
                    });
            }
            if self.done {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                self.buf.push(b'\n');
                continue;
            }
            match next_chunk(&mut self.body).await? {
                Some(c) => self.buf.extend_from_slice(&c),
                None => self.done = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_paths() {
        let q = Query::new()
            .add("fromImage", "docker.io/library/busybox")
            .opt("tag", "")
            .flag("all", true);
        assert_eq!(q.render(), "?fromImage=docker.io%2Flibrary%2Fbusybox&all=1");
        assert_eq!(path_seg("localhost:5000/a/b:1"), "localhost:5000/a/b:1");
        assert_eq!(path_seg("a b?"), "a%20b%3F");
        assert_eq!(encode(r#"{"a":["b"]}"#), "%7B%22a%22%3A%5B%22b%22%5D%7D");
    }

    #[test]
    fn versions() {
        assert!(version_tuple("1.9") < version_tuple("1.50"));
        assert!(version_tuple("1.43") < version_tuple("1.50"));
        assert_eq!(version_tuple("1.50"), (1, 50));
    }

    #[test]
    fn hosts() {
        let h = Host::resolve(Some("unix:///tmp/x.sock")).expect("unix host");
        assert_eq!(h.socket, PathBuf::from("/tmp/x.sock"));
        assert!(!h.is_default);
        assert!(Host::resolve(Some("tcp://1.2.3.4:2375")).is_err());
        assert!(
            Host::resolve(Some(DEFAULT_SOCKET))
                .expect("default")
                .is_default
        );
    }
}
