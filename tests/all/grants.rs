//! Capability grants (`grants = [...]` per plugin per vhost): a plugin may import only the
//! `lilt:plugin` interfaces its config grants, beyond the always-granted ones.
//!
//! Shell (runs the real binary and the real plugin components). Spec: docs/plugins.md
//! ("Grants"). Invariants checked: a component importing an ungranted interface is refused by
//! `check-config` and by `serve` with an error naming the key and the interface; explicit full
//! grants load and work; an unknown grant name is a config error naming its key; an auth
//! plugin that imports `kv` is refused with `grants = []`, and one that imports nothing
//! grantable works with `grants = []`.
//! Tests: this file.

use crate::harness::{CliOutput, Setup, TestConfig, Vhost, run_cli};
use crate::muc::Peer;

fn check(setup: &Setup) -> CliOutput {
    run_cli(&["check-config", &setup.config_arg()], "")
}

/// `lilt serve` on a config that must not start: it exits (bounded by the CLI timeout).
fn serve(setup: &Setup) -> CliOutput {
    run_cli(&["serve", "--config", &setup.config_arg()], "")
}

/// `setup` with `grants = <grants>` added to the vhost's auth plugin `plugin`.
fn auth_grants(setup: &Setup, plugin: &str, grants: &str) {
    let text = std::fs::read_to_string(&setup.config_path).expect("read config");
    let table = format!("[vhosts.auth]\nplugin = {plugin:?}\n");
    assert_eq!(text.matches(&table).count(), 1, "no auth table in {text}");
    let text = text.replace(&table, &format!("{table}grants = {grants}\n"));
    std::fs::write(&setup.config_path, text).expect("write config");
}

fn test_hooks(grants: &str, settings: &str) -> Setup {
    Setup::new(TestConfig::new(vec![Vhost::anonymous("localhost").with(
        &format!("[[vhosts.plugins]]\nplugin = \"test-hooks\"\ngrants = {grants}\n{settings}"),
    )]))
}

#[test]
fn an_ungranted_import_is_refused_by_check_config_and_serve() {
    // test-hooks imports kv, stanzas and timers.
    let setup = test_hooks("[\"kv\"]", "");
    let expected = "vhosts[0].plugins[0].grants (localhost): plugin test-hooks: imports \
                    lilt:plugin/stanzas, lilt:plugin/timers, which are not granted \
                    (add \"stanzas\", \"timers\" to grants)";
    let out = check(&setup);
    assert!(!out.success(), "check-config accepted it: {out:?}");
    assert!(out.stderr.contains(expected), "{:?}", out.stderr);
    let out = serve(&setup);
    assert!(!out.success(), "serve started: {out:?}");
    assert!(out.stderr.contains(expected), "{:?}", out.stderr);

    // One missing interface reads in the singular.
    let setup = test_hooks("[\"kv\", \"timers\"]", "");
    let out = check(&setup);
    assert!(!out.success(), "check-config accepted it: {out:?}");
    assert!(
        out.stderr.contains(
            "vhosts[0].plugins[0].grants (localhost): plugin test-hooks: imports \
             lilt:plugin/stanzas, which is not granted (add \"stanzas\" to grants)"
        ),
        "{:?}",
        out.stderr
    );
}

#[tokio::test]
async fn explicit_full_grants_load_and_work() {
    let setup = test_hooks(
        "[\"kv\", \"stanzas\", \"timers\"]",
        "settings = { mode = \"timer\" }",
    );
    let out = check(&setup);
    assert!(out.success(), "check-config refused full grants: {out:?}");
    let server = setup.start();
    let mut a = Peer::anonymous(&server, "localhost").await;
    // `timer N` is answered through `timers.set-timer` and then `stanzas.send`.
    a.send("<message to='localhost' type='chat'><body>timer 50</body></message>")
        .await;
    a.expect("<message from='localhost' to='{me}'><body>timer fired</body></message>")
        .await;
}

#[test]
fn unknown_and_reserved_grant_names_are_refused() {
    let setup = test_hooks("[\"kvv\"]", "");
    let expected = "vhosts[0].plugins[0].grants[0]: unknown capability \"kvv\" (known: kv, stanzas, timers, keys:<key server>, ldap:<profile>)";
    let out = check(&setup);
    assert!(!out.success(), "check-config accepted it: {out:?}");
    assert!(out.stderr.contains(expected), "{:?}", out.stderr);
    let out = serve(&setup);
    assert!(!out.success(), "serve started: {out:?}");
    assert!(out.stderr.contains(expected), "{:?}", out.stderr);

    let setup = Setup::new(TestConfig::localhost_internal());
    auth_grants(&setup, "auth-internal", "[\"kv\", \"ldap:corp\"]");
    let out = check(&setup);
    assert!(!out.success(), "check-config accepted it: {out:?}");
    assert!(
        out.stderr
            .contains("vhosts[0].auth.grants[1]: no [[ldap]] entry is named \"corp\""),
        "{:?}",
        out.stderr
    );
    let setup = Setup::new(TestConfig::localhost_internal());
    auth_grants(&setup, "auth-internal", "[\"kv\", \"http:crm\"]");
    let out = check(&setup);
    assert!(!out.success(), "check-config accepted it: {out:?}");
    assert!(
        out.stderr
            .contains("vhosts[0].auth.grants[1]: capability \"http:crm\" is not available yet"),
        "{:?}",
        out.stderr
    );
}

#[tokio::test]
async fn auth_plugins_get_only_their_grants() {
    // auth-internal keeps its accounts in kv: without the grant it does not load.
    let setup = Setup::new(TestConfig::localhost_internal());
    auth_grants(&setup, "auth-internal", "[]");
    let expected = "vhosts[0].auth.grants (localhost): plugin auth-internal: imports \
                    lilt:plugin/kv, which is not granted (add \"kv\" to grants)";
    let out = check(&setup);
    assert!(!out.success(), "check-config accepted it: {out:?}");
    assert!(out.stderr.contains(expected), "{:?}", out.stderr);
    let out = serve(&setup);
    assert!(!out.success(), "serve started: {out:?}");
    assert!(out.stderr.contains(expected), "{:?}", out.stderr);

    // auth-anonymous imports nothing grantable: it runs with no grants at all.
    let setup = Setup::new(TestConfig::localhost_anonymous());
    auth_grants(&setup, "auth-anonymous", "[]");
    let out = check(&setup);
    assert!(out.success(), "check-config refused it: {out:?}");
    let server = setup.start();
    let mut a = Peer::anonymous(&server, "localhost").await;
    a.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    a.expect("<iq type='result' id='p1' from='localhost' to='{me}'/>")
        .await;
}
