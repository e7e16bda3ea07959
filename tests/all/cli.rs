//! `lilt user add|del|passwd USER@VHOST --config FILE`: exit codes, and the effect of each
//! command on who can log in (checked over SASL against a real server).
//!
//! Shell (runs the real binary). Spec: the CLI contract in docs/architecture.md (password as
//! one line on stdin when stdin is not a terminal; `add` of an existing account and `del` of
//! a missing one fail; accounts belong to one vhost).
//! Invariants checked: a deleted account cannot log in; after `passwd` only the new password
//! works; every change reaches the auth plugin's storage.
//! `lilt plugin new` in Rust, JavaScript and Python: what it writes, and (JS, Python) that it
//! passes its native tests, builds with the pinned toolchains and answers on a real server.
//! Tests: this file.

use crate::client::{is_not_authorized, sasl_only_bounded};
use crate::harness::{Server, Setup, TestConfig};

async fn can_log_in(server: &Server, account: &str, password: &str) -> bool {
    match sasl_only_bounded(
        server.ports().c2s_addr(),
        account,
        password,
        &["SCRAM-SHA-1"],
    )
    .await
    {
        Ok(_) => true,
        Err(e) if is_not_authorized(&e) => false,
        Err(e) => panic!("login of {account} failed oddly: {e:?}"),
    }
}

#[tokio::test]
async fn add_passwd_del_with_restarts() {
    let setup = Setup::new(TestConfig::localhost_internal());
    let out = setup.user("add", "carol@localhost", "first-pass");
    assert!(out.success(), "add: {out:?}");
    let out = setup.user("add", "carol@localhost", "other");
    assert!(
        !out.success(),
        "adding an existing account must fail: {out:?}"
    );
    let out = setup.user("add", "dave@nowhere.example", "x");
    assert!(
        !out.success(),
        "adding to a vhost that is not configured must fail: {out:?}"
    );
    let out = setup.user("passwd", "nobody@localhost", "x");
    assert!(
        !out.success(),
        "passwd of a missing account must fail: {out:?}"
    );

    let server = setup.start();
    assert!(can_log_in(&server, "carol@localhost", "first-pass").await);
    assert!(
        !can_log_in(&server, "carol@localhost", "other").await,
        "the failed second add changed the password"
    );
    let setup = server.stop();

    let out = setup.user("passwd", "carol@localhost", "second-pass");
    assert!(out.success(), "passwd: {out:?}");
    let server = setup.start();
    assert!(can_log_in(&server, "carol@localhost", "second-pass").await);
    assert!(
        !can_log_in(&server, "carol@localhost", "first-pass").await,
        "old password still works"
    );
    let setup = server.stop();

    let out = setup.user("del", "carol@localhost", "");
    assert!(out.success(), "del: {out:?}");
    let out = setup.user("del", "carol@localhost", "");
    assert!(
        !out.success(),
        "deleting a missing account must fail: {out:?}"
    );
    let server = setup.start();
    assert!(
        !can_log_in(&server, "carol@localhost", "second-pass").await,
        "deleted account still logs in"
    );
}

#[tokio::test]
async fn changes_reach_a_running_server() {
    let server = Setup::new(TestConfig::localhost_internal()).start();
    let setup = server.setup_ref();
    let out = setup.user("add", "erin@localhost", "live-1");
    assert!(out.success(), "add while running: {out:?}");
    assert!(
        can_log_in(&server, "erin@localhost", "live-1").await,
        "account added while running cannot log in"
    );
    let out = setup.user("passwd", "erin@localhost", "live-2");
    assert!(out.success(), "passwd while running: {out:?}");
    assert!(can_log_in(&server, "erin@localhost", "live-2").await);
    assert!(
        !can_log_in(&server, "erin@localhost", "live-1").await,
        "old password still works on the running server"
    );
    let out = setup.user("del", "erin@localhost", "");
    assert!(out.success(), "del while running: {out:?}");
    assert!(
        !can_log_in(&server, "erin@localhost", "live-2").await,
        "deleted account still logs in"
    );
}

/// `lilt check-config lilt.toml` run from the config's folder, with a relative `data_dir`.
#[test]
fn a_relative_config_path_and_data_dir_work() {
    // `lilt check-config lilt.toml` from the config's folder: every path in it is relative.
    let tmp = crate::harness::TempDir::new();
    let text = format!(
        "data_dir = \"data\"\nplugin_dir = {:?}\n[[listeners]]\ntype = \"c2s\"\nbind = \"127.0.0.1:5222\"\n\
         [[vhosts]]\ndomain = \"localhost\"\nauth = {{ plugin = \"auth-anonymous\" }}\n\
         [[vhosts.plugins]]\nplugin = \"branding\"\n",
        crate::harness::plugin_dir()
    );
    std::fs::write(tmp.path().join("lilt.toml"), text).expect("write");
    let out = crate::harness::run_cli_in(Some(tmp.path()), &["check-config", "lilt.toml"], "");
    assert!(out.success(), "{out:?}");
    assert!(
        tmp.path().join("data/plugin-cache").is_dir(),
        "no artifact cache"
    );
}

/// Every configuration in `examples/` passes `lilt check-config`, which loads and configures
/// each plugin it names (run with the data folder and plugin folder pointed at the test's).
#[test]
fn example_configs_check() {
    let dir = crate::harness::workspace_root().join("examples");
    let tmp = crate::harness::TempDir::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let text = text.replace(
            "data_dir = \"../lilt-data\"",
            &format!(
                "data_dir = {:?}\nplugin_dir = {:?}",
                tmp.path().join("data"),
                crate::harness::plugin_dir()
            ),
        );
        let copy = tmp.path().join(path.file_name().expect("name"));
        std::fs::write(&copy, text).expect("write");
        let out = crate::harness::run_cli(&["check-config", copy.to_str().expect("utf-8")], "");
        assert!(out.success(), "{}: {out:?}", path.display());
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} example configs found");
}

/// `lilt plugin new NAME --world W --dir D` writes a crate depending on this checkout's SDK,
/// with the trait impl and export macro of its world; it refuses names that are not
/// lowercase kebab-case and an existing directory. (Building the crate is left to
/// scripts/test.sh, which builds examples/brand-plugin, the same shape, for wasm32-wasip2.)
#[test]
fn plugin_new_scaffolds_a_crate() {
    let tmp = crate::harness::TempDir::new();
    let dir = tmp.path().to_str().expect("utf-8");
    for (name, world, export) in [
        ("room-greeter", "hooks", "export_hooks!(RoomGreeter)"),
        (
            "echo-service",
            "component",
            "export_component!(EchoService)",
        ),
        ("seat-auth", "auth", "export_auth!(SeatAuth)"),
    ] {
        let out =
            crate::harness::run_cli(&["plugin", "new", name, "--world", world, "--dir", dir], "");
        assert!(out.success(), "{name}: {out:?}");
        let root = tmp.path().join(name);
        assert!(out.stdout.contains(&root.display().to_string()), "{out:?}");
        let read = |f: &str| std::fs::read_to_string(root.join(f)).expect(f);
        let cargo = read("Cargo.toml");
        assert!(cargo.contains(&format!("name = \"{name}\"")), "{cargo}");
        let sdk = crate::harness::workspace_root().join("plugins/sdk");
        let sdk = sdk.canonicalize().expect("sdk");
        assert!(
            cargo.contains(&format!(
                "lilt-plugin-sdk = {{ path = \"{}\" }}",
                sdk.display()
            )),
            "{cargo}"
        );
        assert!(cargo.contains("[workspace]"), "{cargo}");
        let lib = read("src/lib.rs");
        assert!(
            lib.contains(&format!("lilt_plugin_sdk::{export};")),
            "{lib}"
        );
        assert!(!lib.contains("generate!"), "{lib}");
        assert!(read("src/policy.rs").contains("#[test]"));
        assert!(read("README.md").contains(&format!("lilt:plugin/{world}")));
    }

    let again = crate::harness::run_cli(&["plugin", "new", "room-greeter", "--dir", dir], "");
    assert!(!again.success(), "{again:?}");
    assert!(again.stderr.contains("exists already"), "{again:?}");
    for bad in ["RoomGreeter", "room_greeter", "x-", "a--b"] {
        let out = crate::harness::run_cli(&["plugin", "new", bad, "--dir", dir], "");
        assert!(!out.success(), "{bad}: {out:?}");
        assert!(
            out.stderr.contains("lowercase kebab-case"),
            "{bad}: {out:?}"
        );
    }
    let out = crate::harness::run_cli(&["plugin", "new", "x", "--world", "sfu", "--dir", dir], "");
    assert!(!out.success(), "{out:?}");
}

/// Run `program args` in `dir` (bounded only by the test's own timeout); its output.
fn run_in(dir: &std::path::Path, program: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?} in {}: {e}", dir.display()))
}

/// `lilt plugin new NAME --lang js|python` writes a hook plugin whose native tests pass under
/// plain Node and CPython, whose build.sh builds a component with the pinned toolchains
/// (scripts/plugin-langs-deps.sh, run by scripts/test.sh), and which a server loads with
/// `grants = ["stanzas"]` and runs: `hello` sent to the vhost is answered with the greeting.
#[tokio::test]
async fn plugin_new_js_and_python_test_build_and_answer() {
    let tmp = crate::harness::TempDir::new();
    let dir = tmp.path().to_str().expect("utf-8");
    let mut vhosts = Vec::new();
    for (lang, name, native) in [
        ("js", "js-greeter", ["node", "--test", "test/"].as_slice()),
        (
            "python",
            "py-greeter",
            [
                "python3", "-m", "unittest", "discover", "-s", "tests", "-t", ".",
            ]
            .as_slice(),
        ),
    ] {
        let out =
            crate::harness::run_cli(&["plugin", "new", name, "--lang", lang, "--dir", dir], "");
        assert!(out.success(), "{lang}: {out:?}");
        let root = tmp.path().join(name);
        let tests = run_in(&root, native[0], &native[1..]);
        assert!(
            tests.status.success(),
            "{lang} native tests: {}{}",
            String::from_utf8_lossy(&tests.stdout),
            String::from_utf8_lossy(&tests.stderr)
        );
        let build = run_in(&root, "bash", &["build.sh"]);
        assert!(
            build.status.success(),
            "{lang} build (scripts/plugin-langs-deps.sh installs the toolchains): {}{}",
            String::from_utf8_lossy(&build.stdout),
            String::from_utf8_lossy(&build.stderr)
        );
        let wasm = root.join(format!("build/{}.wasm", name.replace('-', "_")));
        assert!(wasm.is_file(), "{lang}: no {}", wasm.display());
        vhosts.push(
            crate::harness::Vhost::anonymous(&format!("{lang}.localhost")).with(&format!(
                "[[vhosts.plugins]]\nplugin = {name:?}\npath = {:?}\ngrants = [\"stanzas\"]\n\
                 settings = {{ greeting = \"Hi from {lang}!\" }}",
                wasm.display().to_string()
            )),
        );
    }
    let out = crate::harness::run_cli(
        &[
            "plugin", "new", "x", "--lang", "js", "--world", "auth", "--dir", dir,
        ],
        "",
    );
    assert!(
        !out.success() && out.stderr.contains("hook plugins only"),
        "{out:?}"
    );
    let out = crate::harness::run_cli(&["plugin", "new", "x", "--lang", "go", "--dir", dir], "");
    assert!(!out.success(), "{out:?}");

    let server = Setup::new(TestConfig::new(vhosts)).start();
    for lang in ["js", "python"] {
        let domain = format!("{lang}.localhost");
        let mut p = crate::muc::Peer::anonymous(&server, &domain).await;
        p.send(&format!(
            "<message to='{domain}' type='chat'><body>hello</body></message>"
        ))
        .await;
        p.expect(&format!(
            "<message type='chat' to='{{me}}' from='{domain}'><body>Hi from {lang}!</body></message>"
        ))
        .await;
        p.send(&format!(
            "<message to='{domain}' type='chat'><body>bye</body></message>"
        ))
        .await;
        p.expect_silence().await;
    }
}
