//! `[storage]`: where accounts and plugin `kv` live. SQLite in `data_dir` (the embedded
//! default), or a PostgreSQL database shared by several Lilt processes.
//!
//! Pure: validation only (a `password_file` is read here). Invariants: every error names its
//! key (`storage.pool_size`); the password is never printed (not in errors, not in `Debug`);
//! a password written into `url` is refused, it belongs in `password_file`; TLS to the
//! database is not offered, so an `sslmode` that requires it is refused. Tests: `mod tests`
//! below; end to end with a real PostgreSQL in tests/all/postgres.rs.

use std::path::PathBuf;
use std::time::Duration;

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
    // The parser's message never echoes the URL, but a password could be in it: say only
    // that it is malformed, and what the parser said.
    let mut connect: tokio_postgres::Config = url
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
    if matches!(
        connect.get_ssl_mode(),
        tokio_postgres::config::SslMode::Require
    ) {
        return Err(invalid(
            "storage.url",
            "sslmode=require: Lilt does not speak TLS to PostgreSQL; connect over a Unix \
             socket, loopback or a private network (sslmode=disable or prefer)",
        ));
    }
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
    })
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
                "url = \"postgres://u@h/db?sslmode=require\"",
                "storage.url: sslmode=require",
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
}
