//! A bearer-token server for the registry's `auth: token:` mode: an ES256 key and self-signed
//! certificate made with `openssl`, and a small HTTP server that checks basic credentials and
//! answers `GET /token?scope=…&service=…` with a JWT (certificate in `x5c`) granting the
//! requested actions.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub const SERVICE: &str = "wharf-test-registry";
pub const ISSUER: &str = "wharf-test-issuer";

pub struct TokenServer {
    pub addr: String,
    pub cert_pem: PathBuf,
    /// Tokens issued so far.
    pub issued: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    key: Arc<Key>,
}

struct Key {
    pkcs8: Vec<u8>,
    cert_der: Vec<u8>,
}

impl TokenServer {
    /// Starts the server; only `user`/`pass` get tokens.
    pub fn start(dir: &Path, user: &str, pass: &str) -> TokenServer {
        std::fs::create_dir_all(dir).unwrap();
        let (key_pem, cert_pem) = (dir.join("key.pem"), dir.join("cert.pem"));
        super::run(
            Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                ])
                .args(["-nodes", "-days", "1", "-subj", "/CN=wharf-test-token"])
                .arg("-keyout")
                .arg(&key_pem)
                .arg("-out")
                .arg(&cert_pem),
        );
        let der = |args: &[&str], input: &Path, out: &Path| {
            super::run(
                Command::new("openssl")
                    .args(args)
                    .arg("-in")
                    .arg(input)
                    .arg("-outform")
                    .arg("DER")
                    .arg("-out")
                    .arg(out),
            );
            std::fs::read(out).unwrap()
        };
        let pkcs8 = der(
            &["pkcs8", "-topk8", "-nocrypt"],
            &key_pem,
            &dir.join("key.der"),
        );
        let cert_der = der(&["x509"], &cert_pem, &dir.join("cert.der"));
        let key = Arc::new(Key { pkcs8, cert_der });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicU64::new(0));
        let (k, s, n) = (key.clone(), stop.clone(), issued.clone());
        let creds = format!("{user}:{pass}");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut authorized = false;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = h.split_once(':') {
                        if name.eq_ignore_ascii_case("authorization") {
                            let v = value.trim();
                            if let Some(b) = v.strip_prefix("Basic ") {
                                authorized = b64_decode(b) == creds.as_bytes();
                            }
                        }
                    }
                }
                let (status, body) = if authorized {
                    n.fetch_add(1, Ordering::SeqCst);
                    let jwt = k.token(&scopes(&target), "wharf");
                    (
                        "200 OK",
                        format!(r#"{{"token":"{jwt}","access_token":"{jwt}","expires_in":300}}"#),
                    )
                } else {
                    (
                        "401 Unauthorized",
                        r#"{"details":"bad credentials"}"#.to_string(),
                    )
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                if let Err(e) = conn.write_all(resp.as_bytes()) {
                    eprintln!("token server: {e}");
                }
            }
        });
        TokenServer {
            addr,
            cert_pem,
            issued,
            stop,
            key,
        }
    }

    /// The registry's `auth:` section trusting this server.
    pub fn registry_auth_yaml(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.addr,
            self.cert_pem.display()
        )
    }

    /// A token for `scope` (e.g. `repository:a/b:pull`) issued directly, for [`Auth::Bearer`].
    pub fn token_for(&self, scope: &str) -> String {
        self.key.token(&[scope.to_string()], "wharf")
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = std::net::TcpStream::connect(&self.addr) {
            eprintln!("wake token server: {e}");
        }
    }
}

impl Key {
    fn token(&self, scopes: &[String], sub: &str) -> String {
        use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|s| {
                // repository:<name>:<actions>; the name may contain ':' (a port), so split at
                // the first and the last.
                let (kind, rest) = s.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let header =
            serde_json::json!({"alg": "ES256", "typ": "JWT", "x5c": [b64_std(&self.cert_der)]});
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": sub, "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
            "iat": now, "jti": format!("{now}-{}", scopes.len()), "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64_url(header.to_string().as_bytes()),
            b64_url(claims.to_string().as_bytes())
        );
        let rng = ring::rand::SystemRandom::new();
        let kp =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8, &rng).unwrap();
        let sig = kp.sign(&rng, signing_input.as_bytes()).unwrap();
        format!("{signing_input}.{}", b64_url(sig.as_ref()))
    }
}

/// The `scope` query parameters of a request target, percent-decoded.
fn scopes(target: &str) -> Vec<String> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "scope")
        .map(|(_, v)| percent_decode(v))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if pad {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

fn b64_std(data: &[u8]) -> String {
    b64(data, STD, true)
}

fn b64_url(data: &[u8]) -> String {
    let url: [u8; 64] = std::array::from_fn(|i| match STD[i] {
        b'+' => b'-',
        b'/' => b'_',
        c => c,
    });
    b64(data, &url, false)
}

fn b64_decode(s: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|&c| c != b'=') {
        let Some(v) = STD.iter().position(|&x| x == c) else {
            return Vec::new();
        };
        bits = (bits << 6) | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}
