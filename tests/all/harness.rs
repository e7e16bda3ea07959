//! Test harness: one real `lilt` process per test, on free loopback ports, in its own
//! temporary directory, killed when the `Server` value is dropped.
//!
//! Shell (processes, files, sockets). Spec: the `lilt` command line (`serve --config`,
//! `check-config`, `user add|del|passwd`) and its TOML config, as documented in
//! docs/architecture.md and host/src/config/mod.rs.
//! Invariants: every wait here is bounded in time; the server process never outlives its
//! `Server` (killed in `Drop`); only 127.0.0.1 is ever bound or dialled; the server's
//! stdout and stderr go to `<tmp>/server.log`, which is printed when a test panics.
//! Tests: this is the harness of tests/all/*.rs; it has no tests of its own.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to open all its ports (plugins are compiled at start).
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one CLI command may run.
const CLI_TIMEOUT: Duration = Duration::from_secs(90);

/// The workspace root (the parent of `tests/`).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The `lilt` binary: `$LILT_BIN`, else `lilt` in the same profile folder as this test
/// binary (`target/<profile>/deps/all-*` → `target/<profile>/lilt`), else
/// `<workspace>/target/debug/lilt`. Panics with a clear message when it is missing.
pub(crate) fn lilt_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LILT_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "LILT_BIN={} does not exist", p.display());
        return p;
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(profile_dir) = exe.parent().and_then(Path::parent)
    {
        candidates.push(profile_dir.join("lilt"));
    }
    candidates.push(workspace_root().join("target/debug/lilt"));
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "the lilt binary is missing (looked at {candidates:?}); build it first with \
         `cargo build -p lilt` (scripts/test.sh does this), or set LILT_BIN"
    );
}

/// The folder holding `auth_anonymous.wasm` and `auth_internal.wasm`: `$LILT_PLUGIN_DIR`,
/// else the first `wasm32-wasip2/release` holding them under `$CARGO_TARGET_DIR`, this test
/// binary's target folder, or `<workspace>/target`. Panics when a plugin is missing.
pub(crate) fn plugin_dir() -> PathBuf {
    const REL: &str = "wasm32-wasip2/release";
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("LILT_PLUGIN_DIR") {
        candidates.push(PathBuf::from(p));
    } else {
        if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
            candidates.push(PathBuf::from(t).join(REL));
        }
        // target/<profile>/deps/all-* → target/
        if let Ok(exe) = std::env::current_exe()
            && let Some(target) = exe.parent().and_then(Path::parent).and_then(Path::parent)
        {
            candidates.push(target.join(REL));
        }
        candidates.push(workspace_root().join("target").join(REL));
    }
    let has_plugins = |d: &PathBuf| d.join("auth_internal.wasm").is_file();
    let dir = candidates
        .iter()
        .find(|d| has_plugins(d))
        .unwrap_or(&candidates[0])
        .clone();
    for f in ["auth_anonymous.wasm", "auth_internal.wasm"] {
        assert!(
            dir.join(f).is_file(),
            "plugin {} is missing; build the plugins first with `cargo build --release \
             --target wasm32-wasip2 -p auth-anonymous -p auth-internal` (scripts/setup.sh does this)",
            dir.join(f).display()
        );
    }
    dir
}

/// A temporary folder, removed on drop (kept when the test panicked, for its logs).
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty folder under the system temp dir.
    pub(crate) fn new() -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("lilt-test-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `N` distinct loopback ports that were free a moment ago: the listeners are held until all
/// are chosen, so the kernel cannot hand out the same port twice.
pub(crate) fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local addr").port())
}

/// One `[[vhosts]]` entry.
#[derive(Clone, Debug)]
pub(crate) struct Vhost {
    /// Its domain.
    pub(crate) domain: String,
    /// `auth-internal` or `auth-anonymous`.
    pub(crate) plugin: String,
    /// `allow_unencrypted`.
    pub(crate) allow_unencrypted: bool,
    /// The auth plugin's settings, an inline TOML table.
    pub(crate) auth_settings: String,
    /// Further TOML tables of this vhost (`[vhosts.muc]`, `[[vhosts.plugins]]`).
    pub(crate) tables: Vec<String>,
}

impl Vhost {
    /// A vhost with accounts (auth-internal), plain TCP allowed.
    pub(crate) fn internal(domain: &str) -> Vhost {
        Vhost {
            domain: domain.to_owned(),
            plugin: "auth-internal".into(),
            allow_unencrypted: true,
            auth_settings: "{ }".into(),
            tables: Vec::new(),
        }
    }

    /// An anonymous vhost, plain TCP allowed.
    pub(crate) fn anonymous(domain: &str) -> Vhost {
        Vhost {
            domain: domain.to_owned(),
            plugin: "auth-anonymous".into(),
            allow_unencrypted: true,
            auth_settings: "{ }".into(),
            tables: Vec::new(),
        }
    }

    /// The same vhost with a further TOML table, e.g. `[vhosts.muc]\ndomain = "…"`.
    pub(crate) fn with(mut self, table: &str) -> Vhost {
        self.tables.push(table.to_owned());
        self
    }

    /// A vhost whose auth plugin is `plugin` with `settings` (an inline TOML table).
    pub(crate) fn with_auth(mut self, plugin: &str, settings: &str) -> Vhost {
        self.plugin = plugin.to_owned();
        self.auth_settings = settings.to_owned();
        self
    }

    /// The same vhost with TLS required.
    pub(crate) fn tls_required(mut self) -> Vhost {
        self.allow_unencrypted = false;
        self
    }
}

/// What a test server is configured with; rendered to TOML by [`Setup::new`].
#[derive(Clone, Debug)]
pub(crate) struct TestConfig {
    /// Virtual hosts.
    pub(crate) vhosts: Vec<Vhost>,
    /// `(domain, secret)` of each XEP-0114 component.
    pub(crate) components: Vec<(String, String)>,
    /// `limits.max_stanza_bytes`.
    pub(crate) max_stanza_bytes: usize,
    /// `limits.max_depth`.
    pub(crate) max_depth: usize,
    /// `limits.unauthenticated_timeout_seconds`.
    pub(crate) unauthenticated_timeout_seconds: u64,
    /// `stream_management.resume_timeout_seconds`.
    pub(crate) resume_timeout_seconds: u64,
    /// `[tls]` cert and key files; `None` lets the server generate a certificate.
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
    /// Extra `key = value` lines for the `[http]` section.
    pub(crate) http: Vec<String>,
    /// Further top-level TOML tables, e.g. `[plugin_limits]\ncall_timeout_ms = 500`.
    pub(crate) tables: Vec<String>,
    /// `limits.max_connections`.
    pub(crate) max_connections: usize,
    /// Extra `key = value` lines for the `[limits]` section.
    pub(crate) limits: Vec<String>,
}

impl TestConfig {
    /// The given vhosts, default limits, no components.
    pub(crate) fn new(vhosts: Vec<Vhost>) -> TestConfig {
        TestConfig {
            vhosts,
            components: Vec::new(),
            max_stanza_bytes: 262_144,
            max_depth: 64,
            unauthenticated_timeout_seconds: 30,
            resume_timeout_seconds: 300,
            tls: None,
            http: Vec::new(),
            tables: Vec::new(),
            max_connections: 1000,
            limits: Vec::new(),
        }
    }

    /// Add a `key = value` line to the `[limits]` section.
    pub(crate) fn limit(mut self, line: &str) -> TestConfig {
        self.limits.push(line.to_owned());
        self
    }

    /// Add a top-level TOML table.
    pub(crate) fn table(mut self, table: &str) -> TestConfig {
        self.tables.push(table.to_owned());
        self
    }

    /// One vhost `localhost` with accounts (auth-internal) and plain TCP allowed.
    pub(crate) fn localhost_internal() -> TestConfig {
        TestConfig::new(vec![Vhost::internal("localhost")])
    }

    /// One anonymous vhost `localhost` with plain TCP allowed.
    pub(crate) fn localhost_anonymous() -> TestConfig {
        TestConfig::new(vec![Vhost::anonymous("localhost")])
    }

    /// Add a `key = value` line to the `[http]` section.
    pub(crate) fn http(mut self, line: &str) -> TestConfig {
        self.http.push(line.to_owned());
        self
    }

    /// Add a component.
    pub(crate) fn component(mut self, domain: &str, secret: &str) -> TestConfig {
        self.components.push((domain.to_owned(), secret.to_owned()));
        self
    }
}

/// The loopback ports of one server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ports {
    /// `c2s` (plain TCP, STARTTLS offered).
    pub(crate) c2s: u16,
    /// `c2s_direct_tls` (XEP-0368).
    pub(crate) direct_tls: u16,
    /// `component` (XEP-0114).
    pub(crate) component: u16,
    /// `http` (WebSocket, BOSH, health, metrics), plain.
    pub(crate) http: u16,
    /// `http` with `tls = true`.
    pub(crate) https: u16,
}

impl Ports {
    /// `127.0.0.1:<c2s>`.
    pub(crate) fn c2s_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.c2s))
    }

    /// `127.0.0.1:<direct_tls>`.
    pub(crate) fn direct_tls_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.direct_tls))
    }

    /// `http://127.0.0.1:<http>` + `path`.
    pub(crate) fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    /// `ws://127.0.0.1:<http>/xmpp-websocket`.
    pub(crate) fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/xmpp-websocket", self.http)
    }

    /// `127.0.0.1:<http>`.
    pub(crate) fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http))
    }

    /// `127.0.0.1:<component>`.
    pub(crate) fn component_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.component))
    }
}

/// The outcome of one CLI run.
#[derive(Debug)]
pub(crate) struct CliOutput {
    /// Exit code (`None` when killed by a signal).
    pub(crate) code: Option<i32>,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

impl CliOutput {
    /// Exit code 0.
    pub(crate) fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Run `lilt ARGS` with `stdin` piped in, bounded by [`CLI_TIMEOUT`].
pub(crate) fn run_cli(args: &[&str], stdin: &str) -> CliOutput {
    run_cli_in(None, args, stdin)
}

/// `run_cli` with the working directory `dir` (for relative paths on the command line).
pub(crate) fn run_cli_in(dir: Option<&Path>, args: &[&str], stdin: &str) -> CliOutput {
    let mut cmd = Command::new(lilt_bin());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let mut child = cmd
        .args(args)
        .env("LILT_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lilt");
    if let Some(mut input) = child.stdin.take() {
        // The command may exit before reading stdin; that is its business.
        let _ = input.write_all(stdin.as_bytes());
    }
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + CLI_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("wait for lilt") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`lilt {}` did not finish within {CLI_TIMEOUT:?}",
                    args.join(" ")
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    CliOutput {
        code: status.code(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// A written config and data folder, before (and between) server runs. Accounts are usually
/// created here, before `start`, so that no test depends on live reloading.
pub(crate) struct Setup {
    /// The temporary folder (config, data, log).
    pub(crate) dir: TempDir,
    /// The config file.
    pub(crate) config_path: PathBuf,
    /// The ports written into the config.
    pub(crate) ports: Ports,
}

impl Setup {
    /// Write `config` to `<tmp>/lilt.toml` with fresh ports.
    pub(crate) fn new(config: TestConfig) -> Setup {
        let dir = TempDir::new();
        let ports = free_ports::<5>();
        let ports = Ports {
            c2s: ports[0],
            direct_tls: ports[1],
            component: ports[2],
            http: ports[3],
            https: ports[4],
        };
        let config_path = dir.path().join("lilt.toml");
        let text = render_config(&config, &dir.path().join("data"), &plugin_dir(), ports);
        std::fs::write(&config_path, text).expect("write config");
        Setup {
            dir,
            config_path,
            ports,
        }
    }

    /// The data folder (`data_dir`).
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The config path as a string, for CLI arguments.
    pub(crate) fn config_arg(&self) -> String {
        self.config_path.display().to_string()
    }

    /// `lilt user <action> <jid> --config <file>` with `password` on stdin.
    pub(crate) fn user(&self, action: &str, jid: &str, password: &str) -> CliOutput {
        let config = self.config_arg();
        run_cli(
            &["user", action, jid, "--config", &config],
            &format!("{password}\n"),
        )
    }

    /// `lilt user add`, which must succeed.
    pub(crate) fn add_user(&self, jid: &str, password: &str) {
        let out = self.user("add", jid, password);
        assert!(out.success(), "lilt user add {jid} failed: {out:?}");
    }

    /// Start `lilt serve` and wait until every listener accepts. Ports are picked free but
    /// released before the server binds them, so another process may take one meanwhile:
    /// when the server exits because an address is in use, it is started again on fresh
    /// ports (at most three times).
    pub(crate) fn start(self) -> Server {
        let mut setup = self;
        for attempt in 0.. {
            let log_path = setup.dir.path().join("server.log");
            let child = spawn_server(&setup.config_path, &log_path);
            let mut server = Server {
                setup: Some(setup),
                child: Some(child),
                log_path,
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(log) if attempt < 3 && log.contains("Address already in use") => {
                    setup = server.stop();
                    setup.move_to_fresh_ports();
                }
                Err(log) => panic!("lilt serve exited early; its log:\n{log}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// Rewrite the config file as `config` on the same ports and folders (for a
    /// configuration reload).
    pub(crate) fn rewrite(&self, config: &TestConfig) {
        let text = render_config(config, &self.data_dir(), &plugin_dir(), self.ports);
        std::fs::write(&self.config_path, text).expect("write config");
    }

    /// Rewrite the config file onto fresh loopback ports.
    fn move_to_fresh_ports(&mut self) {
        let fresh = free_ports::<5>();
        let old = [
            self.ports.c2s,
            self.ports.direct_tls,
            self.ports.component,
            self.ports.http,
            self.ports.https,
        ];
        let mut text = std::fs::read_to_string(&self.config_path).expect("read config");
        for (o, n) in old.iter().zip(fresh) {
            text = text.replace(&format!("127.0.0.1:{o}\""), &format!("127.0.0.1:{n}\""));
        }
        std::fs::write(&self.config_path, text).expect("write config");
        self.ports = Ports {
            c2s: fresh[0],
            direct_tls: fresh[1],
            component: fresh[2],
            http: fresh[3],
            https: fresh[4],
        };
    }
}

fn spawn_server(config: &Path, log_path: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .expect("open server log");
    let log2 = log.try_clone().expect("clone log handle");
    Command::new(lilt_bin())
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env(
            "LILT_LOG",
            std::env::var("LILT_LOG").unwrap_or_else(|_| "info,lilt=debug".into()),
        )
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .expect("spawn lilt serve")
}

fn render_config(c: &TestConfig, data_dir: &Path, plugin_dir: &Path, ports: Ports) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "data_dir = {:?}", data_dir.display().to_string());
    let _ = writeln!(s, "plugin_dir = {:?}", plugin_dir.display().to_string());
    let _ = writeln!(s, "\n[limits]");
    let _ = writeln!(s, "max_stanza_bytes = {}", c.max_stanza_bytes);
    let _ = writeln!(s, "max_depth = {}", c.max_depth);
    let _ = writeln!(
        s,
        "unauthenticated_timeout_seconds = {}",
        c.unauthenticated_timeout_seconds
    );
    let _ = writeln!(s, "max_connections = {}", c.max_connections);
    for line in &c.limits {
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(s, "\n[stream_management]");
    let _ = writeln!(s, "resume_timeout_seconds = {}", c.resume_timeout_seconds);
    if let Some((cert, key)) = &c.tls {
        let _ = writeln!(s, "\n[tls]");
        let _ = writeln!(s, "cert_file = {:?}", cert.display().to_string());
        let _ = writeln!(s, "key_file = {:?}", key.display().to_string());
    }
    for (kind, port) in [
        ("c2s", ports.c2s),
        ("c2s_direct_tls", ports.direct_tls),
        ("component", ports.component),
        ("http", ports.http),
    ] {
        let _ = writeln!(
            s,
            "\n[[listeners]]\ntype = \"{kind}\"\nbind = \"127.0.0.1:{port}\""
        );
    }
    let _ = writeln!(
        s,
        "\n[[listeners]]\ntype = \"http\"\nbind = \"127.0.0.1:{}\"\ntls = true",
        ports.https
    );
    for t in &c.tables {
        let _ = writeln!(s, "\n{t}");
    }
    if !c.http.is_empty() {
        let _ = writeln!(s, "\n[http]\n{}", c.http.join("\n"));
    }
    for v in &c.vhosts {
        let _ = writeln!(
            s,
            "\n[[vhosts]]\ndomain = {:?}\nallow_unencrypted = {}",
            v.domain, v.allow_unencrypted
        );
        let _ = writeln!(
            s,
            "[vhosts.auth]\nplugin = {:?}\nsettings = {}",
            v.plugin, v.auth_settings
        );
        for t in &v.tables {
            let _ = writeln!(s, "{t}");
        }
    }
    for (domain, secret) in &c.components {
        let _ = writeln!(
            s,
            "\n[[components]]\ndomain = {domain:?}\nsecret = {secret:?}"
        );
    }
    s
}

/// A running `lilt serve`; killed on drop.
pub(crate) struct Server {
    setup: Option<Setup>,
    child: Option<Child>,
    log_path: PathBuf,
}

impl Server {
    fn setup(&self) -> &Setup {
        self.setup.as_ref().expect("setup present while running")
    }

    /// Its ports.
    pub(crate) fn ports(&self) -> Ports {
        self.setup().ports
    }

    /// Its data folder.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.setup().data_dir()
    }

    /// The config it runs with.
    pub(crate) fn setup_ref(&self) -> &Setup {
        self.setup()
    }

    /// The server's process id (to send it signals).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// What the server printed so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Wait until the log holds `needle` more than `before` times. Log lines are written by
    /// the server's own tasks, so a line about an event can land after the event's visible
    /// effect; tests wait for it instead of reading the log once.
    pub(crate) async fn logged_more(&self, needle: &str, before: usize) {
        for _ in 0..600 {
            if self.log().matches(needle).count() > before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{needle:?} was not logged within 30 s; the log:\n{}",
            self.log()
        );
    }

    /// Wait until the log holds every one of `needles`.
    pub(crate) async fn logged(&self, needles: &[&str]) {
        for n in needles {
            self.logged_more(n, 0).await;
        }
    }

    /// Wait until every listener accepts; the log when the server exits first.
    fn wait_ready(&mut self) -> Result<(), String> {
        let ports = self.ports();
        let addrs = [
            ports.c2s_addr(),
            ports.direct_tls_addr(),
            ports.component_addr(),
            ports.http_addr(),
            SocketAddr::from(([127, 0, 0, 1], ports.https)),
        ];
        let deadline = Instant::now() + START_TIMEOUT;
        for addr in addrs {
            loop {
                if let Some(child) = self.child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    return Err(format!("({status})\n{}", self.log()));
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "lilt serve did not accept on {addr} within {START_TIMEOUT:?}; its log:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop the server and hand back its setup (config, data), e.g. to run CLI commands
    /// and start it again.
    pub(crate) fn stop(mut self) -> Setup {
        self.kill();
        self.setup.take().expect("setup present")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: String = log
                .lines()
                .rev()
                .take(80)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            eprintln!(
                "---- lilt server log (last 80 lines, {}) ----\n{tail}\n----",
                self.log_path.display()
            );
        }
    }
}
