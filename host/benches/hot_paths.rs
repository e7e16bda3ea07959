//! Micro-benchmarks of the hot paths (criterion): XML splitting per stanza, routing one
//! message, MUC fan-out per delivery (serialization included), one hook call and one auth
//! plugin call through the real WebAssembly components, and a TLS handshake in memory.
//!
//! Run with `cargo bench -p lilt` (the plugin calls need `scripts/setup.sh` to have built the
//! plugins). Figures are for comparing changes on one machine, not assertions.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use lilt::config::PluginConfig;
use lilt::hooks::NoExtensions;
use lilt::muc::{MucConfig, MucService, Routed};
use lilt::plugin::{PluginEngine, PluginLimits, VhostHooks};
use lilt::router::{Router, ServerInfo};
use lilt::stanza::{Jid, Kind, Outbound, Stanza};
use lilt::xml::{Element, Event, Limits, StreamParser, ns};

fn plugin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/release")
}

fn message(from: &str, to: &str, kind: &str) -> Element {
    let mut body = Element::new("body", ns::CLIENT);
    body.append_text("a message of ordinary length for a meeting chat, with a little more text");
    Element::builder("message", ns::CLIENT)
        .attr("from", from)
        .attr("to", to)
        .attr("type", kind)
        .append(body)
        .build()
}

fn xml_split(c: &mut Criterion) {
    const N: usize = 1000;
    let header = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='x' version='1.0'>";
    let mut stanzas = Vec::new();
    for i in 0..N {
        stanzas.extend_from_slice(
            format!("<message to='room@conference.x' type='groupchat' id='m{i}'><body>hello number {i} from the benchmark</body><x xmlns='urn:example'><y a='1'/></x></message>")
                .as_bytes(),
        );
    }
    let mut g = c.benchmark_group("xml");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("split 1000 stanzas (per stanza: divide)", |b| {
        b.iter_batched(
            || {
                let mut p = StreamParser::new(Limits::default());
                p.feed(header).expect("header");
                assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
                p
            },
            |mut p| {
                for chunk in stanzas.chunks(4096) {
                    p.feed(chunk).expect("feed");
                    while let Ok(Some(_)) = p.next_event() {}
                }
                p
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn routing(c: &mut Criterion) {
    let mut router = Router::new(
        ServerInfo {
            name: "Lilt".into(),
            version: "bench".into(),
            components: Vec::new(),
        },
        ["x".to_owned()],
        Arc::new(lilt::runtime::entropy::OsEntropy),
    );
    let a = Jid::parse("a@x").expect("jid");
    let b = Jid::parse("b@x").expect("jid");
    router.bind(&a, Some("r"), 1, None).expect("bind");
    router.bind(&b, Some("r"), 2, None).expect("bind");
    // Parsed as the c2s core parses it where it enters (not timed here): the router reads
    // the JIDs it carries.
    let msg = Stanza::parse(message("a@x/r", "b@x/r", "chat")).expect("addresses");
    c.bench_function("route one chat message to a full JID", |bench| {
        bench.iter(|| {
            let d = router.route_inbound(msg.clone());
            assert_eq!(d.len(), 1);
            d
        });
    });
}

fn muc_fanout(c: &mut Criterion) {
    const OCCUPANTS: usize = 100;
    let mut muc = MucService::new(
        MucConfig {
            domain: "conference.x".into(),
            vhost: "x".into(),
            lock_new_rooms: false,
            destroy_when_empty: true,
            room_creators: Vec::new(),
            admins: Vec::new(),
            max_occupants: 0,
            focus: None,
            limits: lilt::muc::MucLimits::default(),
            view: Default::default(),
        },
        Arc::new(lilt::runtime::entropy::OsEntropy),
    );
    for i in 0..OCCUPANTS {
        let mut p = Element::builder("presence", ns::CLIENT)
            .attr("from", format!("u{i}@x/r"))
            .attr("to", format!("room@conference.x/n{i}"))
            .build();
        p.append_child(Element::new("x", ns::MUC));
        muc.handle(Stanza::parse(p).expect("addresses"), 0, &NoExtensions);
    }
    let msg =
        Stanza::parse(message("u0@x/r", "room@conference.x", "groupchat")).expect("addresses");
    let mut g = c.benchmark_group("muc");
    g.throughput(Throughput::Elements(OCCUPANTS as u64));
    g.bench_function(
        "groupchat to 100 occupants, serialized per recipient (per delivery: divide)",
        |b| {
            let mut out = Vec::with_capacity(64 * 1024);
            b.iter(|| {
                out.clear();
                for r in muc.handle(msg.clone(), 0, &NoExtensions) {
                    if let Routed::Fanout(shared, to) = r {
                        for jid in to {
                            Outbound::Shared(shared.clone(), jid.to_string().into())
                                .write_to(&mut out, false);
                        }
                    }
                }
                out.len()
            });
        },
    );
    g.finish();
}

fn plugins(c: &mut Criterion) {
    let dir = plugin_dir();
    if !dir.join("test_hooks.wasm").is_file() {
        eprintln!("plugins not built (scripts/setup.sh); skipping the plugin benchmarks");
        return;
    }
    let engine = PluginEngine::new(PluginLimits::default()).expect("engine");
    let hook = engine
        .load_hook_plugin(
            "x",
            None,
            &PluginConfig {
                plugin: "test-hooks".into(),
                path: dir.join("test_hooks.wasm"),
                component: None,
                grants: lilt::config::Grants::HOOKS_DEFAULT,
                settings: serde_json::json!({ "mode": "pass" }),
            },
            lilt::storage::memory(),
        )
        .expect("hook plugin");
    let hooks = VhostHooks::new("x", vec![Arc::new(hook)]);
    let msg = message("u@x/r", "room@conference.x", "groupchat");
    c.bench_function("one subscribed hook call (test-hooks, pass)", |b| {
        b.iter(|| hooks.run_stanza(Kind::Message, &msg));
    });
    let auth = engine
        .load_auth(
            "x",
            "auth-internal",
            &dir.join("auth_internal.wasm"),
            &serde_json::json!({}),
            lilt::storage::memory(),
        )
        .expect("auth plugin");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    c.bench_function(
        "one auth plugin call (auth-internal user-exists, pooled instance, via the blocking pool)",
        |b| {
            b.iter(|| rt.block_on(auth.user_exists("nobody")).expect("call"));
        },
    );
}

fn tls_handshake(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("lilt-bench-tls-{}", std::process::id()));
    let server = lilt::transport::tls::server_config(None, &dir, &["bench.test".to_owned()])
        .expect("server config");
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(dir.join("tls/selfsigned.crt"))
        .expect("cert")
    {
        roots.add(c.expect("pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    c.bench_function("TLS handshake in memory (client + server, TLS 1.3)", |b| {
        b.iter(|| {
            let mut s = rustls::ServerConnection::new(server.clone()).expect("server");
            let name = rustls_pki_types::ServerName::try_from("bench.test").expect("name");
            let mut cl = rustls::ClientConnection::new(client.clone(), name).expect("client");
            let mut buf = Vec::new();
            while cl.is_handshaking() || s.is_handshaking() {
                buf.clear();
                while cl.wants_write() {
                    cl.write_tls(&mut buf).expect("client write");
                }
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    s.read_tls(&mut rd).expect("server read");
                }
                s.process_new_packets().expect("server process");
                buf.clear();
                while s.wants_write() {
                    s.write_tls(&mut buf).expect("server write");
                }
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    cl.read_tls(&mut rd).expect("client read");
                }
                cl.process_new_packets().expect("client process");
            }
        });
    });
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(
    benches,
    xml_split,
    routing,
    muc_fanout,
    plugins,
    tls_handshake
);
criterion_main!(benches);
