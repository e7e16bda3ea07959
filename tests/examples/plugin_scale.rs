//! What plugins cost per tenant, measured on the real binary: start-up time and RSS with N
//! vhosts × 5 plugins (auth-anonymous, speakerstats, conference-duration, branding, test-hooks)
//! with a cold and then a warm artifact cache, against one vhost with the same plugins; and the
//! time from a changed plugin file to the new generation serving, for a build never seen
//! (Cranelift compiles it) and for one seen before (the in-memory and on-disk caches).
//!
//! Usage: plugin_scale [vhosts] [lilt binary]   (defaults: 100, target/release/lilt; at most
//! 1000 vhosts). Uses loopback ports it picks; every wait is bounded; the server is killed at
//! the end. Prints a markdown table.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A config with `n` vhosts, each with the five plugins; test-hooks loads from `hooks_path`.
fn config(dir: &Path, n: usize, port: u16, hooks_path: &Path) -> PathBuf {
    let plugins = root().join("target/wasm32-wasip2/release");
    let mut s = format!(
        "data_dir = {:?}\nplugin_dir = {:?}\nlog_level = \"info\"\n\n[[listeners]]\ntype = \"c2s\"\nbind = \"127.0.0.1:{port}\"\n",
        dir.join("data").display().to_string(),
        plugins.display().to_string()
    );
    for i in 0..n {
        let d = format!("t{i}.example");
        s.push_str(&format!(
            "\n[[vhosts]]\ndomain = \"{d}\"\nallow_unencrypted = true\n[vhosts.auth]\nplugin = \"auth-anonymous\"\n\
             [vhosts.muc]\ndomain = \"conference.{d}\"\n\
             [[vhosts.plugins]]\nplugin = \"speakerstats\"\ncomponent = \"speakerstats.{d}\"\n\
             [[vhosts.plugins]]\nplugin = \"conference-duration\"\ncomponent = \"conferenceduration.{d}\"\n\
             [[vhosts.plugins]]\nplugin = \"branding\"\n\
             [[vhosts.plugins]]\nplugin = \"test-hooks\"\npath = {:?}\nsettings = {{ mode = \"pass\" }}\n",
            hooks_path.display().to_string()
        ));
    }
    let path = dir.join("lilt.toml");
    std::fs::write(&path, s).expect("write config");
    path
}

struct Running {
    child: Child,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the server; the time until its port accepts.
fn start(bin: &Path, config: &Path, port: u16, dir: &Path) -> (Running, Duration) {
    let log = dir.join(format!("server-{port}.log"));
    let out = std::fs::File::create(&log).expect("log");
    let err = out.try_clone().expect("log");
    let t = Instant::now();
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn lilt");
    let mut running = Running { child, log };
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (running, t.elapsed());
        }
        if let Ok(Some(status)) = running.child.try_wait() {
            panic!(
                "lilt exited ({status}): {}",
                std::fs::read_to_string(&running.log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "lilt did not start in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replace the watched file and wait for the swaps of every vhost; the time they took.
fn swap(running: &Running, path: &Path, bytes: &[u8], vhosts: usize) -> Duration {
    let before = std::fs::read_to_string(&running.log)
        .unwrap_or_default()
        .matches("Plugin reloaded.")
        .count();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("write");
    let t = Instant::now();
    std::fs::rename(&tmp, path).expect("rename");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let n = std::fs::read_to_string(&running.log)
            .unwrap_or_default()
            .matches("Plugin reloaded.")
            .count();
        if n >= before + vhosts {
            return t.elapsed();
        }
        assert!(Instant::now() < deadline, "reload did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn patched(original: &[u8], marker: &[u8]) -> Vec<u8> {
    let from = b"test-hooks-build-A";
    let at = original
        .windows(from.len())
        .position(|w| w == from)
        .expect("marker");
    let mut out = original.to_vec();
    out[at..at + marker.len()].copy_from_slice(marker);
    out
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let bin = std::env::args()
        .nth(2)
        .map_or_else(|| root().join("target/release/lilt"), PathBuf::from);
    let original =
        std::fs::read(root().join("target/wasm32-wasip2/release/test_hooks.wasm")).expect("wasm");
    let dir = std::env::temp_dir().join(format!("lilt-plugin-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let hooks = dir.join("hooks.wasm");
    std::fs::write(&hooks, &original).expect("copy");

    let mut rows = Vec::new();
    // One vhost, for the baseline.
    let one = dir.join("one");
    std::fs::create_dir_all(&one).expect("dir");
    let port = free_port();
    let cfg = config(&one, 1, port, &hooks);
    let (r, cold1) = start(&bin, &cfg, port, &one);
    std::thread::sleep(Duration::from_millis(500));
    let rss1 = rss_kib(r.child.id());
    drop(r);
    rows.push(("1 vhost × 5 plugins, cold cache", cold1, rss1));

    let many = dir.join("many");
    std::fs::create_dir_all(&many).expect("dir");
    let port = free_port();
    let cfg = config(&many, n, port, &hooks);
    let (r, cold) = start(&bin, &cfg, port, &many);
    std::thread::sleep(Duration::from_millis(500));
    let rss_cold = rss_kib(r.child.id());
    drop(r);
    rows.push(("N vhosts × 5 plugins, cold cache", cold, rss_cold));
    let port2 = free_port();
    let text = std::fs::read_to_string(&cfg)
        .expect("config")
        .replace(&format!(":{port}\""), &format!(":{port2}\""));
    std::fs::write(&cfg, text).expect("config");
    let (r, warm) = start(&bin, &cfg, port2, &many);
    std::thread::sleep(Duration::from_millis(500));
    let rss_warm = rss_kib(r.child.id());
    rows.push(("N vhosts × 5 plugins, warm cache (restart)", warm, rss_warm));

    // Reload latency: a new build (compiled once, shared by the N vhosts), then the old build
    // again (cached), for test-hooks on every vhost.
    let new_build = swap(&r, &hooks, &patched(&original, b"test-hooks-build-B"), n);
    let old_build = swap(&r, &hooks, &original, n);
    drop(r);

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "| N = {n} | start until listening | RSS after start |");
    let _ = writeln!(out, "|---|---|---|");
    for (what, t, rss) in &rows {
        let _ = writeln!(
            out,
            "| {what} | {:.2} s | {:.1} MiB |",
            t.as_secs_f64(),
            *rss as f64 / 1024.0
        );
    }
    let per_vhost = (rss_warm.saturating_sub(rss1)) as f64 / 1024.0 / (n.max(2) - 1) as f64;
    let _ = writeln!(
        out,
        "\nRSS per additional vhost with 5 plugins (warm): {per_vhost:.2} MiB"
    );
    let _ = writeln!(
        out,
        "Changed file → new generation serving on all {n} vhosts: new build {:.0} ms, \
         a build seen before {:.0} ms (includes the watcher's 500 ms poll and 500 ms settle)",
        new_build.as_secs_f64() * 1e3,
        old_build.as_secs_f64() * 1e3
    );
    let _ = std::fs::remove_dir_all(&dir);
}
