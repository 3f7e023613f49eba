//! HTTP plumbing: the unix-socket server, response bodies (whole or streamed), request helpers
//! and Docker's error body. Routing lives in [`crate::api`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::UnixListener;
use tokio::sync::mpsc;

use crate::daemon::Daemon;
use crate::error::{ApiError, ApiResult};

/// The newest API version whose semantics wharfd implements, and the oldest it accepts.
pub const API_VERSION: &str = "1.50";
pub const MIN_API_VERSION: &str = "1.24";

/// A response body: empty, whole, or a stream of chunks from a task.
pub enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }
}

pub type Resp = Response<Body>;

pub fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Body::Full(None));
    *r.status_mut() = status;
    r
}

pub fn json<T: Serialize>(status: StatusCode, v: &T) -> Resp {
    match serde_json::to_vec(v) {
        Ok(mut b) => {
            b.push(b'\n');
            with_type(status, "application/json", b)
        }
        Err(e) => error_response(&ApiError::internal(format!("encode response: {e}"))),
    }
}

pub fn with_type(status: StatusCode, ctype: &'static str, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Body::Full(Some(Bytes::from(body))));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

/// A streamed response; the returned sender feeds its body (drop it to end the body).
pub fn stream(status: StatusCode, ctype: &'static str) -> (Resp, mpsc::Sender<Bytes>) {
    let (tx, rx) = mpsc::channel(64);
    let mut r = Response::new(Body::Stream(rx));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    (r, tx)
}

/// A blocking `Write` into a streamed response body (for tar writers on blocking threads).
pub struct BodyWriter(pub mpsc::Sender<Bytes>);

impl std::io::Write for BodyWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(b))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Docker's error body. The content type must be exactly `application/json`: the CLI compares
/// the header literally and prints the raw body otherwise.
pub fn error_response(e: &ApiError) -> Resp {
    #[derive(Serialize)]
    struct Body<'a> {
        message: &'a str,
    }
    let b = serde_json::to_vec(&Body {
        message: &e.message,
    })
    .unwrap_or_else(|_| b"{\"message\":\"internal error\"}".to_vec());
    with_type(e.status, "application/json", b)
}

/// The parts of a request handlers use.
pub struct Req {
    pub method: hyper::Method,
    /// The path without the `/vX.Y` prefix, split on `/` (empty segments dropped).
    pub path: String,
    pub query: HashMap<String, Vec<String>>,
    pub api_version: (u32, u32),
    pub parts: hyper::http::request::Parts,
    pub body: Option<Incoming>,
}

impl Req {
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).and_then(|v| v.last()).map(String::as_str)
    }

    pub fn q_all(&self, k: &str) -> Vec<String> {
        self.query.get(k).cloned().unwrap_or_default()
    }

    /// Docker's boolean query values: `1`, `true`, `True` (anything but `0`/`false`/empty).
    pub fn q_bool(&self, k: &str) -> bool {
        match self.q(k) {
            None => false,
            Some(v) => !matches!(v, "" | "0" | "false" | "False" | "FALSE"),
        }
    }

    pub fn q_i64(&self, k: &str) -> ApiResult<Option<i64>> {
        match self.q(k) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for query parameter {k}: {v:?}"))
            }),
        }
    }

    pub fn header(&self, k: &str) -> Option<&str> {
        self.parts.headers.get(k).and_then(|v| v.to_str().ok())
    }

    /// Whether the client asked to hijack the connection (`Upgrade: tcp`).
    pub fn wants_upgrade(&self) -> bool {
        self.header("upgrade").is_some()
    }

    /// The whole body, up to `limit` bytes.
    pub async fn body_bytes(&mut self, limit: usize) -> ApiResult<Bytes> {
        let Some(body) = self.body.take() else {
            return Ok(Bytes::new());
        };
        let limited = http_body_util::Limited::new(body, limit);
        match limited.collect().await {
            Ok(c) => Ok(c.to_bytes()),
            Err(e) => Err(ApiError::bad_request(format!("read request body: {e}"))),
        }
    }

    /// Parses a JSON body into `T`, naming the field that did not fit.
    pub async fn json<T: serde::de::DeserializeOwned>(&mut self) -> ApiResult<T> {
        let b = self.body_bytes(4 << 20).await?;
        if b.iter().all(u8::is_ascii_whitespace) {
            return serde_json::from_slice(b"{}")
                .map_err(|e| ApiError::bad_request(format!("empty request body: {e}")));
        }
        serde_json::from_slice(&b)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }

    /// The future that yields the hijacked connection once a 101 response has been sent.
    pub fn on_upgrade(&mut self) -> ApiResult<hyper::upgrade::OnUpgrade> {
        self.parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or_else(|| ApiError::bad_request("this request cannot be upgraded"))
    }
}

pub fn parse_query(q: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        m.entry(percent_decode(k))
            .or_default()
            .push(percent_decode(v));
    }
    m
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits `/v1.50/containers/json` into the version and the rest.
pub fn split_version(path: &str) -> ApiResult<(Option<(u32, u32)>, &str)> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((None, path));
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let Some((maj, min)) = ver.split_once('.') else {
        return Ok((None, path));
    };
    let (Ok(maj), Ok(min)) = (maj.parse::<u32>(), min.parse::<u32>()) else {
        return Ok((None, path));
    };
    let v = (maj, min);
    if v < parse_version(MIN_API_VERSION) {
        return Err(ApiError::bad_request(format!(
            "client version {maj}.{min} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    if v > parse_version(API_VERSION) {
        return Err(ApiError::bad_request(format!(
            "client version {maj}.{min} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    Ok((Some(v), tail))
}

pub fn parse_version(s: &str) -> (u32, u32) {
    let (a, b) = s.split_once('.').unwrap_or((s, "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

/// Accepts connections until the listener fails; each connection is served on its own task,
/// with upgrades (attach / exec hijacking) enabled.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let d = daemon.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let d = d.clone();
                async move { Ok::<_, Infallible>(handle(d, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .half_close(false)
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!("connection: {e}");
            }
        });
    }
}

async fn handle(d: Arc<Daemon>, req: Request<Incoming>) -> Resp {
    let raw_path = req.uri().path().to_string();
    let query = parse_query(req.uri().query());
    let method = req.method().clone();
    let mut resp = match split_version(&raw_path) {
        Err(e) => error_response(&e),
        Ok((v, path)) => {
            let (parts, body) = req.into_parts();
            let r = Req {
                method,
                path: path.to_string(),
                query,
                api_version: v.unwrap_or_else(|| parse_version(API_VERSION)),
                parts,
                body: Some(body),
            };
            tracing::debug!(method = %r.method, path = %r.path, "request");
            match crate::api::route(&d, r).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(status = %e.status, "error: {}", e.message);
                    error_response(&e)
                }
            }
        }
    };
    let h = resp.headers_mut();
    h.insert("api-version", HeaderValue::from_static(API_VERSION));
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert(
        "server",
        HeaderValue::from_static(concat!("wharfd/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}
