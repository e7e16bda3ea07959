//! The meeting page (host/web, built by scripts/web.sh into host/web/dist) served by the real
//! `lilt`: its routes and `/config.json` over reqwest, and two people meeting on it in
//! headless Chromium (tests/browser/meeting-page.mjs drives the page through its DOM: room
//! picker, pre-join, join, tiles, chat, branding, speaker stats, mute, leave).
//!
//! Shell (processes: `lilt serve`, `node meeting-page.mjs`, Chromium). Spec: docs/meeting-page.md.
//! Invariants: every run is bounded (the script by `--timeout`, and killed here a little after);
//! only 127.0.0.1 is used; a missing page build, Chromium or npm install fails with a message
//! naming the script that provides it. Tests: this file.

use serde_json::Value;

use crate::browser::run_node;
use crate::harness::{Server, Setup, TempDir, TestConfig, Vhost, free_ports, workspace_root};
use crate::web;

/// How long the browser run may take.
const RUN_TIMEOUT_S: u64 = 120;

/// Panics with how to build it when the page is not built.
fn require_page() {
    let index = workspace_root().join("host/web/dist/index.html");
    assert!(
        index.is_file(),
        "the meeting page is not built ({} is missing); run `bash scripts/web.sh` \
         (scripts/setup.sh does)",
        index.display()
    );
}

/// A Jitsi tenant on `localhost`: MUC, focus, the SFU on a free loopback port, and the
/// speakerstats, conference-duration and branding plugins. `tls_required`: the vhost refuses
/// plain `ws://` logins, as the embedded defaults do.
fn page_config_with(tls_required: bool) -> TestConfig {
    let [sfu_port] = free_ports::<1>();
    let vhost = Vhost::anonymous("localhost");
    let vhost = if tls_required {
        vhost.tls_required()
    } else {
        vhost
    };
    TestConfig::new(vec![
        vhost
            .with("[vhosts.muc]\ndomain = \"conference.localhost\"\n[vhosts.focus]")
            .with(
                "[[vhosts.plugins]]\nplugin = \"speakerstats\"\ncomponent = \"speakerstats.localhost\"\n\
                 [[vhosts.plugins]]\nplugin = \"conference-duration\"\n\
                 component = \"conferenceduration.localhost\"\n\
                 [[vhosts.plugins]]\nplugin = \"branding\"\n[vhosts.plugins.settings]\n\
                 welcome_message = \"Welcome to {room}, {name}!\"\n\
                 brand = { name = \"Acme Meet\", logo_url = \"/assets/logo.svg\", \
                 colors = { primary = \"#0055ff\" } }",
            ),
    ])
    .table(&format!("[sfu]\nbind = \"127.0.0.1:{sfu_port}\""))
}

fn page_config() -> TestConfig {
    page_config_with(false)
}

#[tokio::test]
async fn page_routes_and_config() {
    require_page();
    let server = Setup::new(page_config()).start();
    let ports = server.ports();
    for path in ["/", "/team-sync", "/Team-Sync/"] {
        let (status, ct, body) = web::get(ports, path).await;
        assert_eq!(
            (status, ct.as_str()),
            (200, "text/html; charset=utf-8"),
            "{path}"
        );
        assert!(
            body.contains("/assets/lib-jitsi-meet.min.js?v=") && body.contains("/assets/app.js?v="),
            "{path} is the page: {body}"
        );
    }
    for (path, ct) in [
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        (
            "/assets/lib-jitsi-meet.min.js",
            "text/javascript; charset=utf-8",
        ),
        ("/assets/jquery.min.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
    ] {
        let (status, got, _) = web::get(ports, path).await;
        assert_eq!((status, got.as_str()), (200, ct), "{path}");
    }
    // Traversal is static_files' (its unit tests; reqwest normalises dot segments away).
    for path in ["/a/b", "/missing.js", "/assets/.hidden"] {
        let (status, _, _) = web::get(ports, path).await;
        assert_ne!(status, 200, "{path}");
    }
    let (status, ct, body) = web::get(ports, "/config.json").await;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let c: Value = serde_json::from_str(&body).expect("config.json is JSON");
    assert_eq!(c["domain"], "localhost", "{c}");
    assert_eq!(c["muc"], "conference.localhost", "{c}");
    assert_eq!(c["focus"], "focus.localhost", "{c}");
    assert_eq!(c["websocket"], "/xmpp-websocket", "{c}");
    assert_eq!(c["anonymous"], true, "{c}");
    assert_eq!(c["branding"], true, "{c}");
    assert_eq!(c["speakerstats"], "speakerstats.localhost", "{c}");
    assert_eq!(
        c["conference_duration"], "conferenceduration.localhost",
        "{c}"
    );
    // /about/health and the other routes are untouched.
    let (status, _, _) = web::get(ports, "/about/health").await;
    assert_eq!(status, 200);
}

/// A file of `http.static_dir` wins over the page; what it lacks, the page answers.
#[tokio::test]
async fn static_dir_comes_first() {
    require_page();
    let site = TempDir::new();
    std::fs::write(site.path().join("index.html"), "operator's page").expect("write");
    let server = Setup::new(page_config().http(&format!(
        "static_dir = {:?}",
        site.path().display().to_string()
    )))
    .start();
    let ports = server.ports();
    let (status, _, body) = web::get(ports, "/").await;
    assert_eq!((status, body.as_str()), (200, "operator's page"));
    let (status, _, body) = web::get(ports, "/some-room").await;
    assert_eq!(status, 200);
    assert!(body.contains("/assets/app.js?v="), "{body}");
}

/// The run succeeded; otherwise fail with its failure, steps, pages and the log's tail.
fn assert_page_ok(code: Option<i32>, report: &Value, log: &str) {
    let tail: Vec<&str> = log.lines().rev().take(80).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    assert!(
        code == Some(0) && report["ok"] == Value::Bool(true),
        "the meeting page run failed (exit {code:?}): {}\nsteps: {}\npages: {}\n---- log tail ----\n{}",
        report["failure"],
        report["steps"],
        report["pages"],
        tail.join("\n")
    );
}

/// The names of the steps a run reported, in order.
fn steps(report: &Value) -> Vec<&str> {
    report["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["step"].as_str())
        .collect()
}

/// Run meeting-page.mjs against `server`; its exit code, report and stderr.
fn run_page_test(server: &Server, args: &[&str]) -> (Option<i32>, Value, String, TempDir) {
    let url = format!("http://127.0.0.1:{}", server.ports().http);
    let timeout = RUN_TIMEOUT_S.to_string();
    let mut all = vec!["--url", &url, "--timeout", &timeout];
    all.extend_from_slice(args);
    let run = run_node("meeting-page.mjs", &all, RUN_TIMEOUT_S);
    (run.code, run.report, run.log, run.dir)
}

/// Two people meet on the page, as on the embedded defaults (a vhost that refuses plain
/// `ws://` logins): Alice opens `http://…/` and picks the room (typed in upper case, the page
/// lower-cases it; `?jwt=` rides along to the XMPP WebSocket as `token=`), the page moves
/// itself to the HTTPS listener, both join from the pre-join screen with fake camera and
/// microphone, each shows the other's tile with the right name, both show the brand name and
/// the welcome message of the branding plugin, a chat message arrives, the speaker stats list
/// both, Alice's mute shows on her tile (and on Bob's tile of her when he has her audio
/// track), each plays the other's video (media through the SFU, within 20 s), Bob's leaving
/// removes his tile, and so does closing his tab after he joined again.
#[test]
fn two_people_meet_on_the_page() {
    require_page();
    let server = Setup::new(page_config_with(true)).start();
    let (code, report, log, _dir) = run_page_test(
        &server,
        &[
            "--expect-https",
            "--require-media",
            "--media-wait",
            "20",
            "--jwt",
            "a.b.c",
            "--room",
            "team-sync",
            "--brand-name",
            "Acme Meet",
            "--welcome",
            "Welcome to team-sync",
        ],
    );
    assert_page_ok(code, &report, &log);
    let steps = steps(&report);
    for wanted in [
        "alice: pre-join shown",
        "alice: moved to HTTPS",
        "alice: camera preview playing",
        "tiles with names",
        "brand name shown",
        "welcome message shown",
        "chat message delivered",
        "speaker stats shown",
        "alice muted her microphone",
        "bob left; his tile is gone at alice",
        "bob joined again",
        "bob closed the tab; his tile is gone at alice",
    ] {
        assert!(
            steps.contains(&wanted),
            "step {wanted:?} missing: {steps:?}"
        );
    }
    // What media reached the pages (required above: --require-media), for the record.
    eprintln!(
        "media: {}; conference duration shown: {}",
        report["media"], report["duration"]
    );
}

/// A vhost with accounts (auth-internal): the pre-join screen asks for user and password, and
/// both people log in with them (two sessions of one account) and meet; a wrong password is
/// refused with a message saying so.
#[test]
fn account_vhost_asks_for_login() {
    require_page();
    let [sfu_port] = free_ports::<1>();
    let setup = Setup::new(
        TestConfig::new(vec![Vhost::internal("localhost").with(
            "[vhosts.muc]\ndomain = \"conference.localhost\"\n[vhosts.focus]",
        )])
        .table(&format!("[sfu]\nbind = \"127.0.0.1:{sfu_port}\"")),
    );
    setup.add_user("carol@localhost", "s3cret-pass");
    let server = setup.start();
    let (code, report, log, _dir) = run_page_test(
        &server,
        &[
            "--room",
            "accounts",
            "--login",
            "carol:s3cret-pass",
            "--media-wait",
            "0",
        ],
    );
    assert_page_ok(code, &report, &log);
    // A wrong password: the page says so in words, and nobody joins.
    let (code, report, _log, _dir) = run_page_test(
        &server,
        &[
            "--room",
            "accounts",
            "--login",
            "carol:wrong",
            "--media-wait",
            "0",
        ],
    );
    let failure = report["failure"].as_str().unwrap_or_default();
    assert!(
        code == Some(1) && failure.contains("refused the login"),
        "exit {code:?}, failure {failure:?}"
    );
}

/// Four people on the page: after Alice and Bob, Carol and Dave open the room by URL and join;
/// each of the four shows the three others' tiles with their names. Carol and Dave then close
/// their tabs and Alice's page is back to Bob alone; the two-person checks (chat, mute, leave)
/// follow. Video is reported, not required, with four senders on a small machine.
#[test]
fn four_people_on_the_page() {
    require_page();
    let server = Setup::new(page_config()).start();
    let (code, report, log, _dir) = run_page_test(
        &server,
        &["--room", "four", "--extra", "2", "--media-wait", "5"],
    );
    assert_page_ok(code, &report, &log);
    let steps = steps(&report);
    for wanted in [
        "4 people see each other by name",
        "the others closed their tabs; alice shows only bob",
        "chat message delivered",
    ] {
        assert!(
            steps.contains(&wanted),
            "step {wanted:?} missing: {steps:?}"
        );
    }
    eprintln!("media with two left: {}", report["media"]);
}
