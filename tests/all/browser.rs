//! Running the Node browser drivers of tests/browser (meet.mjs, meeting-page.mjs): the
//! prerequisites check, a bounded run of one script, and its JSON report.
//!
//! Shell (processes: node, which starts headless Chromium). Invariants: every run is bounded
//! (the script by its own `--timeout`, and killed here `NODE_GRACE` after that); a missing
//! Chromium or npm install fails with a message naming scripts/browser-deps.sh.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{TempDir, workspace_root};

/// How much longer than its own `--timeout` a script may take (browser start and close,
/// reporting) before it is killed.
const NODE_GRACE: Duration = Duration::from_secs(45);

/// tests/browser.
pub(crate) fn browser_dir() -> PathBuf {
    workspace_root().join("tests/browser")
}

/// Panics with how to install them when Chromium, the npm packages or the lib-jitsi-meet
/// bundle are missing.
pub(crate) fn require_browser_deps() {
    let dir = browser_dir();
    for (path, what) in [
        (PathBuf::from("/usr/bin/chromium"), "Chromium"),
        (
            dir.join("node_modules/playwright-core"),
            "playwright-core (tests/browser/node_modules)",
        ),
        (
            dir.join("vendor/lib-jitsi-meet.min.js"),
            "the lib-jitsi-meet bundle (tests/browser/vendor)",
        ),
    ] {
        assert!(
            path.exists(),
            "{what} is missing at {}; run `bash scripts/browser-deps.sh` (scripts/test.sh does)",
            path.display()
        );
    }
}

/// One finished run of a driver script.
pub(crate) struct NodeRun {
    /// Its exit code (`None` when killed).
    pub(crate) code: Option<i32>,
    /// The last JSON object it printed (`Null` when it printed none).
    pub(crate) report: Value,
    /// Its stderr: the pages' consoles.
    pub(crate) log: String,
    /// Holds browsers.log; kept on a failed test.
    pub(crate) dir: TempDir,
}

/// Run `node SCRIPT ARGS` in tests/browser, killing it `NODE_GRACE` after `timeout_s`.
pub(crate) fn run_node(script: &str, args: &[&str], timeout_s: u64) -> NodeRun {
    require_browser_deps();
    let dir = TempDir::new();
    let log_path = dir.path().join("browsers.log");
    let log_file = std::fs::File::create(&log_path).expect("create browsers.log");
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(browser_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .expect("spawn node (install Node.js; scripts/test.sh does)");
    let mut out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(timeout_s) + NODE_GRACE;
    let code = loop {
        match child.try_wait().expect("wait for node") {
            Some(status) => break status.code(),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let stdout = reader.join().unwrap_or_default();
    let report = stdout
        .lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(Value::is_object)
        })
        .unwrap_or(Value::Null);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    eprintln!("browser logs: {}", log_path.display());
    NodeRun {
        code,
        report,
        log,
        dir,
    }
}
