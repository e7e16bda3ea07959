//! auth-ldap against a real OpenLDAP: logins of the `lilt` binary checked by binding to a
//! `slapd` this test starts (loopback port, its own config and database in a temp folder,
//! StartTLS with a test CA generated here, a service account, users alice and bob, a
//! moderators group), driven over c2s STARTTLS by the raw client.
//!
//! Shell (processes, sockets). Spec: RFC 4511/4513 (simple bind, StartTLS), RFC 4514/4515
//! (escaping of the username), RFC 6120 §6 (SASL failure conditions), RFC 4616 (PLAIN).
//! Invariants checked: alice logs in with her password and nobody logs in with a wrong one,
//! an unknown name, or a name that is LDAP syntax; PLAIN is refused before TLS; a directory
//! that is frozen or stopped fails logins with `temporary-auth-failure` within the profile's
//! timeout while the server keeps serving, and logins work again once it is back; no password
//! appears in the server's log.
//! Needs `slapd` and `slapadd` (scripts/ldap-deps.sh installs them; scripts/test.sh runs it).
//! Tests: this file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Server, Setup, TempDir, TestConfig, Vhost, free_ports};
use crate::raw::{NS_TLS, REPLY_TIMEOUT, RawClient};
use crate::tls_util::{certificates_under, handshake, pinned_client_config};

const BASE: &str = "dc=example,dc=org";
const ALICE_PW: &str = "alice-Secret-1";
const BOB_PW: &str = "bob-Secret-2";
const ADMIN_PW: &str = "admin-Secret-3";
const SERVICE_PW: &str = "service-Secret-4";
/// The `[[ldap]]` profile's timeout.
const LDAP_TIMEOUT: Duration = Duration::from_millis(1500);

/// `name` from the system: in PATH, else in /usr/sbin (Debian's slapd, slapadd).
fn tool(name: &str) -> PathBuf {
    let sbin = Path::new("/usr/sbin").join(name);
    if sbin.is_file() {
        return sbin;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!("{name} is missing: run scripts/ldap-deps.sh (apt-get install slapd ldap-utils)");
}

/// A test CA and a server certificate for 127.0.0.1 and localhost it signed, as PEM files
/// `ca.pem`, `server.pem`, `server.key` in `dir`.
fn test_pki(dir: &Path) {
    let (ca, cert, key) = crate::tls_util::ca_and_server_cert("Lilt LDAP test CA");
    std::fs::write(dir.join("ca.pem"), ca).expect("write ca.pem");
    std::fs::write(dir.join("server.pem"), cert).expect("write server.pem");
    std::fs::write(dir.join("server.key"), key).expect("write server.key");
}

/// A slapd of this test: killed on drop.
struct Slapd {
    dir: TempDir,
    /// `ldap://` (StartTLS offered).
    port: u16,
    /// `ldaps://`.
    ldaps_port: u16,
    child: Option<Child>,
}

impl Slapd {
    /// Configure (slapd.conf, mdb, StartTLS with a fresh CA), load the entries and start.
    fn start_new() -> Slapd {
        let dir = TempDir::new();
        let d = dir.path();
        test_pki(d);
        std::fs::create_dir_all(d.join("db")).expect("db dir");
        let p = |f: &str| d.join(f).display().to_string();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             pidfile {pid}\n\
             argsfile {args}\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             TLSCACertificateFile {ca}\n\
             TLSCertificateFile {cert}\n\
             TLSCertificateKeyFile {key}\n\
             database mdb\n\
             maxsize 16777216\n\
             suffix \"{BASE}\"\n\
             rootdn \"cn=root,{BASE}\"\n\
             rootpw root-Secret-0\n\
             directory {db}\n\
             index uid eq\n\
             index member eq\n\
             access to attrs=userPassword by anonymous auth by * none\n\
             access to * by users read by * none\n",
            pid = p("slapd.pid"),
            args = p("slapd.args"),
            ca = p("ca.pem"),
            cert = p("server.pem"),
            key = p("server.key"),
            db = p("db"),
        );
        std::fs::write(d.join("slapd.conf"), conf).expect("write slapd.conf");
        let ldif = format!(
            "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services\n\n\
             dn: cn=lilt,ou=services,{BASE}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\ncn: lilt\nuserPassword: {SERVICE_PW}\n\n\
             dn: cn=admin,{BASE}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\ncn: admin\nuserPassword: {ADMIN_PW}\n\n\
             dn: uid=alice,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice Liddell\nsn: Liddell\ndisplayName: Alice L.\nuserPassword: {ALICE_PW}\n\n\
             dn: uid=bob,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: bob\ncn: Bob Builder\nsn: Builder\nuserPassword: {BOB_PW}\n\n\
             dn: cn=moderators,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: moderators\nmember: uid=alice,ou=people,{BASE}\n"
        );
        std::fs::write(d.join("data.ldif"), ldif).expect("write data.ldif");
        let out = Command::new(tool("slapadd"))
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("data.ldif"))
            .output()
            .expect("run slapadd");
        assert!(
            out.status.success(),
            "slapadd failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let [port, ldaps_port] = free_ports::<2>();
        let mut s = Slapd {
            dir,
            port,
            ldaps_port,
            child: None,
        };
        s.start();
        s
    }

    /// Start (again) on the same port and database; wait until it accepts connections.
    fn start(&mut self) {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("slapd.log"))
            .expect("slapd.log");
        let child = Command::new(tool("slapd"))
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
                self.port, self.ldaps_port
            ))
            // In the foreground (so it is this test's child), logging connections.
            .args(["-d", "256"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start slapd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("slapd exited ({status}); its log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not listen within 20 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kill it (the database stays for a restart).
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Send SIGSTOP or SIGCONT: a directory that accepts connections but never answers.
    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("slapd running").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid} failed");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// The `[[ldap]]` profile for this directory: StartTLS, trusting only the test CA.
    fn profile(&self) -> String {
        self.profile_with(
            &format!("ldap://127.0.0.1:{}", self.port),
            true,
            &self.dir.path().join("ca.pem"),
        )
    }

    /// A `[[ldap]]` profile named `corp` for `url`, trusting the CA in `ca_file`.
    fn profile_with(&self, url: &str, starttls: bool, ca_file: &Path) -> String {
        format!(
            "[[ldap]]\nname = \"corp\"\nurl = \"{url}\"\nstarttls = {starttls}\n\
             ca_file = {:?}\nbase_dn = \"{BASE}\"\nbind_dn = \"cn=lilt,ou=services,{BASE}\"\n\
             bind_password = \"{SERVICE_PW}\"\ntimeout_ms = {}\npool_size = 2",
            ca_file.display().to_string(),
            LDAP_TIMEOUT.as_millis()
        )
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_ref() {
            // A stopped slapd ignores SIGKILL's cleanup until continued; continue it first.
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
        }
        self.stop();
        if std::thread::panicking() {
            eprintln!("slapd log:\n{}", self.log());
        }
    }
}

/// Two vhosts on auth-ldap granted the profile: `localhost` finds users by search (as the
/// service account), `direct.localhost` binds with a DN template; both TLS-only.
fn server(slapd: &Slapd) -> Server {
    server_with(&slapd.profile())
}

/// [`server`] with the `[[ldap]]` profile `profile`.
fn server_with(profile: &str) -> Server {
    let search = format!(
        "{{ user_search = {{ base = \"ou=people,{BASE}\", filter = \"(uid={{user}})\" }}, \
         moderator_group = \"cn=moderators,ou=groups,{BASE}\" }}\ngrants = [\"ldap:corp\"]"
    );
    let template = format!(
        "{{ user_dn_template = \"uid={{user}},ou=people,{BASE}\", \
         moderator_group = \"cn=moderators,ou=groups,{BASE}\" }}\ngrants = [\"ldap:corp\"]"
    );
    let config = TestConfig::new(vec![
        Vhost::internal("localhost")
            .tls_required()
            .with_auth("auth-ldap", &search),
        Vhost::internal("direct.localhost")
            .tls_required()
            .with_auth("auth-ldap", &template),
    ])
    .table(profile);
    Setup::new(config).start()
}

/// A c2s stream to `domain`, upgraded with STARTTLS (trusting the server's generated
/// certificate), features read.
async fn tls_stream(server: &Server, domain: &str) -> RawClient {
    let (c, features) = starttls(server, domain).await;
    assert_eq!(
        RawClient::mechanisms(&features),
        vec!["PLAIN".to_owned()],
        "{}",
        features.raw
    );
    c
}

/// A c2s stream to `domain` upgraded with STARTTLS, and the features it offers then.
async fn starttls(server: &Server, domain: &str) -> (RawClient, crate::raw::Xml) {
    let certs = certificates_under(&server.data_dir());
    let mut c = RawClient::connect(server.ports().c2s_addr()).await;
    c.open(domain).await;
    c.send(&format!("<starttls xmlns='{NS_TLS}'/>")).await;
    let proceed = c.next_element(REPLY_TIMEOUT).await;
    assert!(proceed.is("proceed", NS_TLS), "{}", proceed.raw);
    let io = handshake(c.into_io(), domain, pinned_client_config(certs))
        .await
        .expect("STARTTLS handshake");
    let mut c = RawClient::over(io);
    let features = c.open(domain).await;
    (c, features)
}

/// PLAIN over STARTTLS: `Ok(bound client)` or `Err(SASL condition)`.
async fn login(
    server: &Server,
    domain: &str,
    user: &str,
    password: &str,
) -> Result<RawClient, String> {
    let mut c = tls_stream(server, domain).await;
    c.auth_plain(user, password).await?;
    c.open(domain).await;
    let jid = c.bind(None).await;
    assert!(jid.starts_with(&format!("{user}@{domain}/")), "{jid}");
    Ok(c)
}

#[tokio::test]
async fn ldap_logins_over_starttls() {
    let slapd = Slapd::start_new();
    let server = server(&slapd);

    for domain in ["localhost", "direct.localhost"] {
        let mut alice = login(&server, domain, "alice", ALICE_PW)
            .await
            .unwrap_or_else(|e| panic!("alice on {domain}: {e}\n{}", server.log()));
        alice.sync(domain).await;
        login(&server, domain, "bob", BOB_PW)
            .await
            .unwrap_or_else(|e| panic!("bob on {domain}: {e}"));

        for (user, pw, why) in [
            ("alice", "wrong", "wrong password"),
            ("alice", BOB_PW, "bob's password"),
            ("carol", ALICE_PW, "unknown user"),
        ] {
            let r = login(&server, domain, user, pw).await.map(|_| ());
            assert_eq!(r, Err("not-authorized".to_owned()), "{why} on {domain}");
        }
        // LDAP syntax as a username: escaped, so it names nobody.
        for (user, pw) in [
            ("*", ALICE_PW),
            ("alice)(uid=*", ALICE_PW),
            ("al*", ALICE_PW),
            ("alice\\", ALICE_PW),
            ("a\u{0}b", ALICE_PW),
            ("cn=admin,dc=example,dc=org", ADMIN_PW),
            ("alice,ou=x", ALICE_PW),
            ("alice,ou=people", ALICE_PW),
            ("alice+cn=x", ALICE_PW),
        ] {
            let r = login(&server, domain, user, pw).await.map(|_| ());
            assert!(r.is_err(), "{user:?} logged in on {domain}");
        }
    }
    // The directory saw StartTLS, then binds as the users' entries.
    let slapd_log = slapd.log();
    assert!(
        slapd_log.contains("EXT oid=1.3.6.1.4.1.1466.20037"),
        "no StartTLS in the slapd log"
    );
    assert!(slapd_log.contains("BIND dn=\"uid=alice,ou=people,dc=example,dc=org\" method=128"));
    assert!(slapd_log.contains("BIND dn=\"cn=lilt,ou=services,dc=example,dc=org\" method=128"));
    // identify looked alice up in the moderators group.
    assert!(slapd_log.contains("SRCH base=\"cn=moderators,ou=groups,dc=example,dc=org\" scope=0"));
    // The injection attempts reached it, if at all, escaped.
    assert!(!slapd_log.contains("BIND dn=\"cn=admin,dc=example,dc=org\""));
    assert!(!slapd_log.contains("filter=\"(uid=*)\""));
    // Only alice's and bob's logins succeeded (two per vhost).
    let log = server.log();
    assert_eq!(log.matches("Authenticated.").count(), 4, "{log}");
    for secret in [ALICE_PW, BOB_PW, ADMIN_PW, SERVICE_PW] {
        assert!(!log.contains(secret), "a password is in the server log");
    }
}

#[tokio::test]
async fn plain_is_refused_before_tls() {
    let slapd = Slapd::start_new();
    let server = server(&slapd);
    let mut c = RawClient::connect(server.ports().c2s_addr()).await;
    let features = c.open("localhost").await;
    assert!(
        RawClient::mechanisms(&features).is_empty(),
        "SASL offered before TLS: {}",
        features.raw
    );
    assert_eq!(
        c.auth_plain("alice", ALICE_PW).await,
        Err("encryption-required".to_owned())
    );
}

#[tokio::test]
async fn directory_outage_is_a_temporary_failure() {
    let mut slapd = Slapd::start_new();
    let server = server(&slapd);
    let mut alice = login(&server, "localhost", "alice", ALICE_PW)
        .await
        .expect("alice before the outage");

    // Frozen: connections are accepted, nothing answers; the profile's timeout decides.
    slapd.signal("-STOP");
    for domain in ["localhost", "direct.localhost"] {
        let mut c = tls_stream(&server, domain).await;
        let started = Instant::now();
        let r = c.auth_plain("bob", BOB_PW).await;
        let took = started.elapsed();
        assert_eq!(r, Err("temporary-auth-failure".to_owned()), "{domain}");
        assert!(
            took < LDAP_TIMEOUT * 3 + Duration::from_secs(1),
            "the refusal took {took:?}"
        );
    }
    // The server still serves the session that logged in before.
    alice.sync("localhost").await;
    slapd.signal("-CONT");

    // Stopped: connections are refused.
    slapd.stop();
    for domain in ["localhost", "direct.localhost"] {
        let started = Instant::now();
        let r = login(&server, domain, "alice", ALICE_PW).await.map(|_| ());
        assert_eq!(r, Err("temporary-auth-failure".to_owned()), "{domain}");
        assert!(started.elapsed() < LDAP_TIMEOUT * 3 + Duration::from_secs(1));
    }
    alice.sync("localhost").await;

    // Back: the pooled connections are gone, fresh ones work.
    slapd.start();
    for domain in ["localhost", "direct.localhost"] {
        login(&server, domain, "alice", ALICE_PW)
            .await
            .unwrap_or_else(|e| panic!("alice on {domain} after the restart: {e}"));
        let r = login(&server, domain, "alice", "wrong").await.map(|_| ());
        assert_eq!(r, Err("not-authorized".to_owned()));
    }
    alice.sync("localhost").await;
    assert!(!server.log().contains(SERVICE_PW));
}

/// The time from `<auth/>` to `<success/>` of N sequential PLAIN logins (search as the
/// service account, bind as the user, and identify's searches), printed as p50/p99.
/// A measurement (scripts/login_bench.sh): N logins of each kind, one after another, each on a
/// fresh STARTTLS stream, timed from `<auth/>` to `<success/>` on one server: ANONYMOUS on a
/// vhost without a directory, then PLAIN against the directory (search-then-bind, and DN
/// template; each also searches the moderators group), with the server's CPU per login.
#[tokio::test]
#[ignore = "a measurement, run by scripts/login_bench.sh"]
async fn ldap_login_bench() {
    use crate::jwt::{cpu_ms, quantile};
    let n: usize = std::env::var("LILT_BENCH_LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let slapd = Slapd::start_new();
    let search = format!(
        "{{ user_search = {{ base = \"ou=people,{BASE}\", filter = \"(uid={{user}})\" }}, \
         moderator_group = \"cn=moderators,ou=groups,{BASE}\" }}\ngrants = [\"ldap:corp\"]"
    );
    let template = format!(
        "{{ user_dn_template = \"uid={{user}},ou=people,{BASE}\", \
         moderator_group = \"cn=moderators,ou=groups,{BASE}\" }}\ngrants = [\"ldap:corp\"]"
    );
    let config = TestConfig::new(vec![
        Vhost::anonymous("anon.localhost").tls_required(),
        Vhost::internal("localhost")
            .tls_required()
            .with_auth("auth-ldap", &search),
        Vhost::internal("direct.localhost")
            .tls_required()
            .with_auth("auth-ldap", &template),
    ])
    .table(&slapd.profile());
    let server = Setup::new(config).start();
    println!("{n} sequential logins each over STARTTLS, <auth/> to <success/>");
    println!("| kind | p50 ms | p99 ms | server CPU ms/login |");
    println!("|---|---|---|---|");
    for (name, domain) in [
        ("anonymous", "anon.localhost"),
        ("LDAP search-then-bind", "localhost"),
        ("LDAP DN template", "direct.localhost"),
    ] {
        let login = |mut c: RawClient| async move {
            let started = Instant::now();
            let r = if domain == "anon.localhost" {
                c.auth_anonymous().await
            } else {
                c.auth_plain("alice", ALICE_PW).await
            };
            r.unwrap_or_else(|e| panic!("{name}: {e}"));
            started.elapsed()
        };
        for _ in 0..5 {
            login(starttls(&server, domain).await.0).await;
        }
        let mut ms = Vec::with_capacity(n);
        let mut cpu = 0.0;
        for _ in 0..n {
            let c = starttls(&server, domain).await.0;
            let before = cpu_ms(server.pid());
            ms.push(login(c).await.as_secs_f64() * 1000.0);
            cpu += cpu_ms(server.pid()) - before;
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.2} | {:.2} | {:.3} |",
            quantile(&ms, 0.5),
            quantile(&ms, 0.99),
            cpu / n as f64
        );
    }
}

#[tokio::test]
async fn ldaps_and_the_directory_certificate_is_checked() {
    let slapd = Slapd::start_new();
    let ca = slapd.dir.path().join("ca.pem");
    // LDAPS with the test CA.
    let ldaps = server_with(&slapd.profile_with(
        &format!("ldaps://127.0.0.1:{}", slapd.ldaps_port),
        false,
        &ca,
    ));
    for domain in ["localhost", "direct.localhost"] {
        login(&ldaps, domain, "alice", ALICE_PW)
            .await
            .unwrap_or_else(|e| panic!("alice over LDAPS on {domain}: {e}"));
        let r = login(&ldaps, domain, "alice", "wrong").await.map(|_| ());
        assert_eq!(r, Err("not-authorized".to_owned()));
    }
    drop(ldaps);

    // A CA that did not sign the directory's certificate: no login, over StartTLS or LDAPS.
    let other = TempDir::new();
    test_pki(other.path());
    for (url, starttls) in [
        (format!("ldap://127.0.0.1:{}", slapd.port), true),
        (format!("ldaps://127.0.0.1:{}", slapd.ldaps_port), false),
    ] {
        let server = server_with(&slapd.profile_with(&url, starttls, &other.path().join("ca.pem")));
        for domain in ["localhost", "direct.localhost"] {
            let r = login(&server, domain, "alice", ALICE_PW).await.map(|_| ());
            assert_eq!(
                r,
                Err("temporary-auth-failure".to_owned()),
                "{url} {domain}"
            );
        }
        let log = server.log();
        assert!(
            log.contains("Directory operation failed.") && log.contains("invalid peer certificate"),
            "{log}"
        );
    }
}

#[tokio::test]
async fn accounts_are_managed_in_the_directory() {
    let slapd = Slapd::start_new();
    let setup = Setup::new(
        TestConfig::new(vec![Vhost::internal("localhost").tls_required().with_auth(
            "auth-ldap",
            &format!(
                "{{ user_dn_template = \"uid={{user}},ou=people,{BASE}\" }}\ngrants = [\"ldap:corp\"]"
            ),
        )])
        .table(&slapd.profile()),
    );
    for action in ["add", "passwd"] {
        let out = setup.user(action, "carol@localhost", "carol-pw");
        assert!(!out.success(), "lilt user {action} succeeded: {out:?}");
        assert!(
            out.stderr
                .contains("accounts of this vhost are managed in the LDAP directory"),
            "{out:?}"
        );
    }
    let out = setup.user("del", "alice@localhost", "");
    assert!(!out.success());
    assert!(
        out.stderr.contains("managed in the LDAP directory"),
        "{out:?}"
    );
}

/// One server, two tenants, each with its own auth plugin: `corp.localhost` signs its users in
/// against the directory (and its moderators group makes owners), `localhost` with Jitsi
/// tokens (HS256, signed by PyJWT). Both log in at once, each tenant's refusals stay its own,
/// and a session of one is nothing to the other.
#[tokio::test]
async fn an_ldap_tenant_and_a_jwt_tenant_on_one_server() {
    use crate::jwt::{ISS, assert_online, claims, hs256, hs256_settings, logins, sign};
    let slapd = Slapd::start_new();
    let ldap = format!(
        "{{ user_search = {{ base = \"ou=people,{BASE}\", filter = \"(uid={{user}})\" }}, \
         moderator_group = \"cn=moderators,ou=groups,{BASE}\" }}\ngrants = [\"ldap:corp\"]"
    );
    let jwt = format!("{{ accepted_issuers = [\"{ISS}\"], {} }}", hs256_settings());
    let config = TestConfig::new(vec![
        Vhost::anonymous("localhost")
            .with_auth("auth-jwt", &jwt)
            .with("[vhosts.muc]\ndomain = \"conference.localhost\""),
        Vhost::internal("corp.localhost")
            .tls_required()
            .with_auth("auth-ldap", &ldap)
            .with("[vhosts.muc]\ndomain = \"conference.corp.localhost\""),
    ])
    .table(&slapd.profile());
    let server = Setup::new(config).start();

    // The JWT tenant: a token logs in, no token does not.
    let tokens = sign(&[hs256(claims("standup"))]).await;
    let results = logins(&server, &[Some(&tokens[0]), None]).await;
    assert_online(&results[0], "a token on the JWT tenant");
    assert_eq!(results[1]["condition"], "not-authorized", "{}", results[1]);

    // The LDAP tenant: bob (not a moderator) opens a room, alice (in the moderators group)
    // joins it and is made owner by her group, not by creating it.
    let mut bob = login(&server, "corp.localhost", "bob", BOB_PW)
        .await
        .unwrap_or_else(|e| panic!("bob: {e}\n{}", server.log()));
    let mut alice = login(&server, "corp.localhost", "alice", ALICE_PW)
        .await
        .unwrap_or_else(|e| panic!("alice: {e}"));
    let join = |nick: &str| {
        format!(
            "<presence to='team@conference.corp.localhost/{nick}'>\
             <x xmlns='http://jabber.org/protocol/muc'/></presence>"
        )
    };
    let own = |nick: &'static str| {
        move |x: &crate::raw::Xml| {
            x.is("presence", "jabber:client")
                && x.attr("from") == Some(&*format!("team@conference.corp.localhost/{nick}"))
                && x.raw.contains("code='110'")
        }
    };
    bob.send(&join("bob")).await;
    let p = bob
        .wait_for("bob's own presence", REPLY_TIMEOUT, own("bob"))
        .await;
    assert!(p.raw.contains("affiliation='owner'"), "creator: {}", p.raw);
    alice.send(&join("alice")).await;
    let p = alice
        .wait_for("alice's own presence", REPLY_TIMEOUT, own("alice"))
        .await;
    assert!(
        p.raw.contains("affiliation='owner'") && p.raw.contains("role='moderator'"),
        "the moderators group did not make alice owner: {}",
        p.raw
    );
    // Her card (the directory's display name) reaches bob with her presence.
    let seen = bob
        .wait_for("alice's presence at bob", REPLY_TIMEOUT, |x| {
            x.is("presence", "jabber:client")
                && x.attr("from") == Some("team@conference.corp.localhost/alice")
        })
        .await;
    assert!(
        seen.raw.contains("<identity"),
        "no identity card: {}",
        seen.raw
    );

    // Each tenant keeps to its own: the directory's users are not the JWT tenant's (no
    // password mechanism there), and a token means nothing to the LDAP tenant.
    let wrong = login(&server, "corp.localhost", "alice", "not-her-password")
        .await
        .map(|_| ());
    assert_eq!(wrong, Err("not-authorized".to_owned()));
    let results = logins(&server, &[Some(&tokens[0])]).await;
    assert_online(&results[0], "the JWT tenant after the LDAP logins");
}
