//! `lilt check-config FILE`: exit 0 and an "ok" line for a good file; non-zero with an error
//! naming the offending key path for each kind of bad file.
//!
//! Shell (runs the real binary). Spec: the CLI contract in docs/architecture.md and
//! host/src/config/mod.rs ("every error names the key path it is about"; unknown keys are
//! refused).
//! Invariants checked: check-config loads the plugins (an unknown plugin is an error), and
//! the error text contains the key path, e.g. `vhosts[0].auth.plugin`.
//! Tests: this file.

use crate::harness::{Setup, TestConfig, Vhost, run_cli};

fn check(path: &std::path::Path) -> crate::harness::CliOutput {
    run_cli(&["check-config", &path.display().to_string()], "")
}

#[test]
fn good_config_is_ok() {
    let setup = Setup::new(
        TestConfig::localhost_internal().component("comp.localhost", "s3cret-long-enough"),
    );
    let out = check(&setup.config_path);
    assert!(out.success(), "check-config refused a good config: {out:?}");
    assert!(
        out.stdout.to_lowercase().contains("ok"),
        "no ok line: {out:?}"
    );
}

#[test]
fn bad_configs_name_the_key() {
    let setup = Setup::new(TestConfig::new(vec![Vhost::internal("localhost")]));
    let good = std::fs::read_to_string(&setup.config_path).expect("read config");
    let port_line = good
        .lines()
        .find(|l| l.starts_with("bind = "))
        .expect("a bind line")
        .to_owned();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown plugin",
            good.replace(
                "plugin = \"auth-internal\"",
                "plugin = \"auth-nonexistent\"",
            ),
            "vhosts[0].auth.plugin",
        ),
        (
            "unknown listener type",
            good.replacen("type = \"c2s\"", "type = \"carrier-pigeon\"", 1),
            "listeners[0].type",
        ),
        (
            "bad bind address",
            good.replacen(&port_line, "bind = \"nowhere\"", 1),
            "listeners[0].bind",
        ),
        (
            "bad vhost domain",
            good.replace("domain = \"localhost\"", "domain = \"not a domain!\""),
            "vhosts[0].domain",
        ),
        (
            "duplicate vhost",
            format!(
                "{good}\n[[vhosts]]\ndomain = \"localhost\"\n[vhosts.auth]\nplugin = \"auth-anonymous\"\n"
            ),
            "vhosts[1].domain",
        ),
        (
            "zero limit",
            good.replace("max_stanza_bytes = 262144", "max_stanza_bytes = 0"),
            "max_stanza_bytes",
        ),
        ("unknown key", format!("bogus_key = 1\n{good}"), "bogus_key"),
    ];
    let mut failures = Vec::new();
    for (i, (name, text, key)) in cases.iter().enumerate() {
        assert_ne!(text, &good, "case {name} did not change the config");
        let path = setup.dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text).expect("write bad config");
        let out = check(&path);
        if out.success() {
            failures.push(format!("{name}: accepted (stdout {:?})", out.stdout));
        } else if !out.stderr.contains(key) {
            failures.push(format!(
                "{name}: error does not name {key}: {:?}",
                out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
