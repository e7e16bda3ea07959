//! PostgreSQL storage end to end: two real `lilt serve` processes configured with one
//! PostgreSQL database (`[storage] backend = "postgres"`, the password in `password_file`) and
//! auth-internal; an account made through one is logged into on the other. TLS to a server
//! that accepts TCP logins over TLS only; `lilt storage migrate` from a SQLite data_dir.
//!
//! Shell (processes and sockets). The test starts its own PostgreSQL on a free loopback port
//! in a temp folder (host/src/storage/test_postgres.rs, included by path; as root it runs as
//! the `postgres` user) and stops it when the test ends, failing or not. Spec: docs/storage.md.
//! Invariants checked: accounts live in the shared database, not in a process (an account
//! added with `lilt user add` against A logs in on B, a password changed against B applies on
//! A, a deleted one logs in nowhere); a wrong password is refused; a server whose database is
//! unreachable refuses to start and says which key, without the password. TLS: with
//! `sslmode=require` and `ca_file` the CA that signed the server's certificate, `lilt user add`
//! and a login work, SCRAM-SHA-256-PLUS included (`channel_binding=require`); a wrong CA, or
//! none (the system's roots), is refused naming `storage.url`; `sslmode=disable` is refused by
//! the server; `prefer` encrypts without checking. Migration: accounts made on SQLite log in
//! after `lilt storage migrate` on PostgreSQL; the usage counters equal the rows; a second
//! migrate into the non-empty database is refused and changes nothing, `--merge` replaces;
//! a missing file, a file that is not a Lilt database, a SQLite target and an unreachable
//! server are CLI errors. Needs PostgreSQL installed (`scripts/postgres-deps.sh`;
//! scripts/test.sh runs it).

#[path = "../../host/src/storage/test_postgres.rs"]
mod test_postgres;

use crate::client::{is_not_authorized, online, sasl_only_bounded};
use crate::harness::{CliOutput, Server, Setup, TempDir, TestConfig, run_cli};
use test_postgres::{PgServer, ServerTls};

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

/// A `[storage]` table for `url` (with any sslmode), the password in `pw_file`, and the CA
/// file to trust.
fn tls_table(url: &str, pw_file: &std::path::Path, ca_file: Option<&std::path::Path>) -> String {
    let mut t = format!(
        "[storage]\nbackend = \"postgres\"\nurl = {url:?}\npassword_file = {:?}\npool_size = 2\n\
         connect_timeout_seconds = 5\n",
        pw_file.display().to_string()
    );
    if let Some(ca) = ca_file {
        t.push_str(&format!("ca_file = {:?}\n", ca.display().to_string()));
    }
    t
}

/// A CA (PEM) and a server certificate for 127.0.0.1 and localhost it signed.
fn test_pki(ca_name: &str) -> (String, ServerTls) {
    let (ca_pem, cert_pem, key_pem) = crate::tls_util::ca_and_server_cert(ca_name);
    (ca_pem, ServerTls { cert_pem, key_pem })
}

/// `lilt check-config` of a config with `table`.
fn check_config(table: &str) -> CliOutput {
    let setup = Setup::new(TestConfig::localhost_internal().table(table));
    run_cli(&["check-config", &setup.config_arg()], "")
}

#[tokio::test]
async fn tls_to_postgres_checks_the_server_certificate() {
    let (ca_pem, server_tls) = test_pki("Lilt PostgreSQL test CA");
    let (wrong_ca_pem, _) = test_pki("Some other CA");
    let pg = PgServer::start_tls(&server_tls)
        .unwrap_or_else(|e| panic!("cannot start PostgreSQL with TLS: {e}"));
    pg.psql("postgres", "CREATE DATABASE lilt")
        .unwrap_or_else(|e| panic!("create database: {e}\n{}", pg.log()));
    let files = TempDir::new();
    let pw_file = files.path().join("db-password");
    std::fs::write(&pw_file, format!("{}\n", pg.password())).expect("password file");
    let ca = files.path().join("ca.pem");
    std::fs::write(&ca, &ca_pem).expect("ca.pem");
    let wrong_ca = files.path().join("wrong-ca.pem");
    std::fs::write(&wrong_ca, &wrong_ca_pem).expect("wrong-ca.pem");

    // require + the right CA; channel_binding=require fails unless SCRAM-SHA-256-PLUS was used.
    let url = format!("{}?sslmode=require&channel_binding=require", pg.url("lilt"));
    let setup =
        Setup::new(TestConfig::localhost_internal().table(&tls_table(&url, &pw_file, Some(&ca))));
    let out = run_cli(&["check-config", &setup.config_arg()], "");
    assert!(
        out.success(),
        "check-config over TLS: {out:?}\n{}",
        pg.log()
    );
    setup.add_user("alice@localhost", "Tls-Secret-1");
    let server = setup.start();
    let (client, jid) = online(server.ports().c2s_addr(), "alice@localhost", "Tls-Secret-1").await;
    assert_eq!(jid.to_bare().to_string(), "alice@localhost");
    let _ = client.send_end().await;
    assert!(!can_log_in(&server, "alice@localhost", "wrong").await);
    assert!(
        !server.log().contains(pg.password()),
        "the password was logged"
    );
    drop(server);

    // verify-full is the same check.
    let url_full = format!("{}?sslmode=verify-full", pg.url("lilt"));
    let out = check_config(&tls_table(&url_full, &pw_file, Some(&ca)));
    assert!(out.success(), "verify-full: {out:?}");

    // A CA that did not sign the server's certificate: refused, naming the key and the file.
    let out = check_config(&tls_table(&url, &pw_file, Some(&wrong_ca)));
    assert!(!out.success(), "a wrong CA was accepted: {out:?}");
    assert!(
        out.stderr.contains("storage.url")
            && out
                .stderr
                .contains("does not verify against storage.ca_file")
            && out.stderr.contains("wrong-ca.pem"),
        "{out:?}"
    );
    assert!(!out.stderr.contains(pg.password()), "{out:?}");

    // No ca_file: the system's roots, which did not sign it either.
    let out = check_config(&tls_table(&url, &pw_file, None));
    assert!(
        !out.success(),
        "the system roots accepted a test CA: {out:?}"
    );
    assert!(out.stderr.contains("storage.url"), "{out:?}");

    // Plain text: the server (hostssl only) refuses it, and says so.
    let plain = format!("{}?sslmode=disable", pg.url("lilt"));
    let out = check_config(&tls_table(&plain, &pw_file, None));
    assert!(!out.success(), "plain text was accepted: {out:?}");
    assert!(
        out.stderr.contains("storage.url") && out.stderr.contains("no encryption"),
        "{out:?}"
    );

    // prefer encrypts when offered (this server takes nothing else) without checking.
    let prefer = format!("{}?sslmode=prefer", pg.url("lilt"));
    let out = check_config(&tls_table(&prefer, &pw_file, None));
    assert!(out.success(), "prefer: {out:?}");
}

/// `lilt storage migrate --from FROM --config CONFIG [extra]`.
fn migrate(from: &std::path::Path, config: &Setup, extra: &[&str]) -> CliOutput {
    let from = from.display().to_string();
    let config = config.config_arg();
    let mut args = vec!["storage", "migrate", "--from", &from, "--config", &config];
    args.extend_from_slice(extra);
    run_cli(&args, "")
}

#[tokio::test]
async fn sqlite_accounts_migrate_into_postgres() {
    let pg = PgServer::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
    pg.psql("postgres", "CREATE DATABASE lilt")
        .unwrap_or_else(|e| panic!("create database: {e}\n{}", pg.log()));
    let files = TempDir::new();
    let pw_file = files.path().join("db-password");
    std::fs::write(&pw_file, format!("{}\n", pg.password())).expect("password file");

    // A node on SQLite with two accounts.
    let old = Setup::new(TestConfig::localhost_internal());
    old.add_user("alice@localhost", "Old-Secret-1");
    old.add_user("bob@localhost", "Old-Secret-2");
    let sqlite = old.data_dir().join("lilt.sqlite3");
    assert!(sqlite.is_file(), "no {}", sqlite.display());

    let new =
        Setup::new(TestConfig::localhost_internal().table(&storage_table(&pg, "lilt", &pw_file)));
    let out = migrate(&sqlite, &new, &[]);
    assert!(out.success(), "migrate: {out:?}\n{}", pg.log());
    assert!(
        out.stdout.starts_with("copied ")
            && out.stdout.contains("  localhost: ")
            && out.stdout.contains("auth/auth-internal: "),
        "{out:?}"
    );
    // Every counter equals its rows.
    let counters_exact = "DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM plugin_kv_usage WHERE vhost = 'localhost' AND bytes > 0)
        THEN RAISE EXCEPTION 'no counter for localhost'; END IF;
        IF EXISTS (SELECT 1 FROM plugin_kv_usage u WHERE bytes <> (SELECT
            COALESCE(SUM(octet_length(key) + octet_length(value)), 0) FROM plugin_kv k
            WHERE k.vhost = u.vhost AND k.plugin = u.plugin))
        THEN RAISE EXCEPTION 'a usage counter differs from its rows'; END IF; END $$";
    pg.psql("lilt", counters_exact)
        .unwrap_or_else(|e| panic!("counters after migrate: {e}"));

    // The migrated accounts log in on PostgreSQL.
    let server = new.start();
    let (client, jid) = online(server.ports().c2s_addr(), "alice@localhost", "Old-Secret-1").await;
    assert_eq!(jid.to_bare().to_string(), "alice@localhost");
    let _ = client.send_end().await;
    assert!(can_log_in(&server, "bob@localhost", "Old-Secret-2").await);
    assert!(!can_log_in(&server, "bob@localhost", "Old-Secret-1").await);

    // A second migrate into the now non-empty database is refused and writes nothing.
    let new_setup = server.setup_ref();
    new_setup.add_user("carol@localhost", "New-Secret-3");
    let out = migrate(&sqlite, new_setup, &[]);
    assert!(
        !out.success(),
        "a migrate into a non-empty database: {out:?}"
    );
    assert!(
        out.stderr.contains("storage.url")
            && out.stderr.contains("already holds")
            && out.stderr.contains("--merge"),
        "{out:?}"
    );
    // --merge copies anyway: alice and bob are replaced by the SQLite rows, carol is kept.
    let out = migrate(&sqlite, new_setup, &["--merge"]);
    assert!(out.success(), "migrate --merge: {out:?}");
    assert!(out.stdout.contains("replaced"), "{out:?}");
    pg.psql("lilt", counters_exact)
        .unwrap_or_else(|e| panic!("counters after merge: {e}"));
    assert!(can_log_in(&server, "alice@localhost", "Old-Secret-1").await);
    assert!(can_log_in(&server, "carol@localhost", "New-Secret-3").await);
    drop(server);

    // Bad input: clear errors, exit code 1, no panic.
    let fails = |out: &CliOutput, says: &str| {
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stderr.contains(says), "wanted {says:?}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
    };
    let target =
        Setup::new(TestConfig::localhost_internal().table(&storage_table(&pg, "lilt", &pw_file)));
    fails(
        &migrate(&files.path().join("absent.sqlite3"), &target, &[]),
        "cannot read",
    );
    fails(
        &migrate(&target.config_path, &target, &[]),
        "is not a SQLite database",
    );
    fails(&migrate(&sqlite, &old, &[]), "storage.backend");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let unreachable = Setup::new(TestConfig::localhost_internal().table(&tls_table(
        &format!("postgres://lilt@127.0.0.1:{closed}/lilt"),
        &pw_file,
        None,
    )));
    fails(&migrate(&sqlite, &unreachable, &[]), "storage.url");
}
