//! Server assembly: loads TLS and every vhost's auth plugin, starts the router task and one
//! accept loop per listener, and shuts everything down on a signal.
//!
//! Shell (tokio). Invariants: a config that `check` accepts is one `start` can run (both call
//! `load_vhosts`); a connection beyond `limits.max_connections` is told `resource-constraint`
//! and closed without touching any other session; shutdown tells every stream
//! `system-shutdown`. Tests: tests/all/ run the real binary.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_rustls::TlsAcceptor;

use super::bridge::Bridge;
use super::entropy::OsEntropy;
use super::http;
use super::link::BoshRegistry;
use super::plugin_worker::Workers;
use super::reload::PluginRegistry;
use super::router_task;
use super::{component_task, session_task};
use crate::config::{Config, ListenerKind};
use crate::metrics::{Metrics, PluginStats};
use crate::plugin::{AuthPlugin, HookPlugin, PluginEngine, PluginError, PluginSet, VhostHooks};
use crate::router::{Router, ServerInfo, Shard};
use crate::sasl::Mechanism;
use crate::stream::c2s::{C2sConfig, VhostPolicy};
use crate::{storage, transport, xml};

/// Everything a connection task needs, shared read-only.
pub struct Ctx {
    /// The validated configuration.
    pub config: Config,
    /// The plugins each vhost runs now (auth asked by sessions; hooks run by the vhosts'
    /// plugin workers, here for stats and reloads).
    pub plugins: Arc<PluginRegistry>,
    /// c2s settings for plain listeners (STARTTLS offered); vhost policies are filled in by
    /// `c2s`.
    c2s_plain: C2sConfig,
    /// c2s settings for direct-TLS listeners, WebSocket and BOSH sessions (already
    /// encrypted or behind the HTTP listener: no STARTTLS).
    c2s_encrypted: C2sConfig,
    /// The vhosts a new session may log in to, with their mechanisms (swapped by a
    /// configuration reload; sessions keep the policies they started with).
    policies: std::sync::RwLock<Arc<HashMap<String, VhostPolicy>>>,
    /// Counters for `/metrics` and `/stats`.
    pub metrics: Arc<Metrics>,
    /// Live BOSH sessions by sid.
    pub bosh: Arc<BoshRegistry>,
    /// The connection cap shared by every listener and HTTP session.
    pub admission: Arc<super::admission::Admission>,
    /// Set once shutdown began.
    stopping: AtomicBool,
    /// Component secrets by domain.
    pub component_secrets: Arc<HashMap<String, String>>,
    /// TLS acceptor.
    pub tls: TlsAcceptor,
    /// Router commands.
    pub router: router_task::Routers,
    /// Shutdown signal.
    pub shutdown: broadcast::Sender<()>,
    /// Parser limits.
    pub xml_limits: xml::Limits,
    /// The token `lilt plugin …` presents to the admin endpoint (also in `data_dir/admin.token`).
    pub admin_token: String,
    /// The SFU endpoints' bridge channels (colibri WebSocket).
    pub channels: Arc<super::colibri::Channels>,
    /// The SFU, when a vhost has a focus (for its statistics).
    pub sfu: Option<lilt_sfu::shell::SfuHandle>,
}

impl Ctx {
    /// The c2s settings for a new session: STARTTLS offered or not, and the vhost policies in
    /// force now.
    pub fn c2s(&self, starttls: bool) -> C2sConfig {
        let mut c = if starttls {
            self.c2s_plain.clone()
        } else {
            self.c2s_encrypted.clone()
        };
        c.vhosts = self.policies();
        c
    }

    /// The vhost policies in force now.
    pub fn policies(&self) -> Arc<HashMap<String, VhostPolicy>> {
        self.policies
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replace the vhost policies (a configuration reload).
    pub fn set_policies(&self, p: HashMap<String, VhostPolicy>) {
        *self
            .policies
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(p);
    }

    /// True once shutdown began.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Call counts and times of every plugin generation serving now, for `/metrics` and
    /// `/stats`.
    pub fn plugin_stats(&self) -> PluginStats {
        self.plugins.stats()
    }
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field(
                "vhosts",
                &self
                    .config
                    .vhosts
                    .iter()
                    .map(|v| &v.domain)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Every plugin of every vhost, loaded.
#[derive(Debug)]
pub struct Loaded {
    /// The engine they run on.
    pub engine: PluginEngine,
    /// Auth plugin per vhost domain.
    pub auth: HashMap<String, AuthPlugin>,
    /// Hook and component plugins with their vhost, in configuration order.
    pub hooks: Vec<(String, Arc<HookPlugin>)>,
    /// The store behind their `kv`.
    pub kv: Arc<dyn storage::KvStore>,
}

/// The config key an operator has to change for a plugin that failed to load.
fn error_key(e: &PluginError) -> &'static str {
    match e {
        PluginError::Config { .. } => "settings",
        PluginError::NotGranted { .. } => "grants",
        _ => "plugin",
    }
}

/// Load every vhost's plugins (what `check-config` and `serve` share).
///
/// # Errors
/// When a plugin cannot be loaded or refuses its settings; the message names the key.
pub fn load_vhosts(config: &Config) -> anyhow::Result<Loaded> {
    let engine = PluginEngine::with_artifact_cache(
        config.plugin_limits.clone(),
        &config.data_dir.join("plugin-cache"),
    )
    .context("starting the plugin engine")?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("data_dir: cannot create {}", config.data_dir.display()))?;
    let kv = match &config.storage {
        crate::config::Storage::Sqlite => {
            let db = config.data_dir.join("lilt.sqlite3");
            storage::open_sqlite(&db)
                .with_context(|| format!("data_dir: cannot open {}", db.display()))?
        }
        // The URL holds no password (config validation refuses one there).
        crate::config::Storage::Postgres(pg) => storage::open_postgres(pg)
            .with_context(|| format!("storage.url: cannot open {}", pg.url))?,
    };
    let mut auth = HashMap::new();
    for (i, vhost) in config.vhosts.iter().enumerate() {
        let plugin = engine
            .load_auth_plugin(&vhost.domain, &vhost.auth, kv.clone())
            .map_err(|e| {
                anyhow::anyhow!("vhosts[{i}].auth.{} ({}): {e}", error_key(&e), vhost.domain)
            })?;
        tracing::info!(target: "audit", event = "plugin_loaded", vhost = %vhost.domain, plugin = %vhost.auth.plugin, world = "auth");
        auth.insert(vhost.domain.clone(), plugin);
    }
    let mut hooks = Vec::new();
    for (i, vhost) in config.vhosts.iter().enumerate() {
        let muc = vhost.muc.as_ref().map(|m| m.domain.as_str());
        for (j, p) in vhost.plugins.iter().enumerate() {
            let plugin = engine
                .load_hook_plugin(&vhost.domain, muc, p, kv.clone())
                .map_err(|e| {
                    let key = error_key(&e);
                    anyhow::anyhow!("vhosts[{i}].plugins[{j}].{key} ({}): {e}", vhost.domain)
                })?;
            tracing::info!(target: "audit", event = "plugin_loaded", vhost = %vhost.domain, plugin = %p.plugin, world = plugin.world());
            hooks.push((vhost.domain.clone(), Arc::new(plugin)));
        }
    }
    Ok(Loaded {
        engine,
        auth,
        hooks,
        kv,
    })
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    ctx: Arc<Ctx>,
    _engine: PluginEngine,
    tasks: Vec<(String, tokio::task::JoinHandle<()>)>,
    /// Bound addresses, in listener order.
    pub addrs: Vec<SocketAddr>,
}

impl Server {
    /// Load plugins, bind listeners, start accepting.
    ///
    /// # Errors
    /// When a plugin, the TLS identity or a listener cannot be set up.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let Loaded {
            engine,
            auth,
            hooks,
            kv,
        } = load_vhosts(&config)?;
        let mut domains: Vec<String> = config.vhosts.iter().map(|v| v.domain.clone()).collect();
        domains.extend(config.components.iter().map(|c| c.domain.clone()));
        let tls = transport::tls::server_config(config.tls.as_ref(), &config.data_dir, &domains)
            .context("tls")?;
        let xml_limits = xml::Limits {
            max_stanza_bytes: config.limits.max_stanza_bytes,
            max_depth: config.limits.max_depth,
            max_attrs: config.limits.max_attributes,
            max_elements: config.limits.max_elements,
            ..xml::Limits::default()
        };
        let policies: HashMap<String, VhostPolicy> = config
            .vhosts
            .iter()
            .map(|v| (v.domain.clone(), vhost_policy(v, auth.get(&v.domain))))
            .collect();
        let c2s_plain = C2sConfig {
            vhosts: Arc::new(HashMap::new()),
            starttls_available: true,
            sm_enabled: config.stream_management.enabled,
            sm_resume_timeout: config.stream_management.resume_timeout,
            sm_max_unacked: config.stream_management.max_unacked_stanzas,
            sm_max_unacked_bytes: config.stream_management.max_unacked_bytes,
            unauthenticated_timeout: config.limits.unauthenticated_timeout,
            xml_limits: xml_limits.clone(),
            entropy: Arc::new(OsEntropy),
            sasl_secret: crate::sasl::SaslSecret::new(
                http::admin::secret_file(&config.data_dir, "sasl.secret")?.into_bytes(),
            ),
        };
        let c2s_encrypted = C2sConfig {
            starttls_available: false,
            ..c2s_plain.clone()
        };
        let metrics = Arc::new(Metrics::new(config.vhosts.iter().map(|v| v.domain.clone())));
        let component_secrets = Arc::new(
            config
                .components
                .iter()
                .map(|c| (c.domain.clone(), c.secret.clone()))
                .collect(),
        );

        let shards = config.limits.shards();
        let mut routers: Vec<Router> = (0..shards)
            .map(|index| {
                let mut router = Router::new(
                    ServerInfo {
                        name: "Lilt".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        components: config.components.iter().map(|c| c.domain.clone()).collect(),
                    },
                    config.vhosts.iter().map(|v| v.domain.clone()),
                    Arc::new(OsEntropy),
                );
                router.set_shard(Shard {
                    index,
                    count: shards,
                });
                for muc in config.vhosts.iter().filter_map(|v| v.muc.clone()) {
                    router.add_muc(muc);
                }
                for focus in config.vhosts.iter().filter_map(|v| v.focus.clone()) {
                    router.add_focus(focus);
                }
                // STUN/TURN for clients (XEP-0215), read at start only.
                router.set_extdisco(config.turn.clone());
                router
            })
            .collect();
        let mut by_vhost: HashMap<&str, Vec<Arc<HookPlugin>>> = HashMap::new();
        for (vhost, plugin) in &hooks {
            by_vhost.entry(vhost).or_default().push(plugin.clone());
        }
        let mut plugin_set = PluginSet::default();
        for (vhost, plugins) in by_vhost {
            plugin_set.insert(VhostHooks::new(vhost, plugins));
        }
        let (router_tx, router_rxs) = router_task::channels(shards);
        let workers = Workers::start(&plugin_set, &router_tx);
        let plugin_set = Arc::new(plugin_set);
        if !plugin_set.is_empty() {
            for router in &mut routers {
                router.set_extensions(plugin_set.clone());
            }
        }
        let plugins = Arc::new(PluginRegistry::new(
            engine.clone(),
            config.clone(),
            kv,
            auth,
            plugin_set,
        ));
        plugins.attach(&workers, router_tx.clone());
        let channels = Arc::new(super::colibri::Channels::default());
        let bridge = Bridge::start(&config, router_tx.clone(), channels.clone()).await?;
        let start = router_task::Start {
            routers,
            accounts: plugins.clone(),
            workers,
            bridge: bridge.as_ref().map(|b| b.requests.clone()),
            metrics: metrics.clone(),
        };
        let mut tasks: Vec<(String, tokio::task::JoinHandle<()>)> =
            router_task::spawn(start, &router_tx, router_rxs)
                .into_iter()
                .enumerate()
                .map(|(i, task)| (format!("router shard {i}"), task))
                .collect();
        tracing::info!(message = "Routing.", shards);
        let sfu = bridge.map(|b| {
            tasks.push(("bridge".to_owned(), b.task));
            tasks.push((
                "SFU".to_owned(),
                tokio::spawn(async move {
                    if let Ok(Err(e)) = b.shell.await {
                        tracing::error!(message = "The SFU's socket failed.", error = %e);
                    }
                }),
            ));
            b.handle
        });
        tasks.push((
            "plugin watcher".to_owned(),
            tokio::spawn(plugins.clone().watch()),
        ));
        let (shutdown, _) = broadcast::channel(1);

        let mut listeners = Vec::new();
        for (i, l) in config.listeners.iter().enumerate() {
            let listener = TcpListener::bind(l.bind)
                .await
                .with_context(|| format!("listeners[{i}].bind: cannot listen on {}", l.bind))?;
            listeners.push((l.kind, listener));
        }
        let admission = super::admission::Admission::new(&config.limits);
        let admin_token = http::admin::server_token(&config.data_dir)?;
        let ctx = Arc::new(Ctx {
            admin_token,
            channels,
            sfu,
            plugins,
            c2s_plain,
            c2s_encrypted,
            policies: std::sync::RwLock::new(Arc::new(policies)),
            metrics,
            bosh: Arc::new(BoshRegistry::default()),
            admission,
            stopping: AtomicBool::new(false),
            component_secrets,
            tls: TlsAcceptor::from(tls),
            router: router_tx,
            shutdown,
            xml_limits,
            config,
        });
        let mut addrs = Vec::new();
        for (kind, listener) in listeners {
            let addr = listener.local_addr()?;
            tracing::info!(message = "Listening.", %addr, kind = ?kind);
            addrs.push(addr);
            tasks.push((
                format!("listener {addr} ({kind:?})"),
                tokio::spawn(accept_loop(ctx.clone(), kind, listener)),
            ));
        }
        Ok(Server {
            ctx,
            _engine: engine,
            tasks,
            addrs,
        })
    }

    /// Wait until a long-lived task (the router, a plugin worker, a listener) ends. None of
    /// them ends while the server runs, so this is a failure: the caller should exit non-zero
    /// so that a process supervisor restarts the server, rather than serve nothing.
    pub async fn failed(&mut self) -> anyhow::Error {
        if self.tasks.is_empty() {
            return std::future::pending().await;
        }
        let (result, i, _) =
            futures_util::future::select_all(self.tasks.iter_mut().map(|(_, t)| t)).await;
        let (name, _) = self.tasks.remove(i);
        match result {
            Ok(()) => anyhow::anyhow!("the {name} task stopped"),
            Err(e) if e.is_panic() => anyhow::anyhow!("the {name} task panicked: {e}"),
            Err(e) => anyhow::anyhow!("the {name} task ended: {e}"),
        }
    }

    /// Read the config file again and apply it (SIGHUP, `lilt reload`).
    ///
    /// # Errors
    /// Why nothing was applied.
    pub async fn reload_config(&self) -> Result<super::reload::ConfigChange, String> {
        super::config_reload::reload_config(&self.ctx).await
    }

    /// Tell every stream to close and stop accepting.
    pub async fn shutdown(self) {
        self.ctx.stopping.store(true, Ordering::Relaxed);
        let _ = self.ctx.shutdown.send(());
        for (name, t) in &self.tasks {
            if !name.starts_with("router") {
                t.abort();
            }
        }
        // Give streams a moment to write `system-shutdown`.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// What a new session on `v` may do: the mechanisms its auth plugin supports (none without
/// one), and whether plain TCP is allowed.
pub fn vhost_policy(v: &crate::config::Vhost, auth: Option<&AuthPlugin>) -> VhostPolicy {
    VhostPolicy {
        mechanisms: auth.map(|a| offered(a.mechanisms())).unwrap_or_default(),
        allow_unencrypted: v.allow_unencrypted,
        identify: auth.is_some_and(AuthPlugin::provides_identity),
    }
}

/// The mechanisms the host offers for a plugin's list, in preference order.
fn offered(plugin: &[Mechanism]) -> Vec<Mechanism> {
    [
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
        Mechanism::Anonymous,
    ]
    .into_iter()
    .filter(|m| plugin.contains(m))
    .collect()
}

async fn accept_loop(ctx: Arc<Ctx>, kind: ListenerKind, listener: TcpListener) {
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(message = "Accept failed.", error = %e);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let admitted = match kind {
            ListenerKind::C2s | ListenerKind::C2sDirectTls => {
                ctx.admission.session(peer.ip()).map(Admitted::Session)
            }
            ListenerKind::Component => ctx.admission.component().map(Admitted::Permit),
            ListenerKind::Http { .. } => ctx.admission.http().map(Admitted::Permit),
        };
        let admitted = match admitted {
            Ok(a) => a,
            Err(refusal) => {
                tracing::warn!(message = "Connection refused.", reason = refusal.reason(), %peer, kind = ?kind);
                tokio::spawn(refuse(socket, kind, refusal));
                continue;
            }
        };
        let ctx = ctx.clone();
        // One spawn per kind, so that each task is as large as its own future: an idle client
        // session does not carry the room of an HTTP connection's state.
        match (kind, admitted) {
            (ListenerKind::C2s, Admitted::Session(t)) => {
                tokio::spawn(session_task::run(ctx, socket, peer, false, t));
            }
            (ListenerKind::C2sDirectTls, Admitted::Session(t)) => {
                tokio::spawn(session_task::run(ctx, socket, peer, true, t));
            }
            (ListenerKind::Component, Admitted::Permit(p)) => {
                tokio::spawn(async move {
                    component_task::run(ctx, socket, peer).await;
                    drop(p);
                });
            }
            (ListenerKind::Http { tls }, Admitted::Permit(p)) => {
                tokio::spawn(async move {
                    http::serve_connection(ctx, socket, peer, tls).await;
                    drop(p);
                });
            }
            _ => {}
        }
    }
}

/// What let a connection in, held for its life.
enum Admitted {
    Session(super::admission::SessionTicket),
    Permit(tokio::sync::OwnedSemaphorePermit),
}

/// Over a connection cap: a stream error in the clear (no TLS work is spent on it):
/// `resource-constraint` when the pool is full, `policy-violation` when the address holds its
/// share of unauthenticated sessions.
async fn refuse(mut socket: TcpStream, kind: ListenerKind, refusal: super::admission::Refusal) {
    use tokio::io::AsyncWriteExt;
    match kind {
        ListenerKind::C2sDirectTls | ListenerKind::Http { tls: true } => return,
        ListenerKind::Http { tls: false } => {
            let msg = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
                       Content-Length: 26\r\nConnection: close\r\n\r\nConnection limit reached.\n";
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                socket.write_all(msg.as_bytes()),
            )
            .await;
            return;
        }
        _ => {}
    }
    let condition = match refusal {
        super::admission::Refusal::Full => "resource-constraint",
        super::admission::Refusal::AddressFull => "policy-violation",
    };
    let ns = if kind == ListenerKind::Component {
        xml::ns::COMPONENT
    } else {
        xml::ns::CLIENT
    };
    let msg = format!(
        "<?xml version='1.0'?><stream:stream xmlns='{ns}' xmlns:stream='{}' version='1.0'>\
         <stream:error><{condition} xmlns='{}'/><text xmlns='{}'>{}</text></stream:error>\
         </stream:stream>",
        xml::ns::STREAMS,
        xml::ns::STREAM_ERRORS,
        xml::ns::STREAM_ERRORS,
        refusal.reason()
    );
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        socket.write_all(msg.as_bytes()),
    )
    .await;
}
