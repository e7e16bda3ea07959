//! A throwaway PostgreSQL server for tests: its own cluster in a temp folder (initdb), on a
//! free loopback port and a private Unix socket folder, stopped and removed on drop. Shared
//! by the storage unit tests (host/src/storage/mod.rs) and the end-to-end test
//! (tests/all/postgres.rs, which includes this file by path).
//!
//! Shell (processes, files). PostgreSQL refuses to run as root, so as root every server
//! command runs as the `postgres` user (`runuser`), which the Debian package creates, and the
//! folder is handed to it. Invariants: every command is bounded in time; the server listens
//! on 127.0.0.1 only; logins over TCP need the password (SCRAM), over the socket they are
//! trusted; the server never outlives the value (`pg_ctl stop -m immediate` in `Drop`). With
//! `start_tls` the server has `ssl=on` with the given certificate and its pg_hba.conf accepts
//! TCP logins over TLS only (`hostssl`, no `host` line).
//! Tests: used by the tests above; none of its own.

#![allow(dead_code, unreachable_pub)]

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The superuser the cluster is created with.
pub const PG_USER: &str = "lilt";
/// How long initdb, a start or a stop may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL.
#[derive(Debug)]
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    password: String,
    /// The user server commands run as (`Some("postgres")` when we are root).
    run_as: Option<String>,
    stopped: bool,
}

/// The folder holding `initdb`, `pg_ctl` and `psql`: `$LILT_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian), else the folder of `initdb` on `PATH`.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LILT_PG_BIN") {
        return Some(PathBuf::from(p));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    })
}

/// uid and gid of `user` from /etc/passwd.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user) && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

/// Run `cmd`, output to `log`, within `limit`; the log's text on failure.
fn run(mut cmd: Command, log: &Path, limit: Duration) -> Result<(), String> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{shown}: {e}"))?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                return Err(format!("{shown} failed ({status}):\n{text}"));
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown} did not finish within {limit:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{shown}: {e}")),
        }
    }
}

/// The certificate a TLS test server presents (PEM), with its private key.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The certificate chain, leaf first.
    pub cert_pem: String,
    /// The leaf's private key.
    pub key_pem: String,
}

impl PgServer {
    /// Create a cluster in a fresh temp folder and start it. Errors say what is missing.
    pub fn start() -> Result<PgServer, String> {
        Self::start_with(None)
    }

    /// `start`, with `ssl=on` and `tls` as the server's certificate; TCP logins must use TLS.
    pub fn start_tls(tls: &ServerTls) -> Result<PgServer, String> {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<&ServerTls>) -> Result<PgServer, String> {
        let bin = bin_dir().ok_or(
            "PostgreSQL is not installed (no initdb found); run `bash scripts/postgres-deps.sh` \
             or set LILT_PG_BIN",
        )?;
        let root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let run_as = root.then(|| "postgres".to_owned());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("lilt-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let password = format!("pw-{nanos}-{}", std::process::id());
        std::fs::write(dir.join("pwfile"), format!("{password}\n"))
            .map_err(|e| format!("pwfile: {e}"))?;
        let mut server = PgServer {
            dir,
            bin,
            port: 0,
            password,
            run_as,
            stopped: true,
        };
        let mut owned = vec![server.dir.clone(), server.dir.join("pwfile")];
        if let Some(tls) = tls {
            use std::os::unix::fs::PermissionsExt as _;
            for (name, text) in [("server.crt", &tls.cert_pem), ("server.key", &tls.key_pem)] {
                let path = server.dir.join(name);
                std::fs::write(&path, text).map_err(|e| format!("{name}: {e}"))?;
                // PostgreSQL refuses a key others can read.
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| format!("chmod {name}: {e}"))?;
                owned.push(path);
            }
        }
        if let Some(user) = &server.run_as {
            let (uid, gid) = user_ids(user).ok_or(
                "running as root, and there is no `postgres` user to run PostgreSQL as \
                 (the Debian package creates it: `bash scripts/postgres-deps.sh`)",
            )?;
            for p in owned {
                std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {}: {e}", p.display()))?;
            }
        }
        let data = server.dir.join("data");
        let mut initdb = server.command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                PG_USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .args(["--encoding=UTF8", "--locale=C", "--no-sync"])
            .arg(format!("--pwfile={}", server.dir.join("pwfile").display()));
        run(initdb, &server.dir.join("initdb.log"), STEP_TIMEOUT)?;
        let mut options = String::new();
        if tls.is_some() {
            // The socket stays trusted (psql); TCP needs TLS and the password.
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
            )
            .map_err(|e| format!("pg_hba.conf: {e}"))?;
            options = format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                server.dir.join("server.crt").display(),
                server.dir.join("server.key").display()
            );
        }
        // The port is free a moment before the server binds it: retry on a clash.
        let mut last = String::new();
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("no free port: {e}"))?
                .port();
            let mut start = server.command("pg_ctl");
            start
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(server.dir.join("server.log"))
                .args(["-w", "-t", "30", "-o"])
                .arg(format!(
                    "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} \
                     -c fsync=off -c full_page_writes=off -c max_connections=40{options}",
                    server.dir.display()
                ))
                .arg("start");
            match run(start, &server.dir.join("pg_ctl.log"), STEP_TIMEOUT) {
                Ok(()) => {
                    server.port = port;
                    server.stopped = false;
                    return Ok(server);
                }
                Err(e) => {
                    let log =
                        std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
                    last = format!("{e}\nserver.log:\n{log}");
                    if !log.contains("could not bind") && !log.contains("in use") {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    /// `bin/NAME`, run as the server's user when we are root.
    fn command(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password (needed over TCP).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The server's own folder (its logs are there).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `postgres://lilt@127.0.0.1:PORT/DB` (no password: see `password`).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Run one SQL command as the superuser, over the Unix socket, with psql.
    pub fn psql(&self, db: &str, sql: &str) -> Result<(), String> {
        let mut c = self.command("psql");
        c.arg("-h")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-U", PG_USER, "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql]);
        run(c, &self.dir.join("psql.log"), STEP_TIMEOUT)
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if !self.stopped {
            let mut stop = self.command("pg_ctl");
            stop.arg("-D").arg(self.dir.join("data")).args([
                "-m",
                "immediate",
                "-w",
                "-t",
                "20",
                "stop",
            ]);
            if let Err(e) = run(stop, &self.dir.join("pg_ctl.log"), STEP_TIMEOUT) {
                eprintln!("stopping the test PostgreSQL: {e}");
            }
            self.stopped = true;
        }
        if std::thread::panicking() {
            eprintln!("test PostgreSQL files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
