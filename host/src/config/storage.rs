//! `[storage]`: where accounts and plugin `kv` live. SQLite in `data_dir` (the embedded
//! default), or a PostgreSQL database shared by several Lilt processes.
//!
//! Pure: validation only (a `password_file` is read here). Invariants: every error names its
//! key (`storage.pool_size`); the password is never printed (not in errors, not in `Debug`);
//! a password written into `url` is refused, it belongs in `password_file`; `sslmode` in `url`
//! is read here (`disable`, `prefer`, `require`, `verify-full`; `verify-ca` is refused), and a
//! `ca_file` is read here too and only accepted with a mode that checks certificates, so a
//! setting that would be silently ignored is an error instead. Tests: `mod tests` below; end to
//! end with a real PostgreSQL (plain and TLS) in tests/all/postgres.rs.

use std::path::PathBuf;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Deserialize;

use super::{ConfigError, invalid};

/// Connections per process when `pool_size` is absent.
const DEFAULT_POOL_SIZE: usize = 4;
/// Most connections one process may open.
const MAX_POOL_SIZE: usize = 64;
/// Connect timeout when absent, and the largest accepted, in seconds.
const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 5;
const MAX_CONNECT_TIMEOUT_SECS: u64 = 60;
/// Bound on one storage operation (waiting for a connection included) when absent, and the
/// largest accepted, in seconds.
const DEFAULT_QUERY_TIMEOUT_SECS: u64 = 5;
const MAX_QUERY_TIMEOUT_SECS: u64 = 60;

/// `[storage]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    backend: Option<String>,
    url: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    pool_size: Option<usize>,
    connect_timeout_seconds: Option<u64>,
    query_timeout_seconds: Option<u64>,
}

/// The validated storage choice.
#[derive(Debug, Clone, Default)]
pub enum Storage {
    /// SQLite at `data_dir/lilt.sqlite3` (the default).
    #[default]
    Sqlite,
    /// A PostgreSQL database.
    Postgres(Box<PostgresStorage>),
}

/// `[storage] backend = "postgres"`.
#[derive(Clone)]
pub struct PostgresStorage {
    /// The connection settings parsed from `url`, with the password of `password_file` and
    /// the connect timeout applied. Its `Debug` redacts the password.
    pub connect: tokio_postgres::Config,
    /// `url` as written (it holds no password: one there is refused).
    pub url: String,
    /// Connections this process keeps at most.
    pub pool_size: usize,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// How long one storage operation may take, waiting for a free connection included.
    pub query_timeout: Duration,
    /// TLS to the database, from `sslmode` in `url` and `ca_file`.
    pub tls: PostgresTls,
}

/// TLS to PostgreSQL (`sslmode` in `storage.url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresTls {
    /// `sslmode=disable`: plain TCP only.
    Disable,
    /// `sslmode=prefer` (also when `url` names no sslmode, as libpq does): TLS when the server
    /// offers it, plain TCP when it does not. The certificate is not checked (as in libpq), so
    /// this protects against eavesdropping only; SCRAM-SHA-256-PLUS still binds the login to
    /// the TLS session.
    Prefer,
    /// `sslmode=require` or `verify-full`: TLS or no connection, the server's certificate
    /// checked against `ca_file` (else the system's root certificates) and its name against
    /// the host of `url`.
    Verify {
        /// `storage.ca_file` and the certificates read from it; `None`: the system's roots.
        ca_file: Option<(PathBuf, Vec<CertificateDer<'static>>)>,
    },
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("url", &self.url)
            .field(
                "password",
                &self.connect.get_password().map(|_| "<redacted>"),
            )
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

fn seconds(value: Option<u64>, default: u64, max: u64, key: &str) -> Result<Duration, ConfigError> {
    let v = value.unwrap_or(default);
    if v == 0 || v > max {
        return Err(invalid(
            format!("storage.{key}"),
            format!("must be between 1 and {max} seconds, got {v}"),
        ));
    }
    Ok(Duration::from_secs(v))
}

/// Validate `[storage]`; `rel` makes a relative `password_file` relative to the config file.
pub(super) fn validate_storage(
    raw: RawStorage,
    rel: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<Storage, ConfigError> {
    match raw.backend.as_deref().unwrap_or("sqlite") {
        "sqlite" => {
            for (set, key) in [
                (raw.url.is_some(), "url"),
                (raw.password_file.is_some(), "password_file"),
                (raw.ca_file.is_some(), "ca_file"),
                (raw.pool_size.is_some(), "pool_size"),
                (
                    raw.connect_timeout_seconds.is_some(),
                    "connect_timeout_seconds",
                ),
                (raw.query_timeout_seconds.is_some(), "query_timeout_seconds"),
            ] {
                if set {
                    return Err(invalid(
                        format!("storage.{key}"),
                        "only for backend = \"postgres\" (SQLite lives in data_dir)",
                    ));
                }
            }
            Ok(Storage::Sqlite)
        }
        "postgres" => validate_postgres(raw, rel).map(|p| Storage::Postgres(Box::new(p))),
        other => Err(invalid(
            "storage.backend",
            format!("unknown backend {other:?} (known: sqlite, postgres)"),
        )),
    }
}

fn validate_postgres(
    raw: RawStorage,
    rel: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<PostgresStorage, ConfigError> {
    let Some(url) = raw.url else {
        return Err(invalid(
            "storage.url",
            "backend = \"postgres\" needs a url, e.g. \"postgres://lilt@127.0.0.1:5432/lilt\"",
        ));
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(invalid(
            "storage.url",
            "must be a postgres:// URL, e.g. \"postgres://lilt@127.0.0.1:5432/lilt\"",
        ));
    }
    let (parseable, sslmode) = take_sslmode(&url)?;
    // The parser's message never echoes the URL, but a password could be in it: say only
    // that it is malformed, and what the parser said.
    let mut connect: tokio_postgres::Config = parseable
        .parse()
        .map_err(|e| invalid("storage.url", format!("not a valid PostgreSQL URL: {e}")))?;
    if connect.get_password().is_some() {
        return Err(invalid(
            "storage.url",
            "holds a password; put it in storage.password_file instead",
        ));
    }
    if connect.get_user().is_none() {
        return Err(invalid(
            "storage.url",
            "names no user, e.g. \"postgres://lilt@127.0.0.1:5432/lilt\"",
        ));
    }
    if connect.get_dbname().is_none() {
        return Err(invalid(
            "storage.url",
            "names no database, e.g. \"postgres://lilt@127.0.0.1:5432/lilt\"",
        ));
    }
    if connect.get_hosts().is_empty() {
        return Err(invalid("storage.url", "names no host"));
    }
    let tls = match sslmode.as_deref().unwrap_or("prefer") {
        "disable" => PostgresTls::Disable,
        "prefer" => PostgresTls::Prefer,
        "require" | "verify-full" => PostgresTls::Verify { ca_file: None },
        "verify-ca" => {
            return Err(invalid(
                "storage.url",
                "sslmode=verify-ca is not supported (it would skip the host name check); use \
                 sslmode=verify-full or require, which check the certificate and the host name",
            ));
        }
        other => {
            return Err(invalid(
                "storage.url",
                format!("unknown sslmode {other:?} (known: disable, prefer, require, verify-full)"),
            ));
        }
    };
    let tls = match (tls, raw.ca_file) {
        (PostgresTls::Verify { .. }, Some(file)) => {
            let path = rel(file);
            PostgresTls::Verify {
                ca_file: Some((path.clone(), read_ca_file(&path)?)),
            }
        }
        (tls, None) => tls,
        (_, Some(_)) => {
            return Err(invalid(
                "storage.ca_file",
                "only used with sslmode=require or verify-full in storage.url (disable and \
                 prefer do not check certificates)",
            ));
        }
    };
    connect.ssl_mode(match tls {
        PostgresTls::Disable => tokio_postgres::config::SslMode::Disable,
        PostgresTls::Prefer => tokio_postgres::config::SslMode::Prefer,
        PostgresTls::Verify { .. } => tokio_postgres::config::SslMode::Require,
    });
    if let Some(file) = raw.password_file {
        let path = rel(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            invalid(
                "storage.password_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let password = text.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            return Err(invalid(
                "storage.password_file",
                format!("{} is empty", path.display()),
            ));
        }
        connect.password(password);
    }
    let pool_size = raw.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
    if pool_size == 0 || pool_size > MAX_POOL_SIZE {
        return Err(invalid(
            "storage.pool_size",
            format!("must be between 1 and {MAX_POOL_SIZE}, got {pool_size}"),
        ));
    }
    let connect_timeout = seconds(
        raw.connect_timeout_seconds,
        DEFAULT_CONNECT_TIMEOUT_SECS,
        MAX_CONNECT_TIMEOUT_SECS,
        "connect_timeout_seconds",
    )?;
    let query_timeout = seconds(
        raw.query_timeout_seconds,
        DEFAULT_QUERY_TIMEOUT_SECS,
        MAX_QUERY_TIMEOUT_SECS,
        "query_timeout_seconds",
    )?;
    connect.connect_timeout(connect_timeout);
    connect.application_name("lilt");
    Ok(PostgresStorage {
        connect,
        url,
        pool_size,
        connect_timeout,
        query_timeout,
        tls,
    })
}

/// Client-side TLS files libpq reads from the URL; Lilt takes its CA from `storage.ca_file`.
const LIBPQ_TLS_FILES: [&str; 5] = ["sslrootcert", "sslcert", "sslkey", "sslcrl", "sslpassword"];

/// `url` without its `sslmode` parameter (tokio-postgres knows only disable, prefer and
/// require), and that parameter's value.
fn take_sslmode(url: &str) -> Result<(String, Option<String>), ConfigError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut kept = Vec::new();
    let mut mode = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "sslmode" {
            mode = Some(value.to_owned());
        } else if LIBPQ_TLS_FILES.contains(&key) {
            return Err(invalid(
                "storage.url",
                format!(
                    "{key} is not read from the URL: give the CA to trust in storage.ca_file \
                     (client certificates are not supported)"
                ),
            ));
        } else {
            kept.push(pair);
        }
    }
    let rebuilt = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rebuilt, mode))
}

/// The PEM certificates of `storage.ca_file`: at least one.
fn read_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let cannot = |e: &dyn std::fmt::Display| {
        invalid(
            "storage.ca_file",
            format!("cannot read {}: {e}", path.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| cannot(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cannot(&e))?;
    if certs.is_empty() {
        return Err(invalid(
            "storage.ca_file",
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Storage, ConfigError> {
        let raw: RawStorage =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        validate_storage(raw, &|p| std::path::Path::new("/base").join(p))
    }

    fn err(text: &str) -> String {
        parse(text).expect_err(text).to_string()
    }

    #[test]
    fn sqlite_is_the_default() {
        assert!(matches!(parse("").expect("empty"), Storage::Sqlite));
        assert!(matches!(
            parse("backend = \"sqlite\"").expect("sqlite"),
            Storage::Sqlite
        ));
        let e = err("url = \"postgres://u@h/db\"");
        assert!(e.starts_with("storage.url: only for backend"), "{e}");
    }

    #[test]
    fn postgres_settings_and_defaults() {
        let Storage::Postgres(p) =
            parse("backend = \"postgres\"\nurl = \"postgres://lilt@127.0.0.1:5433/lilt\"")
                .expect("valid")
        else {
            panic!("not postgres");
        };
        assert_eq!(p.pool_size, 4);
        assert_eq!(p.connect_timeout, Duration::from_secs(5));
        assert_eq!(p.query_timeout, Duration::from_secs(5));
        assert_eq!(p.connect.get_ports(), [5433]);
        assert_eq!(p.connect.get_user(), Some("lilt"));
        assert_eq!(p.connect.get_dbname(), Some("lilt"));
        assert_eq!(
            p.connect.get_connect_timeout(),
            Some(&Duration::from_secs(5))
        );
    }

    #[test]
    fn postgres_errors_name_their_key() {
        let base = "backend = \"postgres\"\n";
        for (text, key) in [
            ("", "storage.url: backend = \"postgres\" needs a url"),
            (
                "url = \"mysql://u@h/db\"",
                "storage.url: must be a postgres://",
            ),
            ("url = \"postgres://h/db\"", "storage.url: names no user"),
            ("url = \"postgres://u@h\"", "storage.url: names no database"),
            (
                "url = \"postgres://u:hunter2@h/db\"",
                "storage.url: holds a password",
            ),
            (
                "url = \"postgres://u@h/db?sslmode=verify-ca\"",
                "storage.url: sslmode=verify-ca is not supported",
            ),
            (
                "url = \"postgres://u@h/db?sslmode=maybe\"",
                "storage.url: unknown sslmode \"maybe\"",
            ),
            (
                "url = \"postgres://u@h/db?sslmode=require&sslrootcert=/ca.pem\"",
                "storage.url: sslrootcert is not read from the URL",
            ),
            (
                "url = \"postgres://u@h/db?sslmode=prefer\"\nca_file = \"ca.pem\"",
                "storage.ca_file: only used with sslmode=require",
            ),
            (
                "url = \"postgres://u@h/db\"\nca_file = \"ca.pem\"",
                "storage.ca_file: only used with sslmode=require",
            ),
            (
                "url = \"postgres://u@h/db?sslmode=require\"\nca_file = \"/nonexistent/ca.pem\"",
                "storage.ca_file: cannot read /nonexistent/ca.pem",
            ),
            (
                "url = \"postgres://u@h/db\"\npool_size = 0",
                "storage.pool_size: must be between 1 and 64",
            ),
            (
                "url = \"postgres://u@h/db\"\npool_size = 65",
                "storage.pool_size: must be between 1 and 64",
            ),
            (
                "url = \"postgres://u@h/db\"\nconnect_timeout_seconds = 61",
                "storage.connect_timeout_seconds: must be between 1 and 60",
            ),
            (
                "url = \"postgres://u@h/db\"\nquery_timeout_seconds = 0",
                "storage.query_timeout_seconds: must be between 1 and 60",
            ),
            (
                "url = \"postgres://u@h/db\"\npassword_file = \"/nonexistent/lilt-pw\"",
                "storage.password_file: cannot read /nonexistent/lilt-pw",
            ),
        ] {
            let e = err(&format!("{base}{text}"));
            assert!(e.starts_with(key), "{text}: {e}");
            assert!(!e.contains("hunter2"), "the password leaked: {e}");
        }
        let e = err("ca_file = \"ca.pem\"");
        assert!(e.starts_with("storage.ca_file: only for backend"), "{e}");
        let e = err("backend = \"mongo\"");
        assert!(e.starts_with("storage.backend: unknown backend"), "{e}");
    }

    #[test]
    fn the_password_file_is_read_and_never_printed() {
        let dir = std::env::temp_dir().join(format!("lilt-pw-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret-Pa55\n").expect("write");
        let text = format!(
            "backend = \"postgres\"\nurl = \"postgres://lilt@127.0.0.1/lilt\"\npassword_file = {:?}",
            file.display().to_string()
        );
        let storage = parse(&text).expect("valid");
        let Storage::Postgres(p) = &storage else {
            panic!("not postgres");
        };
        assert_eq!(p.connect.get_password(), Some(&b"s3cret-Pa55"[..]));
        let shown = format!("{storage:?} {:?}", p.connect);
        assert!(!shown.contains("s3cret"), "{shown}");
        std::fs::write(&file, "\n").expect("write");
        let e = err(&text);
        assert!(e.contains("is empty"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sslmode_and_ca_file() {
        use tokio_postgres::config::SslMode;
        let pg = |text: &str| match parse(&format!("backend = \"postgres\"\n{text}")) {
            Ok(Storage::Postgres(p)) => p,
            other => panic!("{text}: {other:?}"),
        };
        let p = pg("url = \"postgres://u@h/db\"");
        assert_eq!(p.tls, PostgresTls::Prefer);
        assert_eq!(p.connect.get_ssl_mode(), SslMode::Prefer);
        let p = pg("url = \"postgres://u@h/db?sslmode=disable&application_name=x\"");
        assert_eq!(p.tls, PostgresTls::Disable);
        assert_eq!(p.connect.get_ssl_mode(), SslMode::Disable);
        for mode in ["require", "verify-full"] {
            let p = pg(&format!(
                "url = \"postgres://u@h/db?connect_timeout=3&sslmode={mode}&channel_binding=require\""
            ));
            assert_eq!(p.tls, PostgresTls::Verify { ca_file: None }, "{mode}");
            assert_eq!(p.connect.get_ssl_mode(), SslMode::Require, "{mode}");
            assert_eq!(
                p.connect.get_channel_binding(),
                tokio_postgres::config::ChannelBinding::Require
            );
        }
        // A relative ca_file is relative to the config file; it must hold a certificate.
        let dir = std::env::temp_dir().join(format!("lilt-ca-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ca = rcgen::generate_simple_self_signed(vec!["db.example".to_owned()]).expect("ca");
        std::fs::write(dir.join("ca.pem"), ca.cert.pem()).expect("write");
        std::fs::write(dir.join("empty.pem"), "").expect("write");
        let raw: RawStorage = toml::from_str(
            "backend = \"postgres\"\nurl = \"postgres://u@h/db?sslmode=require\"\nca_file = \"ca.pem\"",
        )
        .expect("toml");
        let Storage::Postgres(p) = validate_storage(raw, &|p| dir.join(p)).expect("valid") else {
            panic!("not postgres");
        };
        let PostgresTls::Verify {
            ca_file: Some((path, certs)),
        } = &p.tls
        else {
            panic!("{:?}", p.tls);
        };
        assert_eq!(path, &dir.join("ca.pem"));
        assert_eq!(certs.len(), 1);
        let raw: RawStorage = toml::from_str(
            "backend = \"postgres\"\nurl = \"postgres://u@h/db?sslmode=require\"\nca_file = \"empty.pem\"",
        )
        .expect("toml");
        let e = validate_storage(raw, &|p| dir.join(p))
            .expect_err("empty")
            .to_string();
        assert!(
            e.starts_with("storage.ca_file:") && e.contains("no PEM certificate"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
