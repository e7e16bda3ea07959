//! auth-jwt end to end: Jitsi's token authentication of the `lilt` binary, with tokens signed
//! by PyJWT (an implementation nobody here wrote; HS256 with a shared secret, RS256 with key
//! pairs made here by the openssl CLI), RS256 public keys served by a key server this test
//! runs on loopback (`<url>/<sha256-hex(kid)>.pem`, `Cache-Control: max-age`), and logins made
//! by xmpp.js (`@xmpp/client`, WebSocket, SASL ANONYMOUS, `?token=` on the URL, as
//! lib-jitsi-meet adds it) and Strophe.js over BOSH, under Node.
//!
//! Shell (processes: `lilt serve`, python, node; sockets). Spec: RFC 7519 (JWT), RFC 7515
//! (JWS), RFC 6120 §6.5 (SASL failure conditions), XEP-0045 (MUC join errors, affiliations),
//! Jitsi's token rules (mod_auth_token, token_verification, mod_presence_identity).
//! Invariants checked: a good token logs in and every bad one is `not-authorized` with a text
//! saying why (missing, malformed, oversized, `alg: none`, wrong algorithm, a public key used
//! as an HMAC secret, wrong key, unknown kid, expired, not yet valid, wrong iss/aud/sub); a key
//! server that is down is `temporary-auth-failure`; a key is fetched once and then cached; the
//! token's room is the only room its session may join (`not-allowed` elsewhere); the token's
//! moderator flag makes an owner and its user card reaches the other occupants; the server
//! keeps serving throughout.
//! Needs: node with tests/js installed, `target/jwt-venv` (scripts/jwt-deps.sh), openssl.
//! Tests: this file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::process::Command;

use crate::harness::{Server, Setup, TempDir, TestConfig, Vhost, workspace_root};

const SECRET: &str = "lilt-test-app-secret-0123456789";
pub(crate) const ISS: &str = "lilt-tests";
const MUC: &str = "conference.localhost";
/// How long one driver run (python or node) may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The python of `target/jwt-venv`, which has PyJWT and cryptography.
fn python() -> PathBuf {
    let p = workspace_root().join("target/jwt-venv/bin/python");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/jwt-deps.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Seconds since the Unix epoch.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Run `program args` with `input` on stdin, bounded; its stdout (panics on failure).
async fn run(program: &Path, args: &[&str], cwd: &Path, input: &str) -> String {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.as_bytes())
        .await
        .expect("write stdin");
    drop(stdin);
    let out = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} did not finish in {RUN_TIMEOUT:?}", program.display()))
        .expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}\n{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Signs tokens with PyJWT. Input: a JSON list of `{alg, secret | pem_file | null, headers,
/// claims}`, or `{raw_hmac_pem_file, headers, claims}` for an HS256 token whose secret is a
/// PEM file's bytes (PyJWT refuses to use a PEM key as an HMAC secret, so that forgery is made
/// with the standard library's hmac). Output: a JSON list of tokens.
const SIGNER: &str = r#"
import base64, hashlib, hmac, json, sys
import jwt

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

out = []
for spec in json.load(sys.stdin):
    headers, claims = spec.get("headers") or {}, spec["claims"]
    if "raw_hmac_pem_file" in spec:
        key = open(spec["raw_hmac_pem_file"], "rb").read()
        h = {"alg": "HS256", "typ": "JWT", **headers}
        signing_input = b64(json.dumps(h).encode()) + "." + b64(json.dumps(claims).encode())
        sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
        out.append(signing_input + "." + b64(sig))
        continue
    if "pem_file" in spec:
        key = open(spec["pem_file"], "rb").read()
    else:
        key = spec.get("secret")
    out.append(jwt.encode(claims, key, algorithm=spec["alg"], headers=headers or None))
json.dump(out, sys.stdout)
"#;

/// Token specs signed by PyJWT, in order.
pub(crate) async fn sign(specs: &[Value]) -> Vec<String> {
    let out = run(
        &python(),
        &["-c", SIGNER],
        &workspace_root(),
        &Value::Array(specs.to_vec()).to_string(),
    )
    .await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("signer output {out:?}: {e}"))
}

/// Claims that pass on the test vhosts: `room`, valid for a minute.
pub(crate) fn claims(room: &str) -> Value {
    let t = now();
    json!({"iss": ISS, "aud": "jitsi", "sub": "localhost", "room": room,
           "iat": t - 10, "nbf": t - 10, "exp": t + 600})
}

/// `claims` with `key` set to `value`.
fn with(mut c: Value, key: &str, value: Value) -> Value {
    c[key] = value;
    c
}

/// An HS256 spec with the vhost's secret.
pub(crate) fn hs256(c: Value) -> Value {
    json!({"alg": "HS256", "secret": SECRET, "claims": c})
}

/// An RS256 spec signed with `key` (a PEM private key file) under `kid`.
fn rs256(key: &Path, kid: &str, c: Value) -> Value {
    json!({"alg": "RS256", "pem_file": key, "headers": {"kid": kid}, "claims": c})
}

/// A fresh RSA key pair from the openssl CLI: (private PEM file, public PEM text).
async fn rsa_pair(dir: &Path, name: &str) -> (PathBuf, String) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let p = private.display().to_string();
    run(
        Path::new("openssl"),
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &p,
        ],
        dir,
        "",
    )
    .await;
    run(
        Path::new("openssl"),
        &[
            "pkey",
            "-in",
            &p,
            "-pubout",
            "-out",
            &public.display().to_string(),
        ],
        dir,
        "",
    )
    .await;
    let pem = std::fs::read_to_string(&public).expect("read public key");
    (private, pem)
}

/// A key server on loopback, ASAP layout: `GET /keys/<sha256-hex(kid)>.pem` answers the PEM
/// with `Cache-Control: max-age=300`, anything else 404. Counts requests per path.
struct KeyServer {
    port: u16,
    keys: Arc<Mutex<HashMap<String, String>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn key_path(kid: &str) -> String {
    let hex: String = sha2::Sha256::digest(kid.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("/keys/{hex}.pem")
}

impl KeyServer {
    async fn start() -> KeyServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut ks = KeyServer {
            port,
            keys: Arc::default(),
            hits: Arc::default(),
            task: None,
        };
        ks.serve(listener);
        ks
    }

    fn serve(&mut self, listener: TcpListener) {
        let (keys, hits) = (self.keys.clone(), self.hits.clone());
        self.task = Some(tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (keys, hits) = (keys.clone(), hits.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16384 {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf);
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    *hits.lock().expect("hits").entry(path.clone()).or_default() += 1;
                    let found = keys.lock().expect("keys").get(&path).cloned();
                    let reply = match found {
                        Some(pem) => format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/x-pem-file\r\n\
                             Cache-Control: max-age=300\r\nContent-Length: {}\r\n\
                             Connection: close\r\n\r\n{pem}",
                            pem.len()
                        ),
                        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\
                                 Connection: close\r\n\r\n"
                            .to_owned(),
                    };
                    let _ = sock.write_all(reply.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        }));
    }

    /// Serve `pem` under `kid`.
    fn add(&self, kid: &str, pem: &str) {
        self.keys
            .lock()
            .expect("keys")
            .insert(key_path(kid), pem.to_owned());
    }

    /// How many times `kid`'s key was asked for.
    fn hits(&self, kid: &str) -> usize {
        self.hits
            .lock()
            .expect("hits")
            .get(&key_path(kid))
            .copied()
            .unwrap_or(0)
    }

    /// Stop listening: connections are refused from now on.
    async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// The `[[key_servers]]` table naming it `acme`.
    fn table(&self) -> String {
        format!(
            "[[key_servers]]\nname = \"acme\"\nurl = \"http://127.0.0.1:{}/keys\"\ntimeout_ms = 1000",
            self.port
        )
    }
}

/// A server whose `localhost` is auth-jwt with `settings` (an inline TOML table's inside),
/// granted the key server, with a MUC on `conference.localhost`.
fn jwt_server(settings: &str, keys: &KeyServer) -> Server {
    let vhost = Vhost::anonymous("localhost")
        .with_auth(
            "auth-jwt",
            &format!("{{ accepted_issuers = [\"{ISS}\"], {settings} }}\ngrants = [\"keys:acme\"]"),
        )
        .with(&format!("[vhosts.muc]\ndomain = \"{MUC}\""));
    Setup::new(TestConfig::new(vec![vhost]).table(&keys.table())).start()
}

pub(crate) fn hs256_settings() -> String {
    format!(
        "algorithm = \"HS256\", app_secret = \"{SECRET}\", accepted_audiences = [\"jitsi\"], \
         subjects = [\"localhost\"], max_token_bytes = 4096"
    )
}

/// The Node driver: xmpp.js over WebSocket (`mode: "logins"`, `"join"`) and Strophe.js over
/// BOSH (`"strophe"`), from a JSON plan on stdin to one JSON line on stdout.
const DRIVER: &str = r#"
import { client, xml } from "@xmpp/client";
import { DOMParser } from "@xmldom/xmldom";
import WebSocket from "ws";
import XMLHttpRequest from "xhr2";

class BrowserXHR extends XMLHttpRequest {
  get responseXML() {
    if (this.readyState !== 4 || !this.responseText) return null;
    return new DOMParser().parseFromString(this.responseText, "text/xml");
  }
}
globalThis.WebSocket ??= WebSocket;
globalThis.XMLHttpRequest ??= BrowserXHR;

const input = await new Promise((resolve) => {
  let d = "";
  process.stdin.on("data", (c) => (d += c));
  process.stdin.on("end", () => resolve(d));
});
const plan = JSON.parse(input);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const within = (p, ms, what) =>
  Promise.race([p, sleep(ms).then(() => { throw new Error(`timeout: ${what}`); })]);
const url = (base, token) => (token == null ? base : `${base}?token=${encodeURIComponent(token)}`);

async function login(token) {
  const xmpp = client({ service: url(plan.service, token), domain: plan.domain });
  xmpp.on("error", () => {});
  const stanzas = [];
  xmpp.on("stanza", (st) => stanzas.push(st));
  try {
    const jid = await within(xmpp.start(), 15000, "login");
    return { xmpp, jid: jid.toString(), stanzas };
  } catch (e) {
    try { await within(xmpp.stop(), 5000, "stop"); } catch {}
    return { failure: { name: e.name, condition: e.condition ?? null, text: e.text ?? null, message: String(e.message) } };
  }
}

const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
function summary(p) {
  const x = p.getChild("x", "http://jabber.org/protocol/muc#user");
  const item = x?.getChild("item");
  const err = p.getChild("error");
  const cond = err?.children.find((c) => typeof c !== "string" && c.name !== "text");
  const ident = p.getChild("identity");
  const user = ident?.getChild("user");
  return {
    from: p.attrs.from,
    type: p.attrs.type ?? "available",
    affiliation: item?.attrs.affiliation ?? null,
    role: item?.attrs.role ?? null,
    statuses: x ? x.getChildren("status").map((s) => s.attrs.code) : [],
    error: err ? { type: err.attrs.type, condition: cond?.name ?? null, text: err.getChildText("text", STANZAS) } : null,
    identity: ident
      ? { id: user?.getChildText("id") ?? null, name: user?.getChildText("name") ?? null,
          email: user?.getChildText("email") ?? null, avatar: user?.getChildText("avatar") ?? null,
          group: ident.getChildText("group") ?? null }
      : null,
  };
}

async function logins() {
  const results = [];
  for (const token of plan.tokens) {
    const r = await login(token);
    if (r.xmpp) {
      await within(r.xmpp.stop(), 5000, "stop");
      results.push({ jid: r.jid });
    } else results.push(r.failure);
  }
  return results;
}

async function join() {
  const people = [];
  for (const p of plan.participants) {
    const r = await login(p.token);
    if (!r.xmpp) throw new Error(`${p.nick} could not log in: ${JSON.stringify(r.failure)}`);
    const joins = [];
    for (const room of p.rooms) {
      const to = `${room}@${plan.muc}/${p.nick}`;
      await r.xmpp.send(xml("presence", { to }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
      const start = Date.now();
      let own;
      while (!own && Date.now() - start < 10000) {
        own = r.stanzas.find((s) => s.is("presence") && s.attrs.from === to);
        if (!own) await sleep(20);
      }
      joins.push(own ? summary(own) : { from: to, type: "none" });
    }
    people.push({ nick: p.nick, xmpp: r.xmpp, stanzas: r.stanzas, joins });
  }
  await sleep(plan.settle_ms ?? 500);
  const out = people.map((p) => ({
    nick: p.nick,
    joins: p.joins,
    presences: p.stanzas.filter((s) => s.is("presence")).map(summary),
  }));
  for (const p of people) await within(p.xmpp.stop(), 5000, "stop");
  return out;
}

async function strophe() {
  const { Strophe } = await import("strophe.js");
  const results = [];
  for (const token of plan.tokens) {
    const conn = new Strophe.Connection(url(plan.service, token));
    const status = await within(new Promise((resolve) => {
      conn.connect(plan.domain, null, (s) => {
        if (s === Strophe.Status.CONNECTED) resolve("connected");
        if ([Strophe.Status.CONNFAIL, Strophe.Status.AUTHFAIL, Strophe.Status.ERROR].includes(s)) resolve(`failed ${s}`);
      });
    }), 15000, "strophe connect");
    results.push({ status, jid: conn.jid ?? null });
    conn.disconnect("done");
    await sleep(100);
  }
  return results;
}

async function bench() {
  const ms = [];
  let failed = 0;
  for (const token of plan.tokens) {
    const t0 = process.hrtime.bigint();
    const r = await login(token);
    const t1 = process.hrtime.bigint();
    if (r.xmpp) {
      ms.push(Number(t1 - t0) / 1e6);
      await within(r.xmpp.stop(), 5000, "stop");
    } else failed += 1;
  }
  return { ms, failed };
}

const modes = { logins, join, strophe, bench };
try {
  const result = await modes[plan.mode]();
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
} catch (e) {
  process.stdout.write(JSON.stringify({ error: String(e?.stack || e) }) + "\n");
  process.exit(1);
}
"#;

/// Run the Node driver on `plan`.
async fn drive(plan: Value) -> Value {
    let out = run(
        Path::new("node"),
        &["--input-type=module", "-e", DRIVER],
        &workspace_root().join("tests/js"),
        &plan.to_string(),
    )
    .await;
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("driver output {out:?}: {e}"))
}

/// Log in over WebSocket with each token (`None`: no `?token=`); one result each:
/// `{"jid": …}` or `{"condition": …, "text": …}`.
pub(crate) async fn logins(server: &Server, tokens: &[Option<&str>]) -> Vec<Value> {
    let v = drive(json!({"mode": "logins", "service": server.ports().ws_url(),
                         "domain": "localhost", "tokens": tokens}))
    .await;
    v.as_array()
        .unwrap_or_else(|| panic!("logins: {v}"))
        .clone()
}

/// Assert a login succeeded.
pub(crate) fn assert_online(r: &Value, what: &str) {
    let jid = r["jid"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: not online: {r}"));
    assert!(jid.contains("@localhost/"), "{what}: {jid}");
}

/// Assert a login failed with `condition` and a text containing `because`.
fn assert_refused(r: &Value, condition: &str, because: &str, what: &str) {
    assert_eq!(r["condition"], condition, "{what}: {r}");
    let text = r["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(because),
        "{what}: text {text:?} does not say {because:?}: {r}"
    );
}

#[tokio::test]
async fn hs256_logins_and_every_refusal_over_websocket_and_bosh() {
    let keys = KeyServer::start().await;
    let server = jwt_server(&hs256_settings(), &keys);
    let dir = TempDir::new();
    let (rsa_key, rsa_pub) = rsa_pair(dir.path(), "rsa").await;
    let public_file = dir.path().join("rsa.pub");
    std::fs::write(&public_file, &rsa_pub).expect("write pub");
    let t = now();
    let specs = [
        hs256(claims("a")),
        // Over the vhost's max_token_bytes (4096) but under the host's 8 KiB cap on URL
        // parameters.
        hs256(with(claims("a"), "pad", json!("x".repeat(5000)))),
        json!({"alg": "none", "secret": null, "claims": claims("a")}),
        json!({"alg": "HS256", "secret": "not the secret", "claims": claims("a")}),
        json!({"raw_hmac_pem_file": public_file, "claims": claims("a")}),
        rs256(&rsa_key, "k1", claims("a")),
        hs256(with(claims("a"), "exp", json!(t - 5))),
        hs256(with(claims("a"), "nbf", json!(t + 300))),
        hs256(with(claims("a"), "iss", json!("mallory"))),
        hs256(with(claims("a"), "aud", json!("other-app"))),
        hs256(with(claims("a"), "sub", json!("evil.example"))),
        hs256(with(claims("a"), "aud", json!(["x", "jitsi"]))),
    ];
    let tk = sign(&specs).await;
    let cases: [(Option<&str>, Option<&str>, &str); 13] = [
        (Some(&tk[0]), None, "good HS256 token"),
        (None, Some("token required"), "no token"),
        (Some("not-a-jwt"), Some("malformed token"), "malformed"),
        (Some(&tk[1]), Some("token too large"), "oversized"),
        (Some(&tk[2]), Some("unsigned token"), "alg none"),
        (
            Some(&tk[3]),
            Some("invalid token signature"),
            "wrong secret",
        ),
        (
            Some(&tk[4]),
            Some("invalid token signature"),
            "RSA public key as HMAC secret",
        ),
        (
            Some(&tk[5]),
            Some("RS256 is not accepted; expected HS256"),
            "RS256 token",
        ),
        (Some(&tk[6]), Some("token expired"), "expired"),
        (Some(&tk[7]), Some("not yet valid"), "nbf in the future"),
        (
            Some(&tk[8]),
            Some("issuer \"mallory\" is not accepted"),
            "wrong iss",
        ),
        (
            Some(&tk[9]),
            Some("audience [\"other-app\"] is not accepted"),
            "wrong aud",
        ),
        (
            Some(&tk[10]),
            Some("subject \"evil.example\" is not accepted"),
            "wrong sub",
        ),
    ];
    let mut tokens: Vec<Option<&str>> = cases.iter().map(|c| c.0).collect();
    // An audience list with an accepted member; then the good token again: still serving.
    tokens.push(Some(&tk[11]));
    tokens.push(Some(&tk[0]));
    let results = logins(&server, &tokens).await;
    assert_eq!(results.len(), tokens.len(), "{results:?}");
    for ((_, because, what), r) in cases.iter().zip(&results) {
        match because {
            None => assert_online(r, what),
            Some(b) => assert_refused(r, "not-authorized", b, what),
        }
    }
    assert_online(&results[13], "aud list");
    assert_online(&results[14], "good token after the refusals");

    // BOSH takes the token from its URL too (Strophe.js, as lib-jitsi-meet uses it).
    let bosh = drive(
        json!({"mode": "strophe", "service": server.ports().http_url("/http-bind"),
                            "domain": "localhost", "tokens": [tk[0], null, tk[3]]}),
    )
    .await;
    assert_eq!(bosh[0]["status"], "connected", "{bosh}");
    assert!(
        bosh[0]["jid"]
            .as_str()
            .unwrap_or_default()
            .contains("@localhost/"),
        "{bosh}"
    );
    for i in [1, 2] {
        assert!(
            bosh[i]["status"]
                .as_str()
                .unwrap_or_default()
                .starts_with("failed"),
            "BOSH login {i} should fail: {bosh}"
        );
    }
    // No secret and no token in the log.
    let log = server.log();
    assert!(!log.contains(SECRET), "the app secret was logged");
    assert!(!log.contains(&tk[0]), "a token was logged");
}

#[tokio::test]
async fn rs256_keys_are_fetched_once_cached_and_the_key_server_down_is_temporary() {
    let mut keys = KeyServer::start().await;
    let dir = TempDir::new();
    let (good, good_pub) = rsa_pair(dir.path(), "good").await;
    let (other, _) = rsa_pair(dir.path(), "other").await;
    keys.add("k1", &good_pub);
    keys.add("k2", &good_pub);
    let server = jwt_server(
        "algorithm = \"RS256\", accepted_audiences = [\"jitsi\"], subjects = [\"localhost\"]",
        &keys,
    );
    let tk = sign(&[
        rs256(&good, "k1", claims("a")),
        rs256(&other, "k1", claims("a")),
        rs256(&good, "nobody", claims("a")),
        json!({"alg": "RS256", "pem_file": good, "claims": claims("a")}),
        hs256(claims("a")),
        rs256(&good, "k2", claims("a")),
        rs256(&good, "k3", claims("a")),
    ])
    .await;
    let first = logins(&server, &[Some(&tk[0])]).await;
    assert_online(&first[0], "RS256, first fetch");
    assert_eq!(keys.hits("k1"), 1);
    let again = logins(
        &server,
        &[
            Some(&tk[0]),
            Some(&tk[1]),
            Some(&tk[2]),
            Some(&tk[3]),
            Some(&tk[4]),
            Some(&tk[0]),
        ],
    )
    .await;
    assert_online(&again[0], "RS256, cached key");
    assert_refused(
        &again[1],
        "not-authorized",
        "invalid token signature",
        "wrong key",
    );
    assert_refused(
        &again[2],
        "not-authorized",
        "unknown key id \"nobody\"",
        "unknown kid",
    );
    assert_refused(
        &again[3],
        "not-authorized",
        "`kid` header is missing",
        "no kid",
    );
    assert_refused(
        &again[4],
        "not-authorized",
        "HS256 is not accepted; expected RS256",
        "HS256 token on an RS256 vhost",
    );
    assert_online(&again[5], "RS256 after refusals");
    assert_eq!(
        keys.hits("k1"),
        1,
        "the key was fetched again instead of cached"
    );
    assert_eq!(keys.hits("nobody"), 1);

    // The key server goes away: a key not cached cannot be had now (temporary), a cached one
    // still works, and the server keeps serving.
    keys.stop().await;
    let down = logins(&server, &[Some(&tk[5]), Some(&tk[0])]).await;
    assert_refused(&down[0], "temporary-auth-failure", "", "key server down");
    assert_online(&down[1], "cached key while the key server is down");
    // It comes back on the same port: the key is fetched.
    let listener = TcpListener::bind(("127.0.0.1", keys.port))
        .await
        .expect("rebind the key server's port");
    keys.serve(listener);
    keys.add("k3", &good_pub);
    let back = logins(&server, &[Some(&tk[6])]).await;
    assert_online(&back[0], "a new key once the key server is back");
    assert_eq!(keys.hits("k3"), 1);
}

#[tokio::test]
async fn the_token_decides_room_moderator_and_user_card() {
    let keys = KeyServer::start().await;
    let server = jwt_server(&hs256_settings(), &keys);
    let card = |name: &str, moderator: Value| {
        json!({"user": {"id": format!("id-{name}"), "name": name,
                        "email": format!("{name}@example.com"), "moderator": moderator},
               "group": "team-1"})
    };
    let tk = sign(&[
        hs256(with(claims("a"), "context", card("Ann", json!(true)))),
        hs256(with(claims("A"), "context", card("Bob", json!("false")))),
        hs256(with(claims("*"), "context", card("Cy", json!("true")))),
    ])
    .await;
    let out = drive(json!({
        "mode": "join", "service": server.ports().ws_url(), "domain": "localhost", "muc": MUC,
        "participants": [
            {"token": tk[0], "nick": "ann", "rooms": ["a", "b"]},
            {"token": tk[1], "nick": "bob", "rooms": ["b", "a"]},
            {"token": tk[2], "nick": "cy", "rooms": ["a"]},
        ],
    }))
    .await;
    let people = out.as_array().unwrap_or_else(|| panic!("join: {out}"));
    let (ann, bob, cy) = (&people[0], &people[1], &people[2]);
    // Ann's token is for room a (moderator): she joins a as owner, and b is refused.
    let a = &ann["joins"][0];
    assert_eq!(a["type"], "available", "{a}");
    assert_eq!(
        (&a["affiliation"], &a["role"]),
        (&json!("owner"), &json!("moderator")),
        "{a}"
    );
    assert!(
        a["statuses"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("110"))),
        "{a}"
    );
    let b = &ann["joins"][1];
    assert_eq!(b["type"], "error", "{b}");
    assert_eq!(b["error"]["condition"], "not-allowed", "{b}");
    assert_eq!(b["error"]["type"], "cancel", "{b}");
    assert!(
        b["error"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Room and token mismatched"),
        "{b}"
    );
    // Bob's token names room "A": the claim is lowercased, so b is refused and a joined; he is
    // not a moderator.
    assert_eq!(
        bob["joins"][0]["error"]["condition"], "not-allowed",
        "{bob}"
    );
    let ba = &bob["joins"][1];
    assert_eq!(ba["type"], "available", "{ba}");
    assert_eq!(ba["affiliation"], "none", "{ba}");
    assert_eq!(ba["role"], "participant", "{ba}");
    // Each sees the other's user card, as the server put it in the presence.
    let seen_by_ann = ann["presences"]
        .as_array()
        .and_then(|ps| {
            ps.iter()
                .find(|p| p["from"] == "a@conference.localhost/bob")
        })
        .unwrap_or_else(|| panic!("Ann never saw Bob: {ann}"));
    assert_eq!(
        seen_by_ann["identity"],
        json!({"id": "id-Bob", "name": "Bob", "email": "Bob@example.com", "avatar": null,
               "group": "team-1"}),
        "{seen_by_ann}"
    );
    let seen_by_bob = bob["presences"]
        .as_array()
        .and_then(|ps| {
            ps.iter()
                .find(|p| p["from"] == "a@conference.localhost/ann")
        })
        .unwrap_or_else(|| panic!("Bob never saw Ann: {bob}"));
    assert_eq!(seen_by_bob["identity"]["name"], "Ann", "{seen_by_bob}");
    assert_eq!(seen_by_bob["affiliation"], "owner", "{seen_by_bob}");
    // Cy's token is for any room ("*"), as a moderator ("true" as a string): joining the room
    // Ann created, Cy is made an owner too.
    let c = &cy["joins"][0];
    assert_eq!(c["type"], "available", "{c}");
    assert_eq!(
        (&c["affiliation"], &c["role"]),
        (&json!("owner"), &json!("moderator")),
        "{c}"
    );
}

/// Server CPU time (user + system) of process `pid` in milliseconds, from /proc.
pub(crate) fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    ticks * 1000.0 / hz
}

/// The `q` quantile of sorted `v`.
pub(crate) fn quantile(v: &[f64], q: f64) -> f64 {
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

/// Login latency and server CPU for N logins (`LILT_BENCH_LOGINS`, default 200) each of:
/// anonymous (auth-anonymous, no identity), HS256, RS256 with a cached key, RS256 with a key
/// fetched per login (distinct kids). Sequential logins by xmpp.js over WebSocket; latency is
/// the client's, from `start()` to online (WebSocket, stream, SASL, bind). Run by hand:
/// scripts/login_bench.sh.
#[tokio::test]
#[ignore = "a measurement, run by scripts/login_bench.sh"]
async fn login_bench() {
    let n: usize = std::env::var("LILT_BENCH_LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let keys = KeyServer::start().await;
    let dir = TempDir::new();
    let (key, public) = rsa_pair(dir.path(), "bench").await;
    keys.add("k1", &public);
    for i in 0..n {
        keys.add(&format!("fresh-{i}"), &public);
    }
    let jwt = |domain: &str, settings: String| {
        Vhost::anonymous(domain).with_auth(
            "auth-jwt",
            &format!("{{ accepted_issuers = [\"{ISS}\"], require_room_claim = false, {settings} }}\ngrants = [\"keys:acme\"]"),
        )
    };
    let config = TestConfig::new(vec![
        Vhost::anonymous("anon.localhost"),
        jwt(
            "localhost",
            format!("algorithm = \"HS256\", app_secret = \"{SECRET}\""),
        ),
        jwt("rs.localhost", "algorithm = \"RS256\"".to_owned()),
    ])
    .table(&keys.table());
    let server = Setup::new(config).start();
    let mut specs = vec![hs256(claims("*")), rs256(&key, "k1", claims("*"))];
    specs.extend((0..n).map(|i| rs256(&key, &format!("fresh-{i}"), claims("*"))));
    let tk = sign(&specs).await;
    let fresh: Vec<Option<&str>> = tk[2..].iter().map(|t| Some(t.as_str())).collect();
    let kinds: [(&str, &str, Vec<Option<&str>>); 4] = [
        ("anonymous", "anon.localhost", vec![None; n]),
        ("HS256", "localhost", vec![Some(&tk[0]); n]),
        ("RS256 cached", "rs.localhost", vec![Some(&tk[1]); n]),
        ("RS256 first fetch", "rs.localhost", fresh),
    ];
    // Warm up every vhost's plugin instance (and cache k1).
    for (domain, token) in [
        ("anon.localhost", None),
        ("localhost", Some(tk[0].as_str())),
        ("rs.localhost", Some(tk[1].as_str())),
    ] {
        drive(
            json!({"mode": "bench", "service": server.ports().ws_url(), "domain": domain,
                     "tokens": vec![token; 10]}),
        )
        .await;
    }
    println!("{n} sequential logins each (xmpp.js over WebSocket, SASL ANONYMOUS + bind)");
    println!("| kind | p50 ms | p99 ms | server CPU ms/login | failed |");
    println!("|---|---|---|---|---|");
    for (name, domain, tokens) in kinds {
        let before = cpu_ms(server.pid());
        let out = drive(json!({"mode": "bench", "service": server.ports().ws_url(),
                               "domain": domain, "tokens": tokens}))
        .await;
        let cpu = cpu_ms(server.pid()) - before;
        let mut ms: Vec<f64> = out["ms"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        ms.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.2} | {:.2} | {:.3} | {} |",
            quantile(&ms, 0.5),
            quantile(&ms, 0.99),
            cpu / n as f64,
            out["failed"]
        );
        assert_eq!(out["failed"], 0, "{name}: {out}");
    }
    assert!(
        keys.hits(&format!("fresh-{}", n - 1)) == 1,
        "first fetches did not fetch"
    );
}

/// The real client: lib-jitsi-meet in headless Chromium, given a token as
/// `new JitsiConnection(null, token, …)` (it adds `?token=` to its WebSocket URL), joins the
/// token's room on an HS256 vhost with no key server and gets the other's media; without a
/// token it is refused at login, and with a token for another room it is refused at the join.
#[tokio::test]
async fn lib_jitsi_meet_meets_with_a_token() {
    crate::browser::require_browser_deps();
    let [sfu_port] = crate::harness::free_ports::<1>();
    let vhost = Vhost::anonymous("localhost")
        .with_auth(
            "auth-jwt",
            &format!("{{ accepted_issuers = [\"{ISS}\"], {} }}", hs256_settings()),
        )
        .with(&format!("[vhosts.muc]\ndomain = \"{MUC}\"\n[vhosts.focus]"));
    let server = Setup::new(
        TestConfig::new(vec![vhost]).table(&format!("[sfu]\nbind = \"127.0.0.1:{sfu_port}\"")),
    )
    .start();
    let tk = sign(&[hs256(claims("jwtroom")), hs256(claims("elsewhere"))]).await;
    let port = server.ports().http.to_string();
    let meet = move |extra: Vec<String>| {
        let port = port.clone();
        tokio::task::spawn_blocking(move || {
            let mut args: Vec<&str> = vec![
                "--http-port",
                &port,
                "--domain",
                "localhost",
                "--timeout",
                "60",
                "--room",
                "jwtroom",
            ];
            args.extend(extra.iter().map(String::as_str));
            crate::browser::run_node("meet.mjs", &args, 60)
        })
    };
    let good = tk[0].clone();
    let run = meet(vec![
        "--participants".into(),
        "2".into(),
        "--expect".into(),
        "media".into(),
        "--token".into(),
        good,
    ])
    .await
    .expect("meet.mjs");
    assert!(
        run.code == Some(0) && run.report["ok"] == Value::Bool(true),
        "two participants with a token did not meet: {}\n{}",
        run.report,
        run.log
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // No token: the login itself is refused (lib-jitsi-meet reports PASSWORD_REQUIRED).
    let run = meet(vec![
        "--participants".into(),
        "1".into(),
        "--expect".into(),
        "connected".into(),
    ])
    .await
    .expect("meet.mjs");
    assert_ne!(run.code, Some(0), "a login without a token went through");
    let failure = run.report["failure"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        failure.contains("passwordRequired") || failure.contains("PASSWORD_REQUIRED"),
        "{failure}\n{}",
        run.report
    );
    // A token for another room: connected, then the join is refused.
    let other = tk[1].clone();
    let run = meet(vec![
        "--participants".into(),
        "1".into(),
        "--expect".into(),
        "joined".into(),
        "--token".into(),
        other,
    ])
    .await
    .expect("meet.mjs");
    assert_ne!(run.code, Some(0), "a token for another room joined");
    let failure = run.report["failure"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(failure.contains("notAllowed"), "{failure}\n{}", run.report);
}
