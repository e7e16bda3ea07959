//! The hostile-client soak against a running `lilt` (tracker issue 14): normal clients chat in
//! rooms while hostile clients push every limit (scenario in `soak/mod.rs`); the server's RSS is
//! sampled every second. Prints a table, then one JSON line; exits 1 when a normal message was
//! lost or a hostile client did not get its documented error, 2 when RSS passed `--rss-bound-mib`.
//! scripts/soak.sh builds a release server, starts it and runs this.
//!
//! Usage: soak --c2s HOST:PORT --http HOST:PORT --pid PID [options]
//!   --domain D --muc M                   anonymous vhost and its MUC (anon.test, conference.anon.test)
//!   --seconds S (60) --max-seconds X (120; S is capped by it)
//!   --normal N (40) --rooms R (8) --rate MSGS_PER_CLIENT_PER_S (2)
//!   --room-joins J (1000) --flood F (300) --flood-rounds K (6) --flood-from ADDR (127.0.0.2)
//!   --bosh-paused B (4) --max-size-messages X (60) --reps N (6) --rss-bound-mib MIB (512)
//!   the server's limits (defaults: the documented defaults):
//!   --max-stanza-bytes --max-depth --max-attributes --max-elements --max-rooms-per-session
//!   --max-presence-bytes --max-unauthenticated-per-address --bosh-max-buffered-bytes
//!   --session-queue-bytes

#[path = "soak/mod.rs"]
mod soak;

use std::collections::HashMap;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut m = HashMap::new();
    while let Some(k) = args.next() {
        let key = k
            .strip_prefix("--")
            .ok_or_else(|| anyhow::anyhow!("expected --option, got {k:?}"))?
            .to_owned();
        let v = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("--{key} needs a value"))?;
        m.insert(key, v);
    }
    let s = |k: &str, d: &str| m.get(k).cloned().unwrap_or_else(|| d.to_owned());
    let n = |k: &str, d: usize| -> anyhow::Result<usize> {
        m.get(k).map_or(Ok(d), |v| {
            v.parse()
                .map_err(|_| anyhow::anyhow!("--{k}: {v:?} is not a number"))
        })
    };
    let req = |k: &str| {
        m.get(k)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("--{k} is required"))
    };
    let max_seconds = n("max-seconds", 120)? as f64;
    let seconds: f64 = s("seconds", "60").parse()?;
    anyhow::ensure!(seconds > 0.0, "--seconds must be positive");
    let rate: f64 = s("rate", "2").parse()?;
    anyhow::ensure!(rate > 0.0 && rate <= 100.0, "0 < --rate <= 100");
    let params = soak::Params {
        c2s: req("c2s")?,
        http: req("http")?,
        pid: req("pid")?.parse()?,
        domain: s("domain", "anon.test"),
        muc: s("muc", "conference.anon.test"),
        seconds: seconds.min(max_seconds),
        normal: n("normal", 40)?,
        rooms: n("rooms", 8)?.max(1),
        rate,
        room_joins: n("room-joins", 1000)?,
        flood: n("flood", 300)?,
        flood_rounds: n("flood-rounds", 6)?,
        flood_from: s("flood-from", "127.0.0.2"),
        bosh_paused: n("bosh-paused", 4)?,
        max_size_messages: n("max-size-messages", 60)?,
        reps: n("reps", 6)?,
        max_stanza_bytes: n("max-stanza-bytes", 262_144)?,
        max_depth: n("max-depth", 64)?,
        max_attributes: n("max-attributes", 64)?,
        max_elements: n("max-elements", 4096)?,
        max_rooms_per_session: n("max-rooms-per-session", 32)?,
        max_presence_bytes: n("max-presence-bytes", 16_384)?,
        max_unauthenticated_per_address: n("max-unauthenticated-per-address", 32)?,
        bosh_max_buffered_bytes: n("bosh-max-buffered-bytes", 1 << 20)?,
        session_queue_bytes: n("session-queue-bytes", 4 << 20)?,
    };
    let bound_kib = n("rss-bound-mib", 512)? as u64 * 1024;
    // Set-up, the run, the drain and the BOSH resumption are each bounded; this bounds the sum.
    let hard = Duration::from_secs_f64(params.seconds + 240.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let out = rt.block_on(async {
        tokio::time::timeout(hard, soak::run(params))
            .await
            .map_err(|_| anyhow::anyhow!("the soak exceeded {hard:?}"))?
    })?;
    print!("{}", out.table());
    println!(
        "RSS bound {} MiB: {}",
        bound_kib / 1024,
        if out.rss_max_kib < bound_kib {
            "held"
        } else {
            "EXCEEDED"
        }
    );
    println!("{}", serde_json::to_string(&out)?);
    if !out.passed() {
        std::process::exit(1);
    }
    if out.rss_max_kib >= bound_kib {
        std::process::exit(2);
    }
    Ok(())
}
