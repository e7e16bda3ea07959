//! What one subscribed hook costs per stanza: loads the `test-hooks` plugin in `pass` mode (a
//! real WebAssembly component, through the same engine and extension code the server uses)
//! and calls the pre-routing hook for one groupchat message many times. Reports wall and CPU
//! time per call, for the first call (instantiation) and for the steady state.
//!
//! Usage: hook_cost [calls] (default 100000; bounded to 10 000 000).

use std::time::Instant;

use lilt::config::PluginConfig;
use lilt::hooks::Verdict;
use lilt::plugin::{PluginEngine, PluginLimits, VhostHooks};
use lilt::stanza::Kind;
use lilt::xml::{Element, ns};

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn main() -> anyhow::Result<()> {
    let calls: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(100_000), |c| c.parse())?
        .min(10_000_000);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = PluginConfig {
        plugin: "test-hooks".into(),
        path: root.join("target/wasm32-wasip2/release/test_hooks.wasm"),
        component: None,
        grants: lilt::config::Grants::HOOKS_DEFAULT,
        settings: serde_json::json!({ "mode": "pass" }),
    };
    let engine = PluginEngine::new(PluginLimits::default())?;
    let plugin = engine.load_hook_plugin("a.test", None, &config, lilt::storage::memory())?;
    let hooks = VhostHooks::new("a.test", vec![std::sync::Arc::new(plugin)]);
    let mut body = Element::new("body", ns::CLIENT);
    body.append_text("a message of ordinary length for a meeting chat");
    let msg = Element::builder("message", ns::CLIENT)
        .attr("from", "u@a.test/r")
        .attr("to", "room@conference.a.test")
        .attr("type", "groupchat")
        .append(body)
        .build();
    let first = Instant::now();
    anyhow::ensure!(hooks.run_stanza(Kind::Message, &msg).0 == Verdict::Pass);
    let first = first.elapsed();
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    for _ in 0..calls {
        if hooks.run_stanza(Kind::Message, &msg).0 != Verdict::Pass {
            anyhow::bail!("the hook did not pass");
        }
    }
    let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    println!(
        "one subscribed hook: first call after load {:.0} µs; then {calls} calls: {:.2} µs wall, {:.2} µs CPU per call",
        first.as_secs_f64() * 1e6,
        wall * 1e6 / calls as f64,
        cpu * 1e6 / calls as f64
    );
    Ok(())
}
