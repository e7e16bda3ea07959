//! PostgreSQL storage end to end: two real `lilt serve` processes configured with one
//! PostgreSQL database (`[storage] backend = "postgres"`, the password in `password_file`) and
//! auth-internal; an account made through one is logged into on the other.
//!
//! Shell (processes and sockets). The test starts its own PostgreSQL on a free loopback port
//! in a temp folder (host/src/storage/test_postgres.rs, included by path; as root it runs as
//! the `postgres` user) and stops it when the test ends, failing or not. Spec: docs/storage.md.
//! Invariants checked: accounts live in the shared database, not in a process (an account
//! added with `lilt user add` against A logs in on B, a password changed against B applies on
//! A, a deleted one logs in nowhere); a wrong password is refused; a server whose database is
//! unreachable refuses to start and says which key, without the password. Needs PostgreSQL
//! installed (`scripts/postgres-deps.sh`; scripts/test.sh runs it).

#[path = "../../host/src/storage/test_postgres.rs"]
mod test_postgres;

use crate::client::{is_not_authorized, online, sasl_only_bounded};
use crate::harness::{Server, Setup, TestConfig, run_cli};
use test_postgres::PgServer;

/// The `[storage]` table for `db` on `pg`, its password in `pw_file`.
fn storage_table(pg: &PgServer, db: &str, pw_file: &std::path::Path) -> String {
    format!(
        "[storage]\nbackend = \"postgres\"\nurl = {:?}\npassword_file = {:?}\npool_size = 2\n\
         connect_timeout_seconds = 5",
        pg.url(db),
        pw_file.display().to_string()
    )
}

async fn can_log_in(server: &Server, account: &str, password: &str) -> bool {
    match sasl_only_bounded(
        server.ports().c2s_addr(),
        account,
        password,
        &["SCRAM-SHA-256"],
    )
    .await
    {
        Ok(_) => true,
        Err(e) if is_not_authorized(&e) => false,
        Err(e) => panic!("login of {account} failed oddly: {e:?}"),
    }
}

#[tokio::test]
async fn two_servers_share_accounts_through_postgres() {
    let pg = PgServer::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
    pg.psql("postgres", "CREATE DATABASE lilt")
        .unwrap_or_else(|e| panic!("create database: {e}\n{}", pg.log()));
    let pw_dir = crate::harness::TempDir::new();
    let pw_file = pw_dir.path().join("db-password");
    std::fs::write(&pw_file, format!("{}\n", pg.password())).expect("password file");
    let config = TestConfig::localhost_internal().table(&storage_table(&pg, "lilt", &pw_file));

    let a = Setup::new(config.clone()).start();
    let b = Setup::new(config).start();
    for s in [&a, &b] {
        assert!(
            !s.log().contains(pg.password()),
            "the database password was logged"
        );
    }

    // An account made against A logs in on B, with the real client, to a bound session.
    let out = a.setup_ref().user("add", "alice@localhost", "Shared-1");
    assert!(out.success(), "lilt user add against A: {out:?}");
    let (client, jid) = online(b.ports().c2s_addr(), "alice@localhost", "Shared-1").await;
    assert_eq!(jid.to_bare().to_string(), "alice@localhost");
    let _ = client.send_end().await;
    assert!(!can_log_in(&b, "alice@localhost", "wrong").await);

    // A password changed against B applies on A; a deletion against A applies on B.
    let out = b.setup_ref().user("passwd", "alice@localhost", "Shared-2");
    assert!(out.success(), "lilt user passwd against B: {out:?}");
    assert!(can_log_in(&a, "alice@localhost", "Shared-2").await);
    assert!(!can_log_in(&a, "alice@localhost", "Shared-1").await);
    let out = a.setup_ref().user("del", "alice@localhost", "");
    assert!(out.success(), "lilt user del against A: {out:?}");
    assert!(!can_log_in(&b, "alice@localhost", "Shared-2").await);

    // The accounts are rows of the shared database, not files in either data_dir.
    for s in [&a, &b] {
        assert!(
            !s.data_dir().join("lilt.sqlite3").exists(),
            "a SQLite file was made in {}",
            s.data_dir().display()
        );
    }
    drop(a);
    drop(b);

    // A database that does not exist: check-config fails, naming the key, with no password.
    let bad = Setup::new(TestConfig::localhost_internal().table(&storage_table(
        &pg,
        "no_such_db",
        &pw_file,
    )));
    let out = run_cli(&["check-config", &bad.config_arg()], "");
    assert!(
        !out.success(),
        "check-config with a missing database: {out:?}"
    );
    assert!(
        out.stderr.contains("storage.url") && out.stderr.contains("no_such_db"),
        "{out:?}"
    );
    assert!(!out.stderr.contains(pg.password()), "{out:?}");
}
