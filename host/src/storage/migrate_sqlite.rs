//! `lilt storage migrate`: copy a node's SQLite store (`data_dir/lilt.sqlite3`: accounts and
//! every plugin's `kv`) into the PostgreSQL database of a configuration whose `[storage]` is
//! `backend = "postgres"`.
//!
//! Shell (file and network IO, edge code: anyhow errors). Invariants: the SQLite file is opened
//! read-only and never changed; one of a newer schema version is refused, as is an older one
//! (the operator upgrades it first by opening it once with this lilt); every (vhost, plugin,
//! key, value) row is copied in one PostgreSQL transaction that holds both tables' EXCLUSIVE
//! lock (running servers may read meanwhile, not write), so the copy is all or nothing; the
//! usage counters are recomputed from the rows in that same transaction, so quotas count
//! exactly what is stored; a database that already holds entries is refused unless `merge`
//! is asked for (then a row with the same (vhost, plugin, key) is replaced by the SQLite one,
//! every other row is kept). Errors name the file or `storage.url`; nothing here panics on what
//! the file or the server holds. Spec: docs/storage.md ("Moving from SQLite"). Tests: `mod
//! tests` below (the SQLite side); end to end in tests/all/postgres.rs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use rusqlite::{Connection, OpenFlags};

use super::postgres::{self, pg};
use super::postgres_tls::PgTls;
use crate::config::{Config, PostgresStorage, Storage};

/// The SQLite schema version this lilt writes (storage/sqlite.rs), the only one copied.
const SQLITE_SCHEMA_VERSION: i64 = 2;

/// Rows sent to PostgreSQL per statement.
const CHUNK: usize = 1000;

/// One `plugin_kv` row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    vhost: String,
    plugin: String,
    key: String,
    value: Vec<u8>,
}

/// What was copied into one namespace.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Copied {
    entries: u64,
    /// Entries that replaced one already in PostgreSQL (only with `merge`).
    replaced: u64,
    /// The namespace's usage counter after the copy (keys plus values, in bytes).
    bytes: u64,
}

/// Run `lilt storage migrate --from FROM --config CONFIG [--merge]`: the text to print.
///
/// # Errors
/// When the configuration's storage is not PostgreSQL, FROM is not a Lilt SQLite database of
/// this schema version, PostgreSQL cannot be reached or refuses, or it already holds entries
/// and `merge` is false. Nothing is written then.
pub async fn run(config: &Config, from: &Path, merge: bool) -> anyhow::Result<String> {
    let Storage::Postgres(target) = &config.storage else {
        bail!(
            "storage.backend: this configuration keeps its data in SQLite; give the \
             configuration whose [storage] has backend = \"postgres\""
        );
    };
    let path = from.to_path_buf();
    let rows = tokio::task::spawn_blocking(move || read_sqlite(&path))
        .await
        .map_err(|e| anyhow!("reading {}: {e}", from.display()))??;
    let copied = copy_into(target, &rows, merge)
        .await
        .with_context(|| format!("storage.url: {}", target.url))?;
    Ok(report(config, from, target, &copied))
}

/// Every row of the Lilt SQLite database at `path`, checked for what PostgreSQL can store.
fn read_sqlite(path: &Path) -> anyhow::Result<Vec<Row>> {
    let shown = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {shown}"))?;
    if !meta.is_file() {
        bail!("{shown} is not a file (give the path of lilt.sqlite3, in the old data_dir)");
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {shown}"))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| anyhow!("{shown} is not a SQLite database ({e})"))?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'plugin_kv'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| anyhow!("{shown} is not a SQLite database ({e})"))?;
    if tables == 0 {
        bail!("{shown} is not a Lilt database (it has no plugin_kv table)");
    }
    if version > SQLITE_SCHEMA_VERSION {
        bail!(
            "{shown} has schema version {version}, newer than this lilt knows \
             ({SQLITE_SCHEMA_VERSION}); migrate it with a newer lilt"
        );
    }
    if version < SQLITE_SCHEMA_VERSION {
        bail!(
            "{shown} has schema version {version}, written by an older lilt; open it once with \
             this lilt on SQLite (e.g. `lilt check-config` with its old configuration), which \
             upgrades it, then migrate"
        );
    }
    // One statement: one consistent snapshot, even while a server writes the file.
    let mut stmt = conn.prepare(
        "SELECT vhost, plugin, key, CAST(value AS BLOB) FROM plugin_kv
         ORDER BY vhost, plugin, key",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Row {
                vhost: r.get(0)?,
                plugin: r.get(1)?,
                key: r.get(2)?,
                value: r.get::<_, Option<Vec<u8>>>(3)?.unwrap_or_default(),
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("reading the rows of {shown}: {e}"))?;
    // PostgreSQL's TEXT cannot hold NUL; say which row rather than fail midway.
    if let Some(bad) = rows.iter().find(|r| {
        [&r.vhost, &r.plugin, &r.key]
            .iter()
            .any(|t| t.contains('\0'))
    }) {
        bail!(
            "{shown}: the entry {:?} of {} / {} has a NUL character, which PostgreSQL text \
             cannot hold; nothing was copied",
            bad.key,
            bad.vhost,
            bad.plugin
        );
    }
    Ok(rows)
}

/// Copy `rows` in one transaction; the counters of every namespace are recomputed in it.
async fn copy_into(
    target: &PostgresStorage,
    rows: &[Row],
    merge: bool,
) -> anyhow::Result<BTreeMap<(String, String), Copied>> {
    let tls = PgTls::new(&target.tls)?;
    let (mut client, task) = postgres::connect(&target.connect, &tls).await?;
    let out = async {
        postgres::ensure_schema(&mut client).await?;
        let tx = client.transaction().await.map_err(pg)?;
        // Writers (they upsert plugin_kv_usage first) wait until the commit; readers do not.
        tx.batch_execute("LOCK TABLE plugin_kv, plugin_kv_usage IN EXCLUSIVE MODE")
            .await
            .map_err(pg)?;
        let existing: i64 = tx
            .query_one("SELECT count(*) FROM plugin_kv", &[])
            .await
            .map_err(pg)?
            .get(0);
        if existing > 0 && !merge {
            let vhosts: Vec<String> = tx
                .query(
                    "SELECT DISTINCT vhost FROM plugin_kv ORDER BY vhost LIMIT 10",
                    &[],
                )
                .await
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            bail!(
                "the database already holds {existing} entries (vhosts: {}); nothing was \
                 copied. Run again with --merge to copy into it anyway (an entry with the same \
                 vhost, plugin and key is replaced by the SQLite one, the others are kept)",
                vhosts.join(", ")
            );
        }
        let insert = tx
            .prepare(
                "INSERT INTO plugin_kv (vhost, plugin, key, value)
                 SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[])
                 ON CONFLICT (vhost, plugin, key) DO UPDATE SET value = excluded.value
                 RETURNING vhost, plugin, (xmax <> 0) AS replaced",
            )
            .await
            .map_err(pg)?;
        let mut copied: BTreeMap<(String, String), Copied> = BTreeMap::new();
        for chunk in rows.chunks(CHUNK) {
            let vhosts: Vec<&str> = chunk.iter().map(|r| r.vhost.as_str()).collect();
            let plugins: Vec<&str> = chunk.iter().map(|r| r.plugin.as_str()).collect();
            let keys: Vec<&str> = chunk.iter().map(|r| r.key.as_str()).collect();
            let values: Vec<&[u8]> = chunk.iter().map(|r| r.value.as_slice()).collect();
            for r in tx
                .query(&insert, &[&vhosts, &plugins, &keys, &values])
                .await
                .map_err(pg)?
            {
                let c = copied.entry((r.get(0), r.get(1))).or_default();
                c.entries += 1;
                if r.get::<_, bool>(2) {
                    c.replaced += 1;
                }
            }
        }
        // The counters from the rows themselves: exact whatever was there before.
        tx.batch_execute(
            "INSERT INTO plugin_kv_usage (vhost, plugin, bytes)
             SELECT vhost, plugin, SUM(octet_length(key) + octet_length(value))::BIGINT
             FROM plugin_kv GROUP BY vhost, plugin
             ON CONFLICT (vhost, plugin) DO UPDATE SET bytes = excluded.bytes;
             UPDATE plugin_kv_usage u SET bytes = 0 WHERE bytes <> 0 AND NOT EXISTS
             (SELECT 1 FROM plugin_kv k WHERE k.vhost = u.vhost AND k.plugin = u.plugin);",
        )
        .await
        .map_err(pg)?;
        let usage = tx
            .prepare("SELECT bytes FROM plugin_kv_usage WHERE vhost = $1 AND plugin = $2")
            .await
            .map_err(pg)?;
        for ((vhost, plugin), c) in &mut copied {
            let bytes: i64 = tx
                .query_one(&usage, &[vhost, plugin])
                .await
                .map_err(pg)?
                .get(0);
            c.bytes = u64::try_from(bytes).unwrap_or(0);
        }
        tx.commit().await.map_err(pg)?;
        Ok(copied)
    }
    .await;
    drop(client);
    let _ = task.await;
    out
}

/// What was copied, per vhost and namespace.
fn report(
    config: &Config,
    from: &Path,
    target: &PostgresStorage,
    copied: &BTreeMap<(String, String), Copied>,
) -> String {
    let total: u64 = copied.values().map(|c| c.entries).sum();
    let replaced: u64 = copied.values().map(|c| c.replaced).sum();
    let mut out = format!(
        "copied {total} entries from {} into {}",
        from.display(),
        target.url
    );
    if replaced > 0 {
        let _ = write!(out, " ({replaced} replaced entries already there)");
    }
    out.push('\n');
    let mut by_vhost: BTreeMap<&str, Vec<(&str, &Copied)>> = BTreeMap::new();
    for ((vhost, plugin), c) in copied {
        by_vhost
            .entry(vhost.as_str())
            .or_default()
            .push((plugin.as_str(), c));
    }
    for (vhost, namespaces) in by_vhost {
        let entries: u64 = namespaces.iter().map(|(_, c)| c.entries).sum();
        let _ = write!(out, "  {vhost}: {entries} entries");
        if config.vhost(vhost).is_none() {
            out.push_str(" (not a vhost of this configuration)");
        }
        out.push('\n');
        for (plugin, c) in namespaces {
            let _ = write!(
                out,
                "    {plugin}: {} entries, {} bytes in use",
                c.entries, c.bytes
            );
            if c.replaced > 0 {
                let _ = write!(out, ", {} replaced", c.replaced);
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lilt-migrate-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn reads_every_row_of_a_lilt_database() {
        let dir = temp();
        let path = dir.join("lilt.sqlite3");
        let store = crate::storage::open_sqlite(&path).expect("open");
        store
            .set("a.example", "auth/auth-internal", "user/alice", b"rec")
            .expect("set");
        store
            .set("b.example", "hooks/speakerstats", "k", b"")
            .expect("set");
        drop(store);
        let rows = read_sqlite(&path).expect("read");
        assert_eq!(
            rows,
            [
                Row {
                    vhost: "a.example".into(),
                    plugin: "auth/auth-internal".into(),
                    key: "user/alice".into(),
                    value: b"rec".to_vec(),
                },
                Row {
                    vhost: "b.example".into(),
                    plugin: "hooks/speakerstats".into(),
                    key: "k".into(),
                    value: Vec::new(),
                },
            ]
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn refuses_what_is_not_a_lilt_database_of_this_version() {
        let dir = temp();
        let err = |p: &Path| format!("{:#}", read_sqlite(p).expect_err("refused"));
        let e = err(&dir.join("absent.sqlite3"));
        assert!(
            e.starts_with("cannot read") && e.contains("absent.sqlite3"),
            "{e}"
        );
        let e = err(&dir);
        assert!(e.contains("is not a file"), "{e}");
        std::fs::write(
            dir.join("text"),
            "not a database, just some text\n".repeat(200),
        )
        .expect("write");
        let e = err(&dir.join("text"));
        assert!(e.contains("is not a SQLite database"), "{e}");
        let other = dir.join("other.sqlite3");
        Connection::open(&other)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x INTEGER);"))
            .expect("other");
        let e = err(&other);
        assert!(e.contains("is not a Lilt database"), "{e}");
        for (version, says) in [(3, "newer than this lilt"), (0, "older lilt")] {
            let path = dir.join(format!("v{version}.sqlite3"));
            Connection::open(&path)
                .and_then(|c| {
                    c.execute_batch(&format!(
                        "CREATE TABLE plugin_kv (vhost TEXT, plugin TEXT, key TEXT, value BLOB);
                         PRAGMA user_version = {version};"
                    ))
                })
                .expect("create");
            let e = err(&path);
            assert!(e.contains(says), "{version}: {e}");
        }
        let nul = dir.join("nul.sqlite3");
        crate::storage::open_sqlite(&nul)
            .expect("open")
            .set("a", "p", "bad\0key", b"v")
            .expect("set");
        let e = err(&nul);
        assert!(e.contains("NUL character"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
