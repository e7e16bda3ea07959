//! TURN and STUN for clients (XEP-0215) against a real coturn: the `lilt` binary, configured
//! with `[turn]`, hands out time-limited credentials that a `turnserver` this test starts
//! (loopback port, `use-auth-secret` with the same `static-auth-secret`) accepts, and two
//! browsers forced to relay-only ICE meet through that coturn and the SFU.
//!
//! Shell (processes: `lilt serve`, `turnserver`, `turnutils_uclient`, node and Chromium;
//! sockets). Spec: XEP-0215 (`urn:xmpp:extdisco:2`), the TURN REST API credential scheme
//! coturn implements (username `<expiry>:<user>`, password base64 HMAC-SHA1), RFC 8656
//! (allocations), lib-jitsi-meet's `getStunAndTurnCredentials` and `forceTurnRelay`.
//! Invariants checked: the vhost advertises the feature only with `[turn]`; only TURN entries
//! carry credentials, which expire `ttl_secs` from now and name the requester; coturn grants
//! an allocation (UDP and TCP) with them and refuses a tampered password or a changed
//! expiry; media between relay-only browsers crosses coturn (its log shows Lilt's usernames
//! and a permission for the SFU's port).
//! Needs `turnserver` and `turnutils_uclient` (scripts/turn-deps.sh installs coturn;
//! scripts/test.sh runs it). Tests: this file.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::disco::DiscoInfoQuery;
use tokio_xmpp::parsers::stanza_error::DefinedCondition;
use tokio_xmpp::{IqRequest, IqResponse};

use crate::browser::run_node;
use crate::client::{self, jid};
use crate::harness::{Server, Setup, TempDir, TestConfig, Vhost, free_ports};

const NS_EXTDISCO: &str = "urn:xmpp:extdisco:2";
/// The secret Lilt and coturn share.
const SECRET: &str = "lilt-test-turn-secret-8c1f";
const REALM: &str = "lilt.test";
const ALICE_PW: &str = "alice-turn-Secret-1";

/// `name` from PATH (coturn's binaries are in /usr/bin on Debian).
fn tool(name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!("{name} is missing: run scripts/turn-deps.sh (apt-get install coturn)");
}

/// A `turnserver` on 127.0.0.1 (UDP and TCP on one port), TURN REST API credentials with
/// [`SECRET`], relaying to loopback peers (the SFU listens on 127.0.0.1), verbose log kept in
/// its folder.
struct Coturn {
    dir: TempDir,
    port: u16,
    child: Child,
}

impl Coturn {
    fn start() -> Coturn {
        let dir = TempDir::new();
        let [port, alt] = free_ports::<2>();
        let log = std::fs::File::create(dir.path().join("turn.log")).expect("turn.log");
        let arg = |k: &str, v: &dyn std::fmt::Display| format!("--{k}={v}");
        let child = Command::new(tool("turnserver"))
            .args([
                "-n",
                "-v",
                "--no-cli",
                "--no-tls",
                "--no-dtls",
                "--use-auth-secret",
                "--allow-loopback-peers",
                "--log-file=stdout",
                "--simple-log",
            ])
            .arg(arg("static-auth-secret", &SECRET))
            .arg(arg("realm", &REALM))
            .arg(arg("listening-ip", &"127.0.0.1"))
            .arg(arg("relay-ip", &"127.0.0.1"))
            .arg(arg("listening-port", &port))
            .arg(arg("alt-listening-port", &alt))
            .arg(arg("userdb", &dir.path().join("turndb").display()))
            .arg(arg("pidfile", &dir.path().join("turn.pid").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn turnserver");
        let mut coturn = Coturn { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = coturn.child.try_wait() {
                panic!("turnserver exited with {status}:\n{}", coturn.log());
            }
            assert!(
                Instant::now() < deadline,
                "turnserver did not listen on {port} within 10 s:\n{}",
                coturn.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        coturn
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("turn.log")).unwrap_or_default()
    }

    /// `turnutils_uclient` allocating two relays and exchanging packets between them (`-y`),
    /// over TCP to the server when `tcp`; whether it succeeded, and its output.
    fn uclient(&self, user: &str, password: &str, tcp: bool) -> (bool, String) {
        let port = self.port.to_string();
        let mut cmd = Command::new(tool("turnutils_uclient"));
        if tcp {
            cmd.arg("-t");
        }
        cmd.args(["-y", "-n", "3", "-u", user, "-w", password, "-p", &port])
            .arg("127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn turnutils_uclient");
        let out = wait_bounded(child, Duration::from_secs(30));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // It exits 0 after its packets made the round trip through both relays.
        let ok = out.status.success() && !text.contains("ERROR");
        (ok, text)
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("turnserver log:\n{}", self.log());
        }
    }
}

/// The child's output, killing it after `limit`.
fn wait_bounded(mut child: Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() || Instant::now() >= deadline {
            let _ = child.kill();
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `[turn]` for `coturn`: STUN and TURN over UDP and TCP on its port.
fn turn_table(coturn: &Coturn, ttl_secs: u64) -> String {
    let p = coturn.port;
    format!(
        "[turn]\nhost = \"127.0.0.1\"\nsecret = \"{SECRET}\"\nttl_secs = {ttl_secs}\n\
         services = [\n  {{ type = \"stun\", port = {p} }},\n  \
         {{ type = \"turn\", port = {p}, transport = \"udp\" }},\n  \
         {{ type = \"turn\", port = {p}, transport = \"tcp\" }},\n]"
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

async fn iq(c: &mut tokio_xmpp::Client, to: &str, req: IqRequest) -> IqResponse {
    let token = c.send_iq(Some(jid(to)), req).await;
    tokio::time::timeout(client::STANZA_TIMEOUT, token)
        .await
        .unwrap_or_else(|_| panic!("no reply to iq to {to} within {:?}", client::STANZA_TIMEOUT))
        .unwrap_or_else(|e| panic!("iq to {to} failed locally: {e}"))
}

/// The features of `localhost`'s disco#info.
async fn features(c: &mut tokio_xmpp::Client) -> Vec<String> {
    match iq(
        c,
        "localhost",
        IqRequest::Get(DiscoInfoQuery { node: None }.into()),
    )
    .await
    {
        IqResponse::Result(Some(el)) => el
            .children()
            .filter(|f| f.name() == "feature")
            .filter_map(|f| f.attr("var").map(str::to_owned))
            .collect(),
        other => panic!("disco#info on localhost: {other:?}"),
    }
}

/// One `<service/>` of the answer, as attributes.
#[derive(Debug)]
struct Entry {
    kind: String,
    host: String,
    port: String,
    transport: Option<String>,
    username: Option<String>,
    password: Option<String>,
    expires: Option<String>,
}

fn entries(services: &Element) -> Vec<Entry> {
    assert!(services.is("services", NS_EXTDISCO), "{services:?}");
    services
        .children()
        .filter(|c| c.is("service", NS_EXTDISCO))
        .map(|s| {
            let a = |k: &str| s.attr(k).map(str::to_owned);
            Entry {
                kind: a("type").unwrap_or_default(),
                host: a("host").unwrap_or_default(),
                port: a("port").unwrap_or_default(),
                transport: a("transport"),
                username: a("username"),
                password: a("password"),
                expires: a("expires"),
            }
        })
        .collect()
}

/// A logged-in client asks `localhost` for its external services.
#[tokio::test]
async fn turn_credentials_from_lilt_are_accepted_by_coturn() {
    let coturn = Coturn::start();
    let ttl = 3600;
    let setup = Setup::new(
        TestConfig::new(vec![Vhost::internal("localhost")]).table(&turn_table(&coturn, ttl)),
    );
    setup.add_user("alice@localhost", ALICE_PW);
    let server = setup.start();
    let (mut alice, _) =
        client::online(server.ports().c2s_addr(), "alice@localhost", ALICE_PW).await;
    assert!(
        features(&mut alice).await.iter().any(|f| f == NS_EXTDISCO),
        "localhost does not advertise {NS_EXTDISCO}"
    );

    let before = unix_now();
    let query = Element::builder("services", NS_EXTDISCO).build();
    let services = match iq(&mut alice, "localhost", IqRequest::Get(query)).await {
        IqResponse::Result(Some(el)) => el,
        other => panic!("services query: {other:?}"),
    };
    let after = unix_now();
    let list = entries(&services);
    assert_eq!(list.len(), 3, "{list:#?}");
    let stun = &list[0];
    assert_eq!(
        (stun.kind.as_str(), stun.host.as_str()),
        ("stun", "127.0.0.1")
    );
    assert!(
        stun.username.is_none() && stun.password.is_none(),
        "{stun:?}"
    );
    let turn: Vec<&Entry> = list.iter().filter(|e| e.kind == "turn").collect();
    assert_eq!(turn.len(), 2, "{list:#?}");
    for e in &turn {
        assert_eq!(e.host, "127.0.0.1");
        assert_eq!(e.port, coturn.port.to_string());
        let user = e.username.as_deref().expect("a TURN username");
        let (expiry, who) = user.split_once(':').expect("<expiry>:<user>");
        let expiry: u64 = expiry.parse().expect("expiry in Unix seconds");
        assert!(
            (before + ttl..=after + ttl).contains(&expiry),
            "expiry {expiry} not now + {ttl}"
        );
        assert_eq!(who, "alice@localhost");
        assert!(
            e.expires.as_deref().is_some_and(|x| x.ends_with('Z')),
            "{e:?}"
        );
    }
    let transports: Vec<Option<&str>> = turn.iter().map(|e| e.transport.as_deref()).collect();
    assert_eq!(transports, [Some("udp"), Some("tcp")]);
    let user = turn[0].username.clone().expect("username");
    let password = turn[0].password.clone().expect("password");

    // coturn accepts Lilt's credentials, over UDP and over TCP.
    for tcp in [false, true] {
        let (ok, out) = coturn.uclient(&user, &password, tcp);
        assert!(ok, "coturn refused Lilt's credentials (tcp: {tcp}):\n{out}");
    }
    // A tampered password, and the same password with a later expiry, are refused.
    let mut tampered = password.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let (ok, out) = coturn.uclient(&user, &tampered, false);
    assert!(!ok, "coturn accepted a tampered password:\n{out}");
    let (expiry, who) = user.split_once(':').expect("username");
    let longer = format!("{}:{who}", expiry.parse::<u64>().expect("expiry") + 86_400);
    let (ok, out) = coturn.uclient(&longer, &password, false);
    assert!(
        !ok,
        "coturn accepted a username with another expiry:\n{out}"
    );
    let log = coturn.log();
    assert!(
        log.contains(&format!("username=<{user}>")),
        "coturn's log has no session for {user}:\n{log}"
    );

    // The type filter.
    let query: Element = format!("<services xmlns='{NS_EXTDISCO}' type='stun'/>")
        .parse()
        .expect("query");
    match iq(&mut alice, "localhost", IqRequest::Get(query)).await {
        IqResponse::Result(Some(el)) => {
            let list = entries(&el);
            assert!(list.len() == 1 && list[0].kind == "stun", "{list:#?}");
        }
        other => panic!("services query for stun: {other:?}"),
    }
    let _ = alice.send_end().await;
    drop(server);
}

/// Without `[turn]`, the vhost neither advertises nor answers external service discovery.
#[tokio::test]
async fn without_turn_config_extdisco_is_unavailable() {
    let setup = Setup::new(TestConfig::localhost_internal());
    setup.add_user("alice@localhost", ALICE_PW);
    let server = setup.start();
    let (mut alice, _) =
        client::online(server.ports().c2s_addr(), "alice@localhost", ALICE_PW).await;
    assert!(!features(&mut alice).await.iter().any(|f| f == NS_EXTDISCO));
    let query = Element::builder("services", NS_EXTDISCO).build();
    match iq(&mut alice, "localhost", IqRequest::Get(query)).await {
        IqResponse::Error(e) => assert_eq!(
            e.defined_condition,
            DefinedCondition::ServiceUnavailable,
            "{e:?}"
        ),
        other => panic!("expected service-unavailable, got {other:?}"),
    }
    let _ = alice.send_end().await;
    drop(server);
}

/// Two browsers with relay-only ICE (lib-jitsi-meet's `forceTurnRelay`) exchange audio and
/// video through the SFU; their only way there is coturn, with the credentials Lilt gave them
/// (lib-jitsi-meet gives the bridge connection the TURN/TCP entries).
#[test]
fn relay_only_browsers_meet_through_coturn() {
    let coturn = Coturn::start();
    let [sfu_port] = free_ports::<1>();
    let config =
        TestConfig::new(vec![Vhost::anonymous("localhost").with(
            "[vhosts.muc]\ndomain = \"conference.localhost\"\n[vhosts.focus]",
        )])
        .table(&format!("[sfu]\nbind = \"127.0.0.1:{sfu_port}\""))
        .table(&turn_table(&coturn, 86_400));
    let server = Setup::new(config).start();
    let run = meet_relay_only(&server);
    let log = coturn.log();
    assert!(
        run.code == Some(0) && run.report["ok"] == serde_json::Value::Bool(true),
        "the relay-only meeting failed: {}\nsteps: {}\nrelay: {}\n---- pages (last lines) ----\n{}\n---- coturn (last lines) ----\n{}",
        run.report["failure"],
        run.report["steps"],
        run.report["relay"],
        tail(&run.log, 60),
        tail(&log, 40),
    );
    // meet.mjs checked that each participant's selected ICE pair is relayed; it must lead
    // to the SFU.
    eprintln!("selected ICE pairs: {}", run.report["relay"]);
    let relay = run.report["relay"].as_array().cloned().unwrap_or_default();
    assert_eq!(relay.len(), 2, "relay report: {}", run.report["relay"]);
    for p in &relay {
        let pairs = p["selected"].as_array().cloned().unwrap_or_default();
        assert!(
            !pairs.is_empty()
                && pairs.iter().all(|s| s.as_str().is_some_and(|s| {
                    s.starts_with("relay/tcp ") && s.ends_with(&format!(" -> 127.0.0.1:{sfu_port}"))
                })),
            "{}: selected pairs {pairs:?}, not relay/tcp to the SFU at 127.0.0.1:{sfu_port}",
            p["name"]
        );
    }
    // coturn's side: an allocation for each of Lilt's anonymous users, and bytes relayed
    // from the peer (the SFU) to each when their sessions closed with the browsers.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (allocations, relayed) = loop {
        let log = coturn.log();
        let allocations = log
            .lines()
            .filter(|l| l.contains("ALLOCATE processed, success") && l.contains("@localhost>"))
            .count();
        let relayed = log
            .lines()
            .filter(|l| l.contains("peer usage:") && l.contains("@localhost>"))
            .filter(|l| peer_bytes(l) > 10_000)
            .count();
        if (allocations >= 2 && relayed >= 2) || Instant::now() >= deadline {
            break (allocations, relayed);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        allocations >= 2 && relayed >= 2,
        "coturn logged {allocations} allocations and {relayed} sessions with over 10 kB from \
         the SFU for Lilt's users:\n{}",
        tail(&coturn.log(), 60)
    );
    drop(server);
}

/// `node meet.mjs --relay-only --participants 2 --expect media` against `server`.
fn meet_relay_only(server: &Server) -> crate::browser::NodeRun {
    let port = server.ports().http.to_string();
    run_node(
        "meet.mjs",
        &[
            "--http-port",
            &port,
            "--domain",
            "localhost",
            "--timeout",
            "90",
            "--room",
            "relayed",
            "--participants",
            "2",
            "--expect",
            "media",
            "--relay-only",
        ],
        90,
    )
}

/// `rb` (bytes received from peers) of a coturn `peer usage:` line.
fn peer_bytes(line: &str) -> u64 {
    line.split(", ")
        .find_map(|f| f.strip_prefix("rb="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
