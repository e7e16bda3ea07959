//! The `keys` import: public keys for token verification, fetched from a configured key
//! server (Jitsi's ASAP layout, `<url>/<sha256-hex(kid)>.pem`) and cached.
//!
//! Shell. One `KeyFetcher` per `[[key_servers]]` entry, shared by every plugin granted it.
//! Invariants: a fetch is bounded by the server's `timeout` (connect, TLS, answer and body
//! together) and its body by `max_key_bytes`; a key is cached for the server's
//! `Cache-Control: max-age` (at most a day; `no-store`/`no-cache` keep it uncached), or
//! `default_max_age` without one; a 404 is remembered for `NEGATIVE_TTL` so unknown key ids
//! cannot make every login hit the server; the cache holds at most `MAX_CACHED` ids.
//! The fetch runs on the caller's blocking thread (plugin calls run on tokio's blocking pool)
//! and its time is credited back to the call's CPU deadline like every import.
//! Tests: `mod tests` below; tests/all/jwt.rs end to end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};

use super::bindings::identity_world::lilt::plugin::keys::{self, KeyError};
use super::host_api::State;
use crate::config::KeyServer;

/// How long "no such key" is remembered.
const NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// Longest a key is kept, whatever the server says.
const MAX_TTL: Duration = Duration::from_secs(86_400);
/// Key ids cached per key server.
const MAX_CACHED: usize = 1024;
/// Longest key id accepted (JWT headers are small; this is not a place to store data).
const MAX_KID: usize = 256;

/// Fetches and caches the keys of one key server.
pub(crate) struct KeyFetcher {
    server: Arc<KeyServer>,
    cache: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    /// The PEM, or `None` for "not found".
    pem: Option<String>,
    expires: Instant,
}

impl std::fmt::Debug for KeyFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFetcher")
            .field("server", &self.server.name)
            .finish_non_exhaustive()
    }
}

impl KeyFetcher {
    pub(crate) fn new(server: Arc<KeyServer>) -> KeyFetcher {
        KeyFetcher {
            server,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The server this fetcher serves.
    pub(crate) fn server(&self) -> &Arc<KeyServer> {
        &self.server
    }

    /// The key with id `kid`: from the cache, else fetched (blocking this thread).
    pub(crate) fn public_key(&self, kid: &str) -> Result<String, KeyError> {
        if kid.is_empty() || kid.len() > MAX_KID {
            return Err(KeyError::NotFound);
        }
        let now = Instant::now();
        if let Some(c) = self.lock().get(kid).filter(|c| c.expires > now) {
            return c.pem.clone().ok_or(KeyError::NotFound);
        }
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| KeyError::Unavailable("no runtime to fetch keys on".into()))?;
        let url = key_url(&self.server.url, kid);
        let fetched = handle.block_on(async {
            tokio::time::timeout(self.server.timeout, fetch(&url, self.server.max_key_bytes))
                .await
                .unwrap_or_else(|_| {
                    Err(KeyError::Unavailable(format!(
                        "key server did not answer within {} ms",
                        self.server.timeout.as_millis()
                    )))
                })
        });
        let (answer, ttl) = match fetched {
            Ok(Fetched::Key { pem, max_age }) => {
                let ttl = max_age.unwrap_or(Some(self.server.default_max_age));
                (Ok(pem), ttl.map(|t| t.min(MAX_TTL)))
            }
            Ok(Fetched::Missing) => (Err(KeyError::NotFound), Some(NEGATIVE_TTL)),
            Err(e) => {
                tracing::warn!(message = "Key fetch failed.", key_server = %self.server.name, %url, error = ?e);
                return Err(e);
            }
        };
        if let Some(ttl) = ttl.filter(|t| !t.is_zero()) {
            let mut cache = self.lock();
            if cache.len() >= MAX_CACHED {
                cache.retain(|_, c| c.expires > now);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(
                kid.to_owned(),
                Cached {
                    pem: answer.clone().ok(),
                    expires: now + ttl,
                },
            );
        }
        answer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `<base>/<sha256-hex(kid)>.pem`.
pub(crate) fn key_url(base: &str, kid: &str) -> String {
    let hex: String = Sha256::digest(kid.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{base}/{hex}.pem")
}

#[derive(Debug)]
enum Fetched {
    /// A key, and the lifetime the server gave it (`Some(None)`: do not cache; `None`: the
    /// server said nothing).
    Key {
        pem: String,
        max_age: Option<Option<Duration>>,
    },
    Missing,
}

fn unavailable(what: impl std::fmt::Display) -> KeyError {
    KeyError::Unavailable(what.to_string())
}

async fn fetch(url: &str, max_bytes: usize) -> Result<Fetched, KeyError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| unavailable(format!("bad key URL: {e}")))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .ok_or_else(|| unavailable("key URL has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| unavailable(format!("cannot connect to {host}:{port}: {e}")))?;
    let request = Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(
            hyper::header::HOST,
            uri.authority().map_or("", |a| a.as_str()),
        )
        .header(hyper::header::USER_AGENT, "lilt")
        .body(Empty::<Bytes>::new())
        .map_err(unavailable)?;
    let response = if https {
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|e| unavailable(format!("bad TLS name {host}: {e}")))?;
        let tls = tls_connector()?
            .connect(name, tcp)
            .await
            .map_err(|e| unavailable(format!("TLS with {host}: {e}")))?;
        send(TokioIo::new(tls), request).await?
    } else {
        send(TokioIo::new(tcp), request).await?
    };
    match response.status() {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(Fetched::Missing),
        other => return Err(unavailable(format!("key server answered {other}"))),
    }
    let max_age = cache_lifetime(response.headers());
    let body = Limited::new(response.into_body(), max_bytes)
        .collect()
        .await
        .map_err(|e| unavailable(format!("key body: {e}")))?
        .to_bytes();
    match std::str::from_utf8(&body)
        .ok()
        .filter(|t| is_public_key_pem(t))
    {
        Some(pem) => Ok(Fetched::Key {
            pem: pem.to_owned(),
            max_age,
        }),
        None => Ok(Fetched::Missing),
    }
}

async fn send<I>(
    io: I,
    request: Request<Empty<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, KeyError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| unavailable(format!("HTTP: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| unavailable(format!("HTTP: {e}")))
}

/// A TLS client verifying against the system's CA bundle.
fn tls_connector() -> Result<tokio_rustls::TlsConnector, KeyError> {
    use crate::transport::tls::{client_config, system_roots};
    static CONNECTOR: std::sync::OnceLock<Result<tokio_rustls::TlsConnector, String>> =
        std::sync::OnceLock::new();
    CONNECTOR
        .get_or_init(|| client_config(system_roots()).map(tokio_rustls::TlsConnector::from))
        .clone()
        .map_err(KeyError::Unavailable)
}

/// The lifetime `Cache-Control` gives: `Some(None)` for `no-store`/`no-cache`/`max-age=0`,
/// `Some(Some(d))` for `max-age=d`, `None` when it says neither.
fn cache_lifetime(headers: &hyper::HeaderMap) -> Option<Option<Duration>> {
    let mut lifetime = None;
    for value in headers.get_all(hyper::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return Some(None);
            }
            if let Some(secs) = lower.strip_prefix("max-age=") {
                lifetime = match secs.trim_matches('"').parse::<u64>() {
                    Ok(0) | Err(_) => Some(None),
                    Ok(s) => Some(Some(Duration::from_secs(s))),
                };
            }
        }
    }
    lifetime
}

/// One PEM block holding a public key (SPKI or PKCS#1), and nothing else of substance.
fn is_public_key_pem(text: &str) -> bool {
    let text = text.trim();
    let blocks = text.matches("-----BEGIN ").count();
    blocks == 1
        && (text.starts_with("-----BEGIN PUBLIC KEY-----")
            && text.ends_with("-----END PUBLIC KEY-----")
            || text.starts_with("-----BEGIN RSA PUBLIC KEY-----")
                && text.ends_with("-----END RSA PUBLIC KEY-----"))
}

impl keys::Host for State {
    fn public_key(&mut self, kid: String) -> Result<String, KeyError> {
        let Some(fetcher) = self.sources.keys.clone() else {
            return Err(KeyError::Unavailable("no key server is granted".into()));
        };
        self.timed(|_| fetcher.public_key(&kid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_is_the_asap_layout() {
        // sha256("jitsi/key1")
        let url = key_url("http://127.0.0.1:8080/keys", "jitsi/key1");
        let hex: String = Sha256::digest(b"jitsi/key1")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(url, format!("http://127.0.0.1:8080/keys/{hex}.pem"));
        assert_eq!(hex.len(), 64);
    }

    #[test]
    fn cache_control_is_followed() {
        let h = |v: &str| {
            let mut m = hyper::HeaderMap::new();
            m.insert(hyper::header::CACHE_CONTROL, v.parse().expect("header"));
            cache_lifetime(&m)
        };
        assert_eq!(h("max-age=600"), Some(Some(Duration::from_secs(600))));
        assert_eq!(h("public, max-age=60"), Some(Some(Duration::from_secs(60))));
        assert_eq!(h("no-store"), Some(None));
        assert_eq!(h("max-age=0"), Some(None));
        assert_eq!(h("max-age=x"), Some(None));
        assert_eq!(h("public"), None);
        assert_eq!(cache_lifetime(&hyper::HeaderMap::new()), None);
    }

    #[test]
    fn only_one_public_key_pem_is_a_key() {
        let key = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n";
        assert!(is_public_key_pem(key));
        assert!(is_public_key_pem(
            "-----BEGIN RSA PUBLIC KEY-----\nMIIB\n-----END RSA PUBLIC KEY-----"
        ));
        assert!(!is_public_key_pem(
            "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"
        ));
        assert!(!is_public_key_pem(&format!("{key}{key}")));
        assert!(!is_public_key_pem("<html>not found</html>"));
    }

    #[test]
    fn odd_key_ids_are_not_fetched() {
        let f = KeyFetcher::new(Arc::new(KeyServer {
            name: "k".into(),
            url: "http://127.0.0.1:9".into(),
            timeout: Duration::from_millis(100),
            max_key_bytes: 1024,
            default_max_age: Duration::from_secs(1),
        }));
        assert!(matches!(f.public_key(""), Err(KeyError::NotFound)));
        assert!(matches!(
            f.public_key(&"k".repeat(300)),
            Err(KeyError::NotFound)
        ));
        // No runtime here: a real id is refused as unavailable, not a panic.
        assert!(matches!(f.public_key("kid"), Err(KeyError::Unavailable(_))));
    }
}
