//! One tenant's broken plugin must not touch another tenant: a hook plugin on vhost A that
//! panics, prints without end, loops, exhausts its memory or stack, or hammers `kv`, while
//! sessions on vhost B exchange messages throughout; an auth plugin on vhost A that panics,
//! loops or exhausts its memory on every login; and signals a supervisor sends.
//!
//! Shell (end-to-end against `lilt serve` with the real `test-hooks` component in each of its
//! misbehaving modes). Spec: docs/plugins.md (hooks fail open, auth fails closed, calls
//! run on a per-vhost worker off the router, guest output goes to the host log).
//! Invariants checked: vhost B loses no message and keeps its order; vhost A's message is
//! still delivered (fail open); new sessions bind on both vhosts afterwards; health stays OK;
//! the trap is logged with the plugin, the vhost and what the guest printed; a looping plugin
//! on A does not hold up B (B's whole exchange finishes before A's hook call gives up); SIGHUP
//! does not stop the server. Tests: this file.

use std::time::Instant;

use crate::harness::{Server, Setup, TestConfig, Vhost};
use crate::muc::Peer;
use crate::raw::RawClient;
use crate::web::get;

/// Messages vhost B exchanges while vhost A's plugin misbehaves.
const B_MESSAGES: usize = 20;

/// What one run saw.
struct Run {
    server: Server,
    /// When B's last message arrived.
    b_done: Instant,
    /// When A's message (held by the misbehaving hook) arrived.
    a_done: Instant,
}

/// Vhost A runs `test-hooks` in `mode`; vhost B has no plugins. A's message goes first, then B
/// chats; both must arrive, and both vhosts must take new sessions afterwards.
async fn tenant_a_misbehaves(mode: &str, tables: &[&str]) -> Run {
    let a = Vhost::anonymous("a.localhost").with(&format!(
        "[[vhosts.plugins]]\nplugin = \"test-hooks\"\nsettings = {{ mode = \"{mode}\" }}"
    ));
    let b = Vhost::anonymous("b.localhost");
    let mut config = TestConfig::new(vec![a, b]);
    for t in tables {
        config = config.table(t);
    }
    let server = Setup::new(config).start();
    let mut a1 = Peer::anonymous(&server, "a.localhost").await;
    let mut a2 = Peer::anonymous(&server, "a.localhost").await;
    let mut b1 = Peer::anonymous(&server, "b.localhost").await;
    let mut b2 = Peer::anonymous(&server, "b.localhost").await;
    a2.var("from", &a1.jid);

    // A's hook gets this message and misbehaves on it.
    a1.send(&format!(
        "<message to='{}' type='chat'><body>from a</body></message>",
        a2.jid
    ))
    .await;
    // Meanwhile B chats, each message awaited before the next.
    chat(&mut b1, &mut b2).await;
    let b_done = Instant::now();
    // Hooks fail open: A's message arrives once the hook gave up or finished.
    a2.expect("<message from='{from}' to='{me}' type='chat'><body>from a</body></message>")
        .await;
    let a_done = Instant::now();

    // Both vhosts still take sessions, and they route.
    for domain in ["a.localhost", "b.localhost"] {
        let mut p = Peer::anonymous(&server, domain).await;
        let me = p.jid.clone();
        p.send(&format!(
            "<message to='{me}' type='chat'><body>still here</body></message>"
        ))
        .await;
        p.expect("<message from='{me}' to='{me}' type='chat'><body>still here</body></message>")
            .await;
    }
    let (status, _, body) = get(server.ports(), "/about/health").await;
    assert_eq!(status, 200, "health after {mode}: {body}");
    Run {
        server,
        b_done,
        a_done,
    }
}

/// Vhost B's exchange: `B_MESSAGES` chat messages from `b1` to `b2`, each awaited before the
/// next, in order.
async fn chat(b1: &mut Peer, b2: &mut Peer) {
    b2.var("from", &b1.jid);
    for i in 0..B_MESSAGES {
        b1.send(&format!(
            "<message to='{}' type='chat'><body>b{i}</body></message>",
            b2.jid
        ))
        .await;
        b2.expect(&format!(
            "<message from='{{from}}' to='{{me}}' type='chat'><body>b{i}</body></message>"
        ))
        .await;
    }
}

#[tokio::test]
async fn a_panicking_plugin_is_a_logged_trap() {
    let run = tenant_a_misbehaves("panic", &[]).await;
    run.server
        .logged(&[
            "Plugin trapped",
            "test-hooks",
            "a.localhost",
            "deliberate panic in handle",
        ])
        .await;
}

#[tokio::test]
async fn a_printing_plugin_is_logged_within_bounds() {
    let run = tenant_a_misbehaves("print", &[]).await;
    // Its output reaches the log, tagged, and the rest is counted rather than written.
    run.server
        .logged(&[
            "test-hooks stdout line 0",
            "test-hooks stderr line 0",
            "Plugin output suppressed",
        ])
        .await;
    // `print` mode writes 5,000 lines to each stream (test_hooks::PRINT_LINES).
    let log = run.server.log();
    let lines = log.matches("Plugin output.").count();
    assert!(
        lines < 1_000,
        "{lines} guest lines logged: the rate limit did not hold"
    );
}

#[tokio::test]
async fn a_looping_plugin_holds_up_only_its_own_vhost() {
    // A generous deadline, so that B's whole exchange clearly fits inside it.
    let run = tenant_a_misbehaves("loop", &["[plugin_limits]\ncall_timeout_ms = 2000"]).await;
    assert!(
        run.b_done < run.a_done,
        "vhost B's exchange waited for vhost A's looping hook"
    );
    run.server
        .logged(&["Plugin trapped", "call exceeded its time limit"])
        .await;
}

#[tokio::test]
async fn a_plugin_exhausting_its_memory_is_a_trap() {
    let run = tenant_a_misbehaves("alloc", &["[plugin_limits]\nmemory_mib = 16"]).await;
    run.server.logged(&["Plugin trapped", "test-hooks"]).await;
}

#[tokio::test]
async fn a_plugin_exhausting_its_stack_is_a_trap() {
    let run = tenant_a_misbehaves("recurse", &[]).await;
    run.server.logged(&["Plugin trapped", "test-hooks"]).await;
}

#[tokio::test]
async fn a_plugin_hammering_kv_is_stopped_by_its_quota() {
    let run = tenant_a_misbehaves("kv", &["[plugin_limits]\nkv_quota_mib = 1"]).await;
    // The quota refused further writes and the plugin passed; nothing trapped.
    assert!(!run.server.log().contains("Plugin trapped"));
}

#[tokio::test]
async fn sighup_does_not_stop_the_server() {
    let mut server = Setup::new(TestConfig::localhost_anonymous()).start();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let mut p = Peer::anonymous(&server, "localhost").await;
    let me = p.jid.clone();
    p.send(&format!(
        "<message to='{me}' type='chat'><body>hup</body></message>"
    ))
    .await;
    p.expect("<message from='{me}' to='{me}' type='chat'><body>hup</body></message>")
        .await;
    assert!(server.is_running());
    server.logged(&["SIGHUP received"]).await;
}

/// Vhost A's auth plugin misbehaves on every password check; vhost B chats meanwhile. A's
/// logins fail closed with `temporary-auth-failure`; B loses nothing.
async fn tenant_a_auth_misbehaves(mode: &str, tables: &[&str]) -> Server {
    let a =
        Vhost::anonymous("a.localhost").with_auth("test-auth", &format!("{{ mode = \"{mode}\" }}"));
    let b = Vhost::anonymous("b.localhost");
    let mut config = TestConfig::new(vec![a, b]);
    for t in tables {
        config = config.table(t);
    }
    let server = Setup::new(config).start();
    let addr = server.ports().c2s_addr();
    let login = tokio::spawn(async move {
        let mut c = RawClient::connect(addr).await;
        c.open("a.localhost").await;
        c.auth_plain("alice", "secret").await
    });
    let mut b1 = Peer::anonymous(&server, "b.localhost").await;
    let mut b2 = Peer::anonymous(&server, "b.localhost").await;
    chat(&mut b1, &mut b2).await;
    let outcome = login.await.expect("login task");
    assert_eq!(
        outcome,
        Err("temporary-auth-failure".to_owned()),
        "{mode}: vhost A's login must fail closed"
    );
    // A new login on B still works; so does asking A again (and failing closed again).
    let _ = Peer::anonymous(&server, "b.localhost").await;
    let mut again = RawClient::connect(addr).await;
    again.open("a.localhost").await;
    assert_eq!(
        again.auth_plain("bob", "secret").await,
        Err("temporary-auth-failure".to_owned())
    );
    server
}

#[tokio::test]
async fn a_panicking_auth_plugin_fails_closed_and_leaves_other_vhosts_alone() {
    let server = tenant_a_auth_misbehaves("panic", &[]).await;
    server
        .logged(&[
            "Plugin trapped",
            "test-auth",
            "deliberate panic checking alice",
        ])
        .await;
}

#[tokio::test]
async fn a_looping_auth_plugin_fails_closed_and_leaves_other_vhosts_alone() {
    let server =
        tenant_a_auth_misbehaves("loop", &["[plugin_limits]\ncall_timeout_ms = 500"]).await;
    server.logged(&["Plugin trapped", "test-auth"]).await;
}

#[tokio::test]
async fn an_auth_plugin_exhausting_memory_fails_closed() {
    let server = tenant_a_auth_misbehaves("alloc", &["[plugin_limits]\nmemory_mib = 16"]).await;
    server.logged(&["Plugin trapped", "test-auth"]).await;
}
