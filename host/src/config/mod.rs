//! The one TOML configuration file: `RawConfig` (serde, exactly what the operator wrote) is
//! validated into `Config` (typed, defaults applied). `lilt check-config` and `lilt serve` run
//! the same code, so a config that checks is a config that starts.
//!
//! Pure: no sockets, no plugin loading (that is `runtime::server::load_vhosts`, which
//! `check-config` also calls). Invariants: every error names the key path it is about
//! (`vhosts[1].auth.plugin`); unknown keys are refused; domains are lowercase and unique
//! across vhosts and components. Tests: `mod tests` below; CLI in tests/all/config.rs.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::stanza::jid::valid_domain;

mod sources;
mod storage;
mod turn;

pub use sources::{KeyServer, LdapProfile, Sources};
pub use storage::{PostgresStorage, PostgresTls, Storage};

/// A configuration error, naming the key it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// TOML syntax or shape error (serde names the key).
    #[error("{0}")]
    Parse(String),
    /// A value is out of range or inconsistent.
    #[error("{key}: {message}")]
    Invalid {
        /// Key path, e.g. `vhosts[0].domain`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The file as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Folder for the SQLite store and generated certificates. Defaults to `lilt-data`.
    pub data_dir: Option<PathBuf>,
    /// Folder holding `<plugin>.wasm` files. Defaults to `target/wasm32-wasip2/release`.
    pub plugin_dir: Option<PathBuf>,
    /// Log filter (tracing `EnvFilter` syntax). Defaults to `info`.
    pub log_level: Option<String>,
    /// The audit log (JSON lines). Defaults to `DATA_DIR/audit.log`.
    pub audit_log: Option<PathBuf>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    stream_management: RawStreamManagement,
    #[serde(default)]
    plugin_limits: RawPluginLimits,
    tls: Option<RawTls>,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    listeners: Vec<RawListener>,
    #[serde(default)]
    vhosts: Vec<RawVhost>,
    #[serde(default)]
    components: Vec<RawComponent>,
    #[serde(default)]
    sfu: RawSfu,
    #[serde(default)]
    key_servers: Vec<sources::RawKeyServer>,
    #[serde(default)]
    ldap: Vec<sources::RawLdap>,
    turn: Option<turn::RawTurn>,
    #[serde(default)]
    storage: storage::RawStorage,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSfu {
    bind: Option<String>,
    #[serde(default)]
    advertise: Vec<String>,
    public_url: Option<String>,
    last_n: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFocus {
    domain: Option<String>,
    jid: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_stanza_bytes: Option<usize>,
    max_depth: Option<usize>,
    max_attributes: Option<usize>,
    max_elements: Option<usize>,
    unauthenticated_timeout_seconds: Option<u64>,
    max_connections: Option<usize>,
    max_http_connections: Option<usize>,
    max_component_connections: Option<usize>,
    max_unauthenticated_per_address: Option<usize>,
    limit_loopback: Option<bool>,
    session_queue_stanzas: Option<usize>,
    session_queue_bytes: Option<usize>,
    router_shards: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStreamManagement {
    enabled: Option<bool>,
    resume_timeout_seconds: Option<u64>,
    max_unacked_stanzas: Option<usize>,
    max_unacked_bytes: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPluginLimits {
    call_timeout_ms: Option<u64>,
    call_wall_timeout_ms: Option<u64>,
    memory_mib: Option<usize>,
    kv_quota_mib: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    #[serde(rename = "type")]
    kind: String,
    bind: String,
    tls: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    websocket_path: Option<String>,
    bosh_path: Option<String>,
    static_dir: Option<PathBuf>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    #[serde(default)]
    cors_origins: Vec<String>,
    max_body_bytes: Option<usize>,
    request_timeout_seconds: Option<u64>,
    websocket_ping_seconds: Option<u64>,
    bosh_max_wait_seconds: Option<u64>,
    bosh_max_hold: Option<u32>,
    bosh_inactivity_seconds: Option<u64>,
    bosh_max_pause_seconds: Option<u64>,
    bosh_max_buffered_bytes: Option<usize>,
    #[serde(default)]
    stats_allow: Vec<String>,
    stats_token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVhost {
    domain: String,
    allow_unencrypted: Option<bool>,
    auth: Option<RawAuth>,
    muc: Option<RawMuc>,
    focus: Option<RawFocus>,
    #[serde(default)]
    plugins: Vec<RawPlugin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMuc {
    domain: String,
    lock_new_rooms: Option<bool>,
    destroy_when_empty: Option<bool>,
    #[serde(default)]
    room_creators: Vec<String>,
    #[serde(default)]
    admins: Vec<String>,
    max_occupants: Option<u32>,
    max_rooms_per_session: Option<u32>,
    max_rooms_per_user: Option<u32>,
    max_rooms: Option<u32>,
    max_presence_bytes: Option<u32>,
    disco_items_page: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    plugin: String,
    path: Option<PathBuf>,
    component: Option<String>,
    grants: Option<Vec<String>>,
    #[serde(default)]
    settings: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    plugin: String,
    path: Option<PathBuf>,
    grants: Option<Vec<String>>,
    #[serde(default)]
    settings: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    domain: String,
    secret: String,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (`None` for the embedded defaults); what a configuration
    /// reload reads again.
    pub source: Option<PathBuf>,
    /// Folder for persistent data.
    pub data_dir: PathBuf,
    /// Folder holding plugin components.
    pub plugin_dir: PathBuf,
    /// Log filter.
    pub log_level: String,
    /// Where audit events go, one JSON object per line: logins, rooms created and destroyed,
    /// plugin loads, reloads, refusals and disables, admin requests.
    pub audit_log: PathBuf,
    /// Hard limits on peers.
    pub limits: Limits,
    /// XEP-0198 settings.
    pub stream_management: StreamManagement,
    /// Sandbox limits for every plugin call.
    pub plugin_limits: PluginLimits,
    /// Certificate and key; `None` means a generated self-signed certificate.
    pub tls: Option<TlsFiles>,
    /// The HTTP side: paths, static files, proxies, BOSH and WebSocket settings.
    pub http: Http,
    /// Listening sockets.
    pub listeners: Vec<Listener>,
    /// Virtual hosts.
    pub vhosts: Vec<Vhost>,
    /// External components (XEP-0114).
    pub components: Vec<Component>,
    /// The media forwarder the focuses use.
    pub sfu: Sfu,
    /// Key servers auth plugins may be granted (`keys:<name>`).
    pub key_servers: Vec<Arc<KeyServer>>,
    /// Directory profiles auth plugins may be granted (`ldap:<profile>`).
    pub ldap: Vec<Arc<LdapProfile>>,
    /// The STUN/TURN server advertised to clients (XEP-0215), if any (`[turn]`).
    pub turn: Option<Arc<crate::router::extdisco::ExtDiscoConfig>>,
    /// Where accounts and plugin `kv` live (`[storage]`): SQLite in `data_dir` by default.
    pub storage: Storage,
}

/// The SFU's network settings.
#[derive(Debug, Clone)]
pub struct Sfu {
    /// The one UDP socket every endpoint's media uses. Defaults to `0.0.0.0:10000`.
    pub bind: SocketAddr,
    /// Addresses put in the SFU's ICE candidates (with the bound port): the public address
    /// behind a NAT. Defaults to the bind address, or 127.0.0.1 when that is unspecified.
    pub advertise: Vec<std::net::IpAddr>,
    /// Base URL of the bridge channel that browsers open, e.g.
    /// `wss://meet.example.com/colibri-ws`. Defaults to `ws://VHOST:PORT/colibri-ws` on the
    /// first plain HTTP listener.
    pub public_url: Option<String>,
    /// Last-N: how many senders' video each participant gets at most, the most recent
    /// speakers first (participants may ask for fewer). Unset: no limit.
    pub last_n: Option<usize>,
}

/// Limits applied to every connection.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest stanza in bytes. Defaults to 256 KiB.
    pub max_stanza_bytes: usize,
    /// Deepest element nesting. Defaults to 64.
    pub max_depth: usize,
    /// Most attributes on one element. Defaults to 64.
    pub max_attributes: usize,
    /// Most elements in one stanza (a parsed element costs many times its wire size).
    /// Defaults to 4096.
    pub max_elements: usize,
    /// Time a stream may stay unauthenticated. Defaults to 30 seconds.
    pub unauthenticated_timeout: Duration,
    /// Most simultaneous client sessions (c2s over TCP, WebSocket and BOSH). Defaults to
    /// 10 000.
    pub max_connections: usize,
    /// Most simultaneous HTTP connections (a WebSocket or BOSH session also takes a session
    /// permit). Defaults to `max_connections`.
    pub max_http_connections: usize,
    /// Connections kept for components (the focus's peers, bridges, XEP-0114 services), apart
    /// from the clients' so that a client flood cannot lock them out. Defaults to 64.
    pub max_component_connections: usize,
    /// Most sessions one address may hold before they authenticate (TCP, WebSocket and BOSH;
    /// behind a trusted proxy, the forwarded client address). Defaults to 32.
    pub max_unauthenticated_per_address: usize,
    /// Whether loopback addresses are held to `max_unauthenticated_per_address` too (they are
    /// not by default: local tools, tests and a proxy that forwards no client address).
    pub limit_loopback: bool,
    /// Stanzas queued for one session before it is treated as stuck. Defaults to 4096.
    pub session_queue_stanzas: usize,
    /// Bytes of stanzas (their in-memory cost) queued for one session before further ones
    /// bounce. Defaults to 4 MiB.
    pub session_queue_bytes: usize,
    /// Routing shards: owner tasks that each route the sessions and MUC rooms hashed to them
    /// (docs/architecture.md). Unset: one per core the process may use. At most 64.
    pub router_shards: Option<usize>,
}

impl Limits {
    /// How many routing shards to run.
    pub fn shards(&self) -> usize {
        self.router_shards.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_SHARDS))
        })
    }
}

/// Most routing shards (a resumption id names its shard in two hex digits).
const MAX_SHARDS: usize = 64;

/// XEP-0198 stream management.
#[derive(Debug, Clone)]
pub struct StreamManagement {
    /// Offer `urn:xmpp:sm:3`. Defaults to true.
    pub enabled: bool,
    /// How long a dropped session waits to be resumed. Defaults to 300 seconds.
    pub resume_timeout: Duration,
    /// Most unacknowledged stanzas kept for resumption. Defaults to 10 000.
    pub max_unacked_stanzas: usize,
    /// Most bytes of unacknowledged stanzas (their in-memory cost) kept for resumption.
    /// Defaults to 8 MiB.
    pub max_unacked_bytes: usize,
}

/// PEM files for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Private key (PEM).
    pub key_file: PathBuf,
}

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Client-to-server on plain TCP, STARTTLS offered (RFC 6120 §5).
    C2s,
    /// Client-to-server with TLS from the first byte (XEP-0368).
    C2sDirectTls,
    /// External components (XEP-0114).
    Component,
    /// HTTP: XMPP over WebSocket and BOSH, health, metrics, stats, static files.
    Http {
        /// Serve HTTPS with the server's certificate.
        tls: bool,
    },
}

/// The HTTP listeners' settings.
#[derive(Debug, Clone)]
pub struct Http {
    /// RFC 7395 endpoint. Defaults to `/xmpp-websocket`.
    pub websocket_path: String,
    /// XEP-0206 endpoint. Defaults to `/http-bind`.
    pub bosh_path: String,
    /// Folder served for every other GET path, if set.
    pub static_dir: Option<PathBuf>,
    /// Peers whose `X-Forwarded-For`/`X-Forwarded-Proto` are believed (reverse proxies).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Origins allowed to call BOSH cross-origin (`*` for any). Empty: same origin only.
    pub cors_origins: Vec<String>,
    /// Largest request body (BOSH) and WebSocket message. Defaults to the stanza limit + 8 KiB.
    pub max_body_bytes: usize,
    /// Time to receive a request's head (counted from when the connection is ready for it,
    /// so it is also the keep-alive idle limit) and, separately, its body. Defaults to 10 s.
    pub request_timeout: Duration,
    /// WebSocket keepalive ping after this much silence. Defaults to 30 seconds.
    pub websocket_ping: Duration,
    /// BOSH limits.
    pub bosh: crate::bosh::BoshConfig,
    /// Who may read `/metrics`, `/stats` and `/colibri/stats` besides loopback peers:
    /// clients in these networks (`10.0.0.0/8`, `192.0.2.7`; behind a trusted proxy, the
    /// forwarded client address), and whoever sends `Authorization: Bearer` with the token of
    /// `stats_token_file`.
    pub stats_allow: Vec<IpNet>,
    /// The bearer token for the stats endpoints (from `stats_token_file`, trimmed).
    pub stats_token: Option<String>,
}

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `::1/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` is in the network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let bits = |a: IpAddr| -> (u128, u32) {
            match a {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let ((net, width), (x, xw)) = (bits(self.addr), bits(ip));
        if width != xw {
            return false;
        }
        let shift = width - u32::from(self.prefix);
        shift >= width || (net >> shift) == (x >> shift)
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP network"))?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0..={width}"))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

/// One listening socket.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Protocol.
    pub kind: ListenerKind,
    /// Address.
    pub bind: SocketAddr,
}

/// One virtual host: a tenant with its own domain and auth plugin.
#[derive(Debug, Clone)]
pub struct Vhost {
    /// The XMPP domain, lowercase.
    pub domain: String,
    /// Allow SASL and sessions without TLS. Defaults to false.
    pub allow_unencrypted: bool,
    /// The auth plugin.
    pub auth: AuthPluginConfig,
    /// The vhost's MUC service, if any.
    pub muc: Option<crate::muc::MucConfig>,
    /// The vhost's conference focus, if any (it needs the MUC service).
    pub focus: Option<crate::focus::FocusConfig>,
    /// Hook and component plugins, in configuration order.
    pub plugins: Vec<PluginConfig>,
}

/// A hook and/or component plugin of a vhost.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// Plugin name, e.g. `speakerstats`.
    pub plugin: String,
    /// The component file.
    pub path: PathBuf,
    /// The domain it owns as a component, if it is one.
    pub component: Option<String>,
    /// The `lilt:plugin` interfaces it may import beyond the always-granted ones. Defaults to
    /// [`Grants::HOOKS_DEFAULT`] (`kv`, `stanzas`, `timers`).
    pub grants: Grants,
    /// Settings handed to the plugin's `configure` as JSON.
    pub settings: serde_json::Value,
}

/// Sandbox limits applied to every plugin call.
#[derive(Debug, Clone)]
pub struct PluginLimits {
    /// Wall time a call may run, not counting time inside host imports. Defaults to 1 s.
    pub call_timeout: Duration,
    /// Wall time a call may take in all, host imports included. Defaults to 3 s.
    pub call_wall_timeout: Duration,
    /// Linear memory a call may grow to. Defaults to 64 MiB.
    pub memory_bytes: usize,
    /// Bytes a plugin may keep in `kv` per vhost. Defaults to 64 MiB.
    pub kv_quota_bytes: u64,
    /// Traps within `trap_window` after which the plugin is disabled. Defaults to 5.
    pub max_traps: u32,
    /// Window for counting traps. Defaults to 60 s.
    pub trap_window: Duration,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            call_timeout: Duration::from_secs(1),
            call_wall_timeout: Duration::from_secs(3),
            memory_bytes: 64 << 20,
            kv_quota_bytes: 64 << 20,
            max_traps: 5,
            trap_window: Duration::from_secs(60),
        }
    }
}

/// Which auth plugin a vhost uses and how it is set up.
#[derive(Debug, Clone)]
pub struct AuthPluginConfig {
    /// Plugin name, e.g. `auth-internal`.
    pub plugin: String,
    /// The component file.
    pub path: PathBuf,
    /// The `lilt:plugin` interfaces it may import beyond the always-granted ones. Defaults to
    /// [`Grants::AUTH_DEFAULT`] (`kv`).
    pub grants: Grants,
    /// The key server and directory profile its `keys:<name>` and `ldap:<profile>` grants
    /// name.
    pub sources: Sources,
    /// Settings handed to the plugin's `configure` as JSON.
    pub settings: serde_json::Value,
}

/// A `lilt:plugin` interface that a plugin may import only when its config grants it
/// (`grants = [...]`). `host`, `clock`, `types`, `hook-types` and the WASI p2 interfaces are
/// always granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `kv`: the plugin's own key-value store on its vhost.
    Kv,
    /// `stanzas`: send stanzas (confined to the plugin's domains).
    Stanzas,
    /// `timers`: ask for `on-timer` calls later.
    Timers,
    /// `keys:<name>`: public keys from a configured key server (auth plugins only).
    Keys,
    /// `ldap:<profile>`: bind and search in a configured directory (auth plugins only).
    Ldap,
}

impl Capability {
    /// Every capability, in the order they are listed.
    pub const ALL: [Capability; 5] = [
        Capability::Kv,
        Capability::Stanzas,
        Capability::Timers,
        Capability::Keys,
        Capability::Ldap,
    ];

    /// The grant name, which is also the interface name (`lilt:plugin/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Capability::Kv => "kv",
            Capability::Stanzas => "stanzas",
            Capability::Timers => "timers",
            Capability::Keys => "keys",
            Capability::Ldap => "ldap",
        }
    }

    /// Whether the grant names a configured source (`keys:<name>`, `ldap:<profile>`).
    pub fn names_a_source(self) -> bool {
        matches!(self, Capability::Keys | Capability::Ldap)
    }

    /// How a grant of it is written: its name, or the name with the source to name.
    pub fn grant_form(self) -> &'static str {
        match self {
            Capability::Keys => "keys:<key server>",
            Capability::Ldap => "ldap:<profile>",
            c => c.name(),
        }
    }

    /// The capability called `name` (a grant, or an interface of `lilt:plugin` without its
    /// package and version), if it is one.
    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == name)
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Interfaces of `lilt:plugin` every plugin may import without a grant.
pub const ALWAYS_GRANTED: [&str; 4] = ["host", "clock", "types", "hook-types"];

/// A set of [`Capability`]s: what one plugin on one vhost is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Grants(u8);

impl Grants {
    /// Nothing beyond the always-granted interfaces.
    pub const NONE: Grants = Grants(0);
    /// An auth plugin's grants when `grants` is absent: `kv`.
    pub const AUTH_DEFAULT: Grants = Grants::NONE.with(Capability::Kv);
    /// A hook or component plugin's grants when `grants` is absent: `kv`, `stanzas`, `timers`.
    pub const HOOKS_DEFAULT: Grants = Grants::AUTH_DEFAULT
        .with(Capability::Stanzas)
        .with(Capability::Timers);

    /// This set and `c`.
    #[must_use]
    pub const fn with(self, c: Capability) -> Grants {
        Grants(self.0 | c.bit())
    }

    /// Whether `c` is granted.
    pub const fn contains(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    /// The granted capabilities, in [`Capability::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Capability> for Grants {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Grants {
        iter.into_iter().fold(Grants::NONE, Grants::with)
    }
}

impl std::fmt::Display for Grants {
    /// As written in the config: `["kv", "stanzas"]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.iter().map(|c| format!("{:?}", c.name())).collect();
        write!(f, "[{}]", names.join(", "))
    }
}

/// One external component.
#[derive(Debug, Clone)]
pub struct Component {
    /// The domain it serves.
    pub domain: String,
    /// The shared secret of the XEP-0114 handshake.
    pub secret: String,
}

/// The configuration used when `lilt serve` gets no file: vhost `localhost` with anonymous
/// auth, its MUC service `conference.localhost` and the conference focus `focus.localhost`,
/// c2s on 5222 (STARTTLS), direct TLS on 5223, components on 127.0.0.1:5347, HTTP (WebSocket,
/// BOSH, bridge channel, health, metrics) on 5280, HTTPS on 5281, and media on UDP 10000.
pub const EMBEDDED_DEFAULTS: &str = r#"
data_dir = "lilt-data"

[[listeners]]
type = "c2s"
bind = "0.0.0.0:5222"

[[listeners]]
type = "c2s_direct_tls"
bind = "0.0.0.0:5223"

[[listeners]]
type = "component"
bind = "127.0.0.1:5347"

[[listeners]]
type = "http"
bind = "0.0.0.0:5280"

[[listeners]]
type = "http"
bind = "0.0.0.0:5281"
tls = true

[[vhosts]]
domain = "localhost"
allow_unencrypted = false
auth = { plugin = "auth-anonymous" }

[vhosts.muc]
domain = "conference.localhost"

[vhosts.focus]

# The components a Jitsi client looks for on its vhost (disco#info identities).
[[vhosts.plugins]]
plugin = "speakerstats"
component = "speakerstats.localhost"

[[vhosts.plugins]]
plugin = "conference-duration"
component = "conferenceduration.localhost"

[[vhosts.plugins]]
plugin = "av-moderation"
component = "avmoderation.localhost"

[sfu]
bind = "0.0.0.0:10000"
"#;

impl Config {
    /// Read and validate a file.
    ///
    /// # Errors
    /// When the file is unreadable or any key is wrong.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = Self::parse(&text, base)?;
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// Parse and validate TOML text; relative paths are taken from `base`.
    ///
    /// # Errors
    /// When any key is wrong; the error names it.
    pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        Self::validate(raw, base)
    }

    fn validate(raw: RawConfig, base: &Path) -> Result<Config, ConfigError> {
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let data_dir = rel(raw.data_dir.unwrap_or_else(|| PathBuf::from("lilt-data")));
        let plugin_dir = match raw.plugin_dir {
            Some(p) => rel(p),
            None => default_plugin_dir(),
        };
        let limits = validate_limits(&raw.limits)?;
        let sm = &raw.stream_management;
        let stream_management = StreamManagement {
            enabled: sm.enabled.unwrap_or(true),
            resume_timeout: Duration::from_secs(positive(
                sm.resume_timeout_seconds,
                300,
                MAX_SECONDS,
                "stream_management.resume_timeout_seconds",
            )?),
            max_unacked_stanzas: positive(
                sm.max_unacked_stanzas,
                10_000,
                1_000_000,
                "stream_management.max_unacked_stanzas",
            )?,
            max_unacked_bytes: positive(
                sm.max_unacked_bytes,
                8 * 1024 * 1024,
                1024 * 1024 * 1024,
                "stream_management.max_unacked_bytes",
            )?,
        };
        let pl = &raw.plugin_limits;
        let mut plugin_limits = PluginLimits::default();
        if let Some(ms) = pl.call_timeout_ms {
            plugin_limits.call_timeout = Duration::from_millis(positive(
                Some(ms),
                0,
                MAX_CALL_MS,
                "plugin_limits.call_timeout_ms",
            )?);
        }
        plugin_limits.call_wall_timeout = match pl.call_wall_timeout_ms {
            Some(ms) => {
                let wall = Duration::from_millis(positive(
                    Some(ms),
                    0,
                    MAX_CALL_MS,
                    "plugin_limits.call_wall_timeout_ms",
                )?);
                if wall < plugin_limits.call_timeout {
                    return Err(invalid(
                        "plugin_limits.call_wall_timeout_ms",
                        "must be at least plugin_limits.call_timeout_ms",
                    ));
                }
                wall
            }
            None => plugin_limits
                .call_wall_timeout
                .max(plugin_limits.call_timeout * 3),
        };
        if let Some(mib) = pl.memory_mib {
            plugin_limits.memory_bytes =
                positive(Some(mib), 0, 65_536, "plugin_limits.memory_mib")? << 20;
        }
        if let Some(mib) = pl.kv_quota_mib {
            plugin_limits.kv_quota_bytes =
                positive(Some(mib), 0, 1 << 20, "plugin_limits.kv_quota_mib")? << 20;
        }

        let tls = raw.tls.map(|t| TlsFiles {
            cert_file: rel(t.cert_file),
            key_file: rel(t.key_file),
        });

        let http = validate_http(raw.http, limits.max_stanza_bytes, &rel)?;
        let wall = plugin_limits.call_wall_timeout;
        let key_servers = sources::validate_key_servers(raw.key_servers, wall)?;
        let ldap = sources::validate_ldap(raw.ldap, &rel, wall)?;
        let mut listeners = Vec::new();
        let mut binds = HashSet::new();
        for (i, l) in raw.listeners.iter().enumerate() {
            let kind = match l.kind.as_str() {
                "c2s" => ListenerKind::C2s,
                "c2s_direct_tls" => ListenerKind::C2sDirectTls,
                "component" => ListenerKind::Component,
                "http" => ListenerKind::Http {
                    tls: l.tls.unwrap_or(false),
                },
                other => {
                    return Err(invalid(
                        format!("listeners[{i}].type"),
                        format!(
                            "unknown listener type {other:?}; expected c2s, c2s_direct_tls, component or http"
                        ),
                    ));
                }
            };
            if l.tls.is_some() && !matches!(kind, ListenerKind::Http { .. }) {
                return Err(invalid(
                    format!("listeners[{i}].tls"),
                    "only http listeners take `tls` (c2s_direct_tls is TLS already)",
                ));
            }
            let bind: SocketAddr = l.bind.parse().map_err(|_| {
                invalid(
                    format!("listeners[{i}].bind"),
                    format!("{:?} is not an IP:port address", l.bind),
                )
            })?;
            if !binds.insert(bind) {
                return Err(invalid(
                    format!("listeners[{i}].bind"),
                    format!("{bind} is used twice"),
                ));
            }
            listeners.push(Listener { kind, bind });
        }
        if listeners.is_empty() {
            return Err(invalid("listeners", "at least one listener is needed"));
        }

        let mut domains = HashSet::new();
        let mut vhosts = Vec::new();
        for (i, v) in raw.vhosts.into_iter().enumerate() {
            let domain = checked_domain(&v.domain, &format!("vhosts[{i}].domain"), &mut domains)?;
            let Some(auth) = v.auth else {
                return Err(invalid(
                    format!("vhosts[{i}].auth"),
                    "missing; set auth = { plugin = \"auth-anonymous\" } or another auth plugin",
                ));
            };
            let (path, settings) = plugin_file(
                &auth.plugin,
                auth.path,
                &auth.settings,
                &format!("vhosts[{i}].auth"),
                &plugin_dir,
                &rel,
            )?;
            let mut auth_sources = Sources::default();
            let auth_grants = validate_grants(
                auth.grants,
                Grants::AUTH_DEFAULT,
                &format!("vhosts[{i}].auth"),
                Some((&mut auth_sources, &key_servers, &ldap)),
            )?;
            let mut plugins: Vec<PluginConfig> = Vec::new();
            for (j, p) in v.plugins.into_iter().enumerate() {
                let key = format!("vhosts[{i}].plugins[{j}]");
                let (path, settings) =
                    plugin_file(&p.plugin, p.path, &p.settings, &key, &plugin_dir, &rel)?;
                // A plugin's kv namespace is (vhost, role, name): two entries with one name
                // would share their data. (The auth plugin's name may recur here: roles
                // separate them.)
                if let Some(first) = plugins.iter().position(|q| q.plugin == p.plugin) {
                    return Err(invalid(
                        format!("{key}.plugin"),
                        format!(
                            "{:?} is already loaded on this vhost as vhosts[{i}].plugins[{first}]",
                            p.plugin
                        ),
                    ));
                }
                let component = match p.component {
                    Some(c) => Some(checked_domain(
                        &c,
                        &format!("{key}.component"),
                        &mut domains,
                    )?),
                    None => None,
                };
                let grants = validate_grants(p.grants, Grants::HOOKS_DEFAULT, &key, None)?;
                plugins.push(PluginConfig {
                    plugin: p.plugin,
                    path,
                    component,
                    grants,
                    settings,
                });
            }
            let mut muc = match v.muc {
                Some(m) => Some(validate_muc(m, &domain, i, &mut domains)?),
                None => None,
            };
            let focus = match v.focus {
                Some(f) => Some(validate_focus(f, &domain, i, muc.as_mut(), &mut domains)?),
                None => None,
            };
            vhosts.push(Vhost {
                domain,
                allow_unencrypted: v.allow_unencrypted.unwrap_or(false),
                auth: AuthPluginConfig {
                    plugin: auth.plugin,
                    path,
                    grants: auth_grants,
                    sources: auth_sources,
                    settings,
                },
                muc,
                focus,
                plugins,
            });
        }
        for (i, v) in vhosts.iter().enumerate() {
            for c in v.muc.iter().flat_map(|m| &m.room_creators) {
                if !vhosts.iter().any(|o| &o.domain == c) {
                    return Err(invalid(
                        format!("vhosts[{i}].muc.room_creators"),
                        format!("{c:?} is not a configured vhost"),
                    ));
                }
            }
        }
        if vhosts.is_empty() {
            return Err(invalid("vhosts", "at least one virtual host is needed"));
        }

        let mut components = Vec::new();
        for (i, c) in raw.components.into_iter().enumerate() {
            let domain =
                checked_domain(&c.domain, &format!("components[{i}].domain"), &mut domains)?;
            if c.secret.len() < 8 {
                return Err(invalid(
                    format!("components[{i}].secret"),
                    "must be at least 8 characters",
                ));
            }
            // A component owns its subdomains too (XEP-0114): it must not sit above a domain
            // this server serves itself, or it would take that domain's traffic.
            if let Some(served) = domains
                .iter()
                .find(|d| d.len() > domain.len() && d.ends_with(&format!(".{domain}")))
            {
                return Err(invalid(
                    format!("components[{i}].domain"),
                    format!("{domain} is a parent of {served}, which this server serves"),
                ));
            }
            components.push(Component {
                domain,
                secret: c.secret,
            });
        }

        let sfu = validate_sfu(raw.sfu)?;
        let vhost_domains: Vec<String> = vhosts.iter().map(|v| v.domain.clone()).collect();
        let turn = match raw.turn {
            Some(t) => Some(Arc::new(turn::validate_turn(t, &vhost_domains, &rel)?)),
            None => None,
        };
        let audit_log = raw
            .audit_log
            .map_or_else(|| data_dir.join("audit.log"), &rel);
        let storage = storage::validate_storage(raw.storage, &rel)?;
        Ok(Config {
            source: None,
            audit_log,
            data_dir,
            plugin_dir,
            log_level: raw.log_level.unwrap_or_else(|| "info".to_owned()),
            limits,
            stream_management,
            plugin_limits,
            tls,
            http,
            listeners,
            vhosts,
            components,
            sfu,
            key_servers,
            ldap,
            turn,
            storage,
        })
    }

    /// The vhost serving `domain`, if any.
    pub fn vhost(&self, domain: &str) -> Option<&Vhost> {
        self.vhosts.iter().find(|v| v.domain == domain)
    }
}

/// `[vhosts.focus]`: Jicofo's role on this vhost. Its MUC service gets the focus as the
/// occupant that is in every room first and an owner of every room.
fn validate_focus(
    f: RawFocus,
    vhost: &str,
    i: usize,
    muc: Option<&mut crate::muc::MucConfig>,
    domains: &mut HashSet<String>,
) -> Result<crate::focus::FocusConfig, ConfigError> {
    let key = format!("vhosts[{i}].focus");
    let Some(muc) = muc else {
        return Err(invalid(
            key,
            "a focus needs the vhost's MUC service ([vhosts.muc])",
        ));
    };
    let domain = checked_domain(
        &f.domain.unwrap_or_else(|| format!("focus.{vhost}")),
        &format!("{key}.domain"),
        domains,
    )?;
    let raw_jid = f.jid.unwrap_or_else(|| format!("focus@auth.{vhost}"));
    let bare = crate::stanza::Jid::parse(&raw_jid)
        .ok()
        .filter(|j| j.is_bare() && j.node().is_some())
        .ok_or_else(|| {
            invalid(
                format!("{key}.jid"),
                format!("{raw_jid:?} is not a bare JID with a local part"),
            )
        })?;
    if bare.domain() == vhost || bare.domain() == muc.domain {
        return Err(invalid(
            format!("{key}.jid"),
            "the focus needs a domain of its own (e.g. auth.VHOST)",
        ));
    }
    checked_domain(bare.domain(), &format!("{key}.jid"), domains)?;
    let jid = bare
        .with_resource(crate::focus::FOCUS_NICK)
        .map_err(|_| invalid(format!("{key}.jid"), "not a valid JID"))?;
    muc.admins.push(bare);
    muc.focus = Some(crate::muc::FocusOccupant {
        jid: jid.clone(),
        nick: crate::focus::FOCUS_NICK.to_owned(),
        presence: crate::focus::Focus::join_presence(),
    });
    Ok(crate::focus::FocusConfig {
        vhost: vhost.to_owned(),
        domain,
        jid,
        muc: muc.domain.clone(),
        room_creators: muc.room_creators.clone(),
    })
}

fn validate_sfu(raw: RawSfu) -> Result<Sfu, ConfigError> {
    let bind_raw = raw.bind.unwrap_or_else(|| "0.0.0.0:10000".to_owned());
    let bind: SocketAddr = bind_raw
        .parse()
        .map_err(|_| invalid("sfu.bind", format!("{bind_raw:?} is not an address:port")))?;
    let mut advertise = Vec::new();
    for a in &raw.advertise {
        let ip: std::net::IpAddr = a
            .parse()
            .map_err(|_| invalid("sfu.advertise", format!("{a:?} is not an IP address")))?;
        if ip.is_unspecified() {
            return Err(invalid("sfu.advertise", "0.0.0.0 and :: cannot be reached"));
        }
        advertise.push(ip);
    }
    if advertise.is_empty() {
        advertise.push(if bind.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            bind.ip()
        });
    }
    if let Some(u) = &raw.public_url
        && !(u.starts_with("ws://") || u.starts_with("wss://"))
    {
        return Err(invalid("sfu.public_url", "must start with ws:// or wss://"));
    }
    let last_n = match raw.last_n {
        Some(n) if n > 1000 => return Err(invalid("sfu.last_n", "must be at most 1000")),
        n => n.map(|n| n as usize),
    };
    Ok(Sfu {
        bind,
        advertise,
        public_url: raw.public_url.map(|u| u.trim_end_matches('/').to_owned()),
        last_n,
    })
}

fn validate_http(
    raw: RawHttp,
    max_stanza_bytes: usize,
    rel: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<Http, ConfigError> {
    let path = |v: Option<String>, default: &str, key: &str| -> Result<String, ConfigError> {
        let p = v.unwrap_or_else(|| default.to_owned());
        if !p.starts_with('/') || p.len() < 2 || p.contains(['?', '#', ' ']) {
            return Err(invalid(
                format!("http.{key}"),
                format!("{p:?} must be an absolute path such as {default:?}"),
            ));
        }
        Ok(p.trim_end_matches('/').to_owned())
    };
    let websocket_path = path(raw.websocket_path, "/xmpp-websocket", "websocket_path")?;
    let bosh_path = path(raw.bosh_path, "/http-bind", "bosh_path")?;
    if websocket_path == bosh_path {
        return Err(invalid(
            "http.bosh_path",
            "must differ from http.websocket_path",
        ));
    }
    let mut trusted_proxies = Vec::new();
    for (i, p) in raw.trusted_proxies.iter().enumerate() {
        trusted_proxies.push(p.parse().map_err(|_| {
            invalid(
                format!("http.trusted_proxies[{i}]"),
                format!("{p:?} is not an IP address"),
            )
        })?);
    }
    let mut stats_allow = Vec::new();
    for (i, n) in raw.stats_allow.iter().enumerate() {
        stats_allow.push(
            n.parse::<IpNet>()
                .map_err(|e| invalid(format!("http.stats_allow[{i}]"), e))?,
        );
    }
    let stats_token = match raw.stats_token_file.map(rel) {
        None => None,
        Some(path) => {
            let token = std::fs::read_to_string(&path).map_err(|e| {
                invalid(
                    "http.stats_token_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let token = token.trim().to_owned();
            if token.len() < 16 {
                return Err(invalid(
                    "http.stats_token_file",
                    "the token must be at least 16 characters",
                ));
            }
            Some(token)
        }
    };
    let static_dir = raw.static_dir.map(rel);
    if let Some(d) = &static_dir
        && !d.is_dir()
    {
        return Err(invalid(
            "http.static_dir",
            format!("{} is not a folder", d.display()),
        ));
    }
    let secs = |v: Option<u64>, default: u64, key: &str| {
        positive(v, default, MAX_SECONDS, &format!("http.{key}")).map(Duration::from_secs)
    };
    let max_hold = positive(
        raw.bosh_max_hold.map(u64::from),
        1,
        100,
        "http.bosh_max_hold",
    )?;
    Ok(Http {
        websocket_path,
        bosh_path,
        static_dir,
        trusted_proxies,
        cors_origins: raw.cors_origins,
        max_body_bytes: positive(
            raw.max_body_bytes,
            max_stanza_bytes + 8 * 1024,
            MAX_BYTES,
            "http.max_body_bytes",
        )?,
        request_timeout: secs(raw.request_timeout_seconds, 10, "request_timeout_seconds")?,
        websocket_ping: secs(raw.websocket_ping_seconds, 30, "websocket_ping_seconds")?,
        stats_allow,
        stats_token,
        bosh: crate::bosh::BoshConfig {
            max_wait: secs(raw.bosh_max_wait_seconds, 60, "bosh_max_wait_seconds")?,
            max_hold: u32::try_from(max_hold.min(8)).unwrap_or(1),
            inactivity: secs(raw.bosh_inactivity_seconds, 60, "bosh_inactivity_seconds")?,
            max_pause: secs(raw.bosh_max_pause_seconds, 120, "bosh_max_pause_seconds")?,
            max_buffered_bytes: positive(
                raw.bosh_max_buffered_bytes,
                1024 * 1024,
                1024 * 1024 * 1024,
                "http.bosh_max_buffered_bytes",
            )?,
            ..crate::bosh::BoshConfig::default()
        },
    })
}

/// Where plugins are looked for when the config does not say: `$LILT_PLUGIN_DIR`, else the
/// cargo output folder next to the running binary (`target/wasm32-wasip2/release`), else that
/// folder relative to the working directory.
fn default_plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LILT_PLUGIN_DIR") {
        return PathBuf::from(dir);
    }
    let rel = Path::new("wasm32-wasip2").join("release");
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/lilt -> target/wasm32-wasip2/release
        if let Some(target) = exe.parent().and_then(Path::parent) {
            let candidate = target.join(&rel);
            if candidate.is_dir() {
                return candidate;
            }
        }
    }
    Path::new("target").join(rel)
}

fn validate_limits(raw: &RawLimits) -> Result<Limits, ConfigError> {
    let max_stanza_bytes = positive(
        raw.max_stanza_bytes,
        256 * 1024,
        MAX_BYTES,
        "limits.max_stanza_bytes",
    )?;
    if max_stanza_bytes < 1024 {
        return Err(invalid("limits.max_stanza_bytes", "must be at least 1024"));
    }
    let max_depth = positive(raw.max_depth, 64, 1024, "limits.max_depth")?;
    if max_depth < 4 {
        return Err(invalid("limits.max_depth", "must be at least 4"));
    }
    let max_connections = positive(
        raw.max_connections,
        10_000,
        10_000_000,
        "limits.max_connections",
    )?;
    Ok(Limits {
        max_stanza_bytes,
        max_depth,
        max_attributes: positive(raw.max_attributes, 64, 10_000, "limits.max_attributes")?,
        max_elements: positive(raw.max_elements, 4096, 1_000_000, "limits.max_elements")?,
        unauthenticated_timeout: Duration::from_secs(positive(
            raw.unauthenticated_timeout_seconds,
            30,
            MAX_SECONDS,
            "limits.unauthenticated_timeout_seconds",
        )?),
        max_connections,
        max_http_connections: positive(
            raw.max_http_connections,
            max_connections,
            10_000_000,
            "limits.max_http_connections",
        )?,
        max_component_connections: positive(
            raw.max_component_connections,
            64,
            100_000,
            "limits.max_component_connections",
        )?,
        max_unauthenticated_per_address: positive(
            raw.max_unauthenticated_per_address,
            32,
            10_000_000,
            "limits.max_unauthenticated_per_address",
        )?,
        limit_loopback: raw.limit_loopback.unwrap_or(false),
        session_queue_stanzas: positive(
            raw.session_queue_stanzas,
            4096,
            1_000_000,
            "limits.session_queue_stanzas",
        )?,
        session_queue_bytes: positive(
            raw.session_queue_bytes,
            4 * 1024 * 1024,
            1024 * 1024 * 1024,
            "limits.session_queue_bytes",
        )?,
        router_shards: raw
            .router_shards
            .map(|n| positive(Some(n), 1, MAX_SHARDS, "limits.router_shards"))
            .transpose()?,
    })
}

/// Longest duration any `*_seconds` key takes: one day (timers on `Instant`s must not
/// overflow, and nothing here sensibly waits longer).
const MAX_SECONDS: u64 = 86_400;
/// Longest plugin call budget: ten minutes.
const MAX_CALL_MS: u64 = 600_000;
/// Largest byte size (stanzas, HTTP bodies): 64 MiB.
const MAX_BYTES: usize = 64 << 20;

/// Largest `[vhosts.muc] max_rooms_per_session`.
const MAX_MUC_ROOMS_PER_SESSION: u32 = 10_000;
/// Largest `[vhosts.muc] max_rooms_per_user`.
const MAX_MUC_ROOMS_PER_USER: u32 = 100_000;
/// Largest `[vhosts.muc] max_rooms`.
const MAX_MUC_ROOMS: u32 = 1_000_000;
/// Largest `[vhosts.muc] max_presence_bytes`: 1 MiB (every joiner gets every occupant's).
const MAX_MUC_PRESENCE_BYTES: u32 = 1 << 20;
/// Largest `[vhosts.muc] disco_items_page`.
const MAX_MUC_DISCO_PAGE: u32 = 10_000;

/// A setting that must be greater than zero and at most `max`; `default` when absent.
fn positive<T: Default + PartialOrd + Copy + std::fmt::Display>(
    v: Option<T>,
    default: T,
    max: T,
    key: &str,
) -> Result<T, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) if v == T::default() => Err(invalid(key, "must be greater than zero")),
        Some(v) if v > max => Err(invalid(key, format!("must be at most {max}"))),
        Some(v) => Ok(v),
    }
}

/// A plugin's file and JSON settings, checking its name.
fn plugin_file(
    name: &str,
    path: Option<PathBuf>,
    settings: &toml::Table,
    key: &str,
    plugin_dir: &Path,
    rel: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<(PathBuf, serde_json::Value), ConfigError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(
            format!("{key}.plugin"),
            "plugin names use letters, digits, '-' and '_'",
        ));
    }
    let path = match path {
        Some(p) => rel(p),
        None => plugin_dir.join(format!("{}.wasm", name.replace('-', "_"))),
    };
    let settings = serde_json::to_value(settings)
        .map_err(|e| invalid(format!("{key}.settings"), e.to_string()))?;
    Ok((path, settings))
}

/// Where an auth plugin's `keys:<name>` and `ldap:<profile>` grants resolve into, and the
/// configured key servers and directory profiles they may name.
type SourceGrants<'a> = (
    &'a mut Sources,
    &'a [Arc<KeyServer>],
    &'a [Arc<LdapProfile>],
);

/// The plugin at `key`'s `grants` list, or `default` when it has none. `sources` resolves
/// `keys:<name>` and `ldap:<profile>` for an auth plugin; other plugins pass `None` and such
/// grants are refused for them.
fn validate_grants(
    names: Option<Vec<String>>,
    default: Grants,
    key: &str,
    mut sources: Option<SourceGrants<'_>>,
) -> Result<Grants, ConfigError> {
    let Some(names) = names else {
        return Ok(default);
    };
    let mut grants = Grants::NONE;
    for (k, name) in names.iter().enumerate() {
        let key = format!("{key}.grants[{k}]");
        let (cap_name, named) = match name.split_once(':') {
            Some((cap, _)) => (cap, true),
            None => (name.as_str(), false),
        };
        let Some(c) = Capability::from_name(cap_name) else {
            let message = if name == "http" || name.starts_with("http:") {
                format!("capability {name:?} is not available yet")
            } else if ALWAYS_GRANTED.contains(&name.as_str()) {
                format!("{name:?} is always granted; leave it out")
            } else {
                let known: Vec<&str> = Capability::ALL.iter().map(|c| c.grant_form()).collect();
                format!("unknown capability {name:?} (known: {})", known.join(", "))
            };
            return Err(invalid(key, message));
        };
        if c.names_a_source() != named {
            let message = if named {
                format!("{cap_name:?} takes no name")
            } else {
                format!(
                    "name what {name:?} is for: \"{name}:<name of a [[key_servers]] or [[ldap]] entry>\""
                )
            };
            return Err(invalid(key, message));
        }
        if grants.contains(c) {
            return Err(invalid(key, format!("{cap_name:?} is listed twice")));
        }
        if c.names_a_source() {
            let Some((sources, key_servers, ldap)) = sources.as_mut() else {
                return Err(invalid(
                    key,
                    format!("only an auth plugin may be granted {cap_name:?}"),
                ));
            };
            sources.grant(name, &key, key_servers, ldap)?;
        }
        grants = grants.with(c);
    }
    Ok(grants)
}

fn validate_muc(
    m: RawMuc,
    vhost: &str,
    i: usize,
    domains: &mut HashSet<String>,
) -> Result<crate::muc::MucConfig, ConfigError> {
    let key = format!("vhosts[{i}].muc");
    let domain = checked_domain(&m.domain, &format!("{key}.domain"), domains)?;
    let mut admins = Vec::new();
    for a in &m.admins {
        let jid = crate::stanza::Jid::parse(a)
            .ok()
            .filter(crate::stanza::Jid::is_bare)
            .ok_or_else(|| invalid(format!("{key}.admins"), format!("{a:?} is not a bare JID")))?;
        admins.push(jid);
    }
    let d = crate::muc::MucLimits::default();
    let limits = crate::muc::MucLimits {
        max_rooms_per_session: positive(
            m.max_rooms_per_session,
            d.max_rooms_per_session,
            MAX_MUC_ROOMS_PER_SESSION,
            &format!("{key}.max_rooms_per_session"),
        )?,
        max_rooms_per_user: positive(
            m.max_rooms_per_user,
            d.max_rooms_per_user,
            MAX_MUC_ROOMS_PER_USER,
            &format!("{key}.max_rooms_per_user"),
        )?,
        max_rooms: positive(
            m.max_rooms,
            d.max_rooms,
            MAX_MUC_ROOMS,
            &format!("{key}.max_rooms"),
        )?,
        max_presence_bytes: positive(
            m.max_presence_bytes,
            d.max_presence_bytes,
            MAX_MUC_PRESENCE_BYTES,
            &format!("{key}.max_presence_bytes"),
        )?,
        disco_items_page: positive(
            m.disco_items_page,
            d.disco_items_page,
            MAX_MUC_DISCO_PAGE,
            &format!("{key}.disco_items_page"),
        )?,
    };
    Ok(crate::muc::MucConfig {
        domain,
        vhost: vhost.to_owned(),
        lock_new_rooms: m.lock_new_rooms.unwrap_or(false),
        destroy_when_empty: m.destroy_when_empty.unwrap_or(true),
        room_creators: m
            .room_creators
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
        admins,
        max_occupants: m.max_occupants.unwrap_or(0),
        focus: None,
        limits,
        view: Default::default(),
    })
}

fn checked_domain(raw: &str, key: &str, seen: &mut HashSet<String>) -> Result<String, ConfigError> {
    let domain = raw.to_ascii_lowercase();
    if !valid_domain(&domain) {
        return Err(invalid(key, format!("{raw:?} is not a valid domain name")));
    }
    if !seen.insert(domain.clone()) {
        return Err(invalid(key, format!("{domain} is configured twice")));
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match Config::parse(text, Path::new("/base")) {
            Ok(_) => panic!("config should fail: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn embedded_defaults_are_valid() {
        let c = Config::parse(EMBEDDED_DEFAULTS, Path::new("/base")).expect("defaults parse");
        assert_eq!(c.vhosts[0].domain, "localhost");
        assert_eq!(c.vhosts[0].auth.plugin, "auth-anonymous");
        assert!(c.vhosts[0].auth.path.ends_with("auth_anonymous.wasm"));
        assert_eq!(c.data_dir, Path::new("/base/lilt-data"));
        assert_eq!(c.limits.max_stanza_bytes, 256 * 1024);
        assert_eq!(c.listeners.len(), 5);
        let focus = c.vhosts[0].focus.as_ref().expect("a focus on localhost");
        assert_eq!(focus.domain, "focus.localhost");
        assert_eq!(focus.jid.to_string(), "focus@auth.localhost/focus");
        let muc = c.vhosts[0].muc.as_ref().expect("muc");
        assert_eq!(muc.domain, "conference.localhost");
        assert!(muc.focus.is_some() && muc.admins.contains(&focus.jid.bare()));
        assert_eq!(c.sfu.bind.port(), 10000);
        assert_eq!(c.sfu.advertise, [std::net::IpAddr::from([127, 0, 0, 1])]);
        let plugins: Vec<(&str, Option<&str>)> = c.vhosts[0]
            .plugins
            .iter()
            .map(|p| (p.plugin.as_str(), p.component.as_deref()))
            .collect();
        assert_eq!(
            plugins,
            [
                ("speakerstats", Some("speakerstats.localhost")),
                ("conference-duration", Some("conferenceduration.localhost")),
                ("av-moderation", Some("avmoderation.localhost")),
            ]
        );
    }

    #[test]
    fn focus_and_sfu() {
        let v = |extra: &str| {
            format!("{MIN}[[vhosts]]\ndomain = \"meet.x\"\nauth = {{ plugin = \"p\" }}\n{extra}")
        };
        let e = err(&v("[vhosts.focus]\n"));
        assert!(
            e.starts_with("vhosts[0].focus:") && e.contains("MUC"),
            "{e}"
        );
        let muc = "[vhosts.muc]\ndomain = \"conference.meet.x\"\n";
        let e = err(&v(&format!(
            "{muc}[vhosts.focus]\njid = \"focus@meet.x\"\n"
        )));
        assert!(e.starts_with("vhosts[0].focus.jid:"), "{e}");
        let e = err(&v(&format!("{muc}[vhosts.focus]\njid = \"auth.meet.x\"\n")));
        assert!(e.starts_with("vhosts[0].focus.jid:"), "{e}");
        let e = err(&v(&format!(
            "{muc}[vhosts.focus]\ndomain = \"conference.meet.x\"\n"
        )));
        assert!(e.starts_with("vhosts[0].focus.domain:"), "{e}");
        let c = Config::parse(
            &v(&format!(
                "{muc}[vhosts.focus]\n[sfu]\nbind = \"0.0.0.0:4000\"\nadvertise = [\"203.0.113.9\"]\n\
                 public_url = \"wss://meet.x/colibri-ws/\"\nlast_n = 5\n"
            )),
            Path::new("/base"),
        )
        .expect("valid");
        assert_eq!(
            c.vhosts[0].focus.as_ref().expect("focus").domain,
            "focus.meet.x"
        );
        assert_eq!(c.sfu.advertise, [std::net::IpAddr::from([203, 0, 113, 9])]);
        assert_eq!(c.sfu.public_url.as_deref(), Some("wss://meet.x/colibri-ws"));
        assert_eq!(c.sfu.last_n, Some(5));
        for (bad, key) in [
            ("[sfu]\nlast_n = 5000\n", "sfu.last_n:"),
            ("[sfu]\nbind = \"nowhere\"\n", "sfu.bind:"),
            ("[sfu]\nadvertise = [\"0.0.0.0\"]\n", "sfu.advertise:"),
            ("[sfu]\nadvertise = [\"x\"]\n", "sfu.advertise:"),
            ("[sfu]\npublic_url = \"http://x\"\n", "sfu.public_url:"),
        ] {
            let e = err(&v(bad));
            assert!(e.starts_with(key), "{e}");
        }
    }

    const MIN: &str = "[[listeners]]\ntype = \"c2s\"\nbind = \"127.0.0.1:5222\"\n";

    #[test]
    fn errors_name_the_key() {
        let e = err(&format!(
            "{MIN}[[vhosts]]\ndomain = \"a b\"\nauth = {{ plugin = \"x\" }}\n"
        ));
        assert!(e.starts_with("vhosts[0].domain:"), "{e}");
        let e = err(&format!("{MIN}[[vhosts]]\ndomain = \"a\"\n"));
        assert!(e.starts_with("vhosts[0].auth:"), "{e}");
        let e = err("[[listeners]]\ntype = \"smtp\"\nbind = \"127.0.0.1:1\"\n");
        assert!(e.starts_with("listeners[0].type:"), "{e}");
        let e = err("[[listeners]]\ntype = \"c2s\"\nbind = \"nowhere\"\n");
        assert!(e.starts_with("listeners[0].bind:"), "{e}");
        let e = err(&format!("{MIN}[limits]\nmax_stanza_bytes = 0\n"));
        assert!(e.starts_with("limits.max_stanza_bytes:"), "{e}");
        let e = err(&format!("{MIN}bogus = 1\n"));
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn muc_and_plugins() {
        let v = |extra: &str| {
            format!("{MIN}[[vhosts]]\ndomain = \"meet.x\"\nauth = {{ plugin = \"p\" }}\n{extra}")
        };
        let c = Config::parse(
            &v(
                "[vhosts.muc]\ndomain = \"conference.meet.x\"\nroom_creators = [\"meet.x\"]\n\
                admins = [\"focus@auth.meet.x\"]\n[[vhosts.plugins]]\nplugin = \"speakerstats\"\n\
                component = \"speakerstats.meet.x\"\n[[vhosts.plugins]]\nplugin = \"branding\"\n\
                settings = { welcome_message = \"hi\" }\n",
            ),
            Path::new("/base"),
        )
        .expect("valid");
        let muc = c.vhosts[0].muc.as_ref().expect("muc");
        assert_eq!(muc.domain, "conference.meet.x");
        assert_eq!(muc.vhost, "meet.x");
        assert!(muc.destroy_when_empty && !muc.lock_new_rooms);
        assert_eq!(c.vhosts[0].plugins.len(), 2);
        assert_eq!(
            c.vhosts[0].plugins[0].component.as_deref(),
            Some("speakerstats.meet.x")
        );
        assert!(c.vhosts[0].plugins[1].path.ends_with("branding.wasm"));
        assert_eq!(c.vhosts[0].plugins[1].settings["welcome_message"], "hi");

        let e = err(&v(
            "[vhosts.muc]\ndomain = \"c.x\"\nroom_creators = [\"other.x\"]\n",
        ));
        assert!(e.starts_with("vhosts[0].muc.room_creators:"), "{e}");
        let e = err(&v(
            "[vhosts.muc]\ndomain = \"c.x\"\nadmins = [\"focus@auth.x/r\"]\n",
        ));
        assert!(e.starts_with("vhosts[0].muc.admins:"), "{e}");
        let e = err(&v("[vhosts.muc]\ndomain = \"meet.x\"\n"));
        assert!(e.starts_with("vhosts[0].muc.domain:"), "{e}");
        let e = err(&v("[[vhosts.plugins]]\nplugin = \"a b\"\n"));
        assert!(e.starts_with("vhosts[0].plugins[0].plugin:"), "{e}");
        let e = err(&v(
            "[[vhosts.plugins]]\nplugin = \"s\"\ncomponent = \"meet.x\"\n",
        ));
        assert!(e.starts_with("vhosts[0].plugins[0].component:"), "{e}");
    }

    #[test]
    fn muc_limits_default_and_bounded() {
        let v = |extra: &str| {
            format!(
                "{MIN}[[vhosts]]\ndomain = \"meet.x\"\nauth = {{ plugin = \"p\" }}\n\
                 [vhosts.muc]\ndomain = \"conference.meet.x\"\n{extra}"
            )
        };
        let c = Config::parse(&v(""), Path::new("/base")).expect("valid");
        let muc = c.vhosts[0].muc.as_ref().expect("muc");
        assert_eq!(muc.limits, crate::muc::MucLimits::default());
        assert_eq!(muc.limits.max_rooms_per_session, 32);
        let c = Config::parse(
            &v(
                "max_rooms_per_session = 2\nmax_rooms_per_user = 3\nmax_rooms = 4\n\
                max_presence_bytes = 5000\ndisco_items_page = 6\n",
            ),
            Path::new("/base"),
        )
        .expect("valid");
        let l = &c.vhosts[0].muc.as_ref().expect("muc").limits;
        assert_eq!(
            (
                l.max_rooms_per_session,
                l.max_rooms_per_user,
                l.max_rooms,
                l.max_presence_bytes,
                l.disco_items_page
            ),
            (2, 3, 4, 5000, 6)
        );
        for (key, bad, why) in [
            ("max_rooms_per_session", "0", "greater than zero"),
            ("max_rooms_per_session", "10001", "at most 10000"),
            ("max_rooms_per_user", "100001", "at most 100000"),
            ("max_rooms", "1000001", "at most 1000000"),
            ("max_presence_bytes", "1048577", "at most 1048576"),
            ("disco_items_page", "0", "greater than zero"),
            ("disco_items_page", "10001", "at most 10000"),
        ] {
            let e = err(&v(&format!("{key} = {bad}\n")));
            assert!(
                e.starts_with(&format!("vhosts[0].muc.{key}:")) && e.contains(why),
                "{key}: {e}"
            );
        }
    }

    #[test]
    fn duplicate_plugins_refused() {
        let v = |extra: &str| {
            format!(
                "{MIN}[[vhosts]]\ndomain = \"meet.x\"\nauth = {{ plugin = \"auth-internal\" }}\n{extra}"
            )
        };
        let e = err(&v(
            "[[vhosts.plugins]]\nplugin = \"branding\"\n[[vhosts.plugins]]\nplugin = \"speakerstats\"\n\
             [[vhosts.plugins]]\nplugin = \"branding\"\npath = \"other.wasm\"\n",
        ));
        assert!(e.starts_with("vhosts[0].plugins[2].plugin:"), "{e}");
        assert!(e.contains("vhosts[0].plugins[0]"), "{e}");
        // A hook plugin may share the auth plugin's name (roles separate their data), and two
        // vhosts may each load the same plugin.
        let c = Config::parse(
            &format!(
                "{}[[vhosts.plugins]]\nplugin = \"auth-internal\"\n\
                 [[vhosts]]\ndomain = \"other.x\"\nauth = {{ plugin = \"p\" }}\n\
                 [[vhosts.plugins]]\nplugin = \"auth-internal\"\n",
                v("")
            ),
            Path::new("/base"),
        )
        .expect("valid");
        assert_eq!(c.vhosts[0].plugins[0].plugin, "auth-internal");
        assert_eq!(c.vhosts[1].plugins[0].plugin, "auth-internal");
    }

    #[test]
    fn duplicate_domains_refused() {
        let e = err(&format!(
            "{MIN}[[vhosts]]\ndomain = \"a.example\"\nauth = {{ plugin = \"p\" }}\n\
             [[components]]\ndomain = \"A.example\"\nsecret = \"12345678\"\n"
        ));
        assert!(e.starts_with("components[0].domain:"), "{e}");
        // A component above a vhost would take the vhost's traffic.
        let e = err(&format!(
            "{MIN}[[vhosts]]\ndomain = \"meet.example\"\nauth = {{ plugin = \"p\" }}\n\
             [[components]]\ndomain = \"example\"\nsecret = \"12345678\"\n"
        ));
        assert!(
            e.starts_with("components[0].domain:") && e.contains("parent of meet.example"),
            "{e}"
        );
    }

    #[test]
    fn sizes_and_durations_are_bounded() {
        for (table, key) in [
            (
                "stream_management",
                "resume_timeout_seconds = 18446744073709551615",
            ),
            ("limits", "unauthenticated_timeout_seconds = 86401"),
            ("limits", "max_stanza_bytes = 1000000000000"),
            ("plugin_limits", "call_timeout_ms = 600001"),
            ("plugin_limits", "memory_mib = 1000000"),
        ] {
            let e = err(&format!(
                "{MIN}[{table}]\n{key}\n[[vhosts]]\ndomain = \"a.example\"\nauth = {{ plugin = \"p\" }}\n"
            ));
            assert!(e.contains("must be at most"), "{key}: {e}");
        }
    }

    #[test]
    fn identity_sources_are_named_by_grants() {
        let text = |extra: &str, grants: &str| {
            format!(
                "{MIN}{extra}\n[[vhosts]]\ndomain = \"meet.x\"\n[vhosts.auth]\nplugin = \"auth-jwt\"\ngrants = {grants}\n"
            )
        };
        let servers = "[[key_servers]]\nname = \"acme\"\nurl = \"https://keys.acme.example/asap/\"\n\
                       [[ldap]]\nname = \"corp\"\nurl = \"ldap://127.0.0.1:3890\"\nstarttls = true\n\
                       base_dn = \"dc=example,dc=org\"\nbind_dn = \"cn=svc,dc=example,dc=org\"\n\
                       bind_password = \"pw\"\n";
        let c = Config::parse(
            &text(servers, r#"["kv", "keys:acme", "ldap:corp"]"#),
            Path::new("/b"),
        )
        .expect("valid");
        let auth = &c.vhosts[0].auth;
        assert!(auth.grants.contains(Capability::Keys) && auth.grants.contains(Capability::Ldap));
        let keys = auth.sources.key_server.as_ref().expect("key server");
        assert_eq!(keys.url, "https://keys.acme.example/asap");
        assert_eq!(keys.timeout, Duration::from_secs(2));
        let ldap = auth.sources.ldap.as_ref().expect("profile");
        assert_eq!(ldap.base_dn, "dc=example,dc=org");
        assert!(ldap.starttls);
        // The service password never shows in debug output.
        assert!(!format!("{ldap:?}").contains("pw"));
        let err = |extra: &str, grants: &str| {
            Config::parse(&text(extra, grants), Path::new("/b"))
                .expect_err("invalid")
                .to_string()
        };
        assert!(
            err(
                "[[key_servers]]\nname = \"k\"\nurl = \"http://x.example\"\ntimeout_ms = 3000\n",
                "[]"
            )
            .starts_with("key_servers[0].timeout_ms: must be between 1 and 2999")
        );
        assert_eq!(
            err(servers, r#"["keys:nope"]"#),
            r#"vhosts[0].auth.grants[0]: no [[key_servers]] entry is named "nope""#
        );
        assert_eq!(
            err(servers, r#"["keys"]"#),
            r#"vhosts[0].auth.grants[0]: name what "keys" is for: "keys:<name of a [[key_servers]] or [[ldap]] entry>""#
        );
        assert_eq!(
            err(servers, r#"["kv:x"]"#),
            r#"vhosts[0].auth.grants[0]: "kv" takes no name"#
        );
        assert_eq!(
            err(servers, r#"["keys:acme", "keys:acme"]"#),
            r#"vhosts[0].auth.grants[1]: "keys" is listed twice"#
        );
        assert!(
            err(
                "[[key_servers]]\nname = \"k\"\nurl = \"ftp://x.example\"\n",
                "[]"
            )
            .starts_with("key_servers[0].url: must be an http")
        );
        assert!(
            err(
                "[[ldap]]\nname = \"c\"\nurl = \"ldaps://x\"\nstarttls = true\nbase_dn = \"dc=x\"\n",
                "[]"
            )
            .starts_with("ldap[0].starttls:")
        );
        assert!(
            err(
                "[[ldap]]\nname = \"c\"\nurl = \"ldap://x\"\nbase_dn = \"dc=x\"\nbind_dn = \"cn=a\"\n",
                "[]"
            )
            .starts_with("ldap[0].bind_dn:")
        );
        // Only auth plugins reach identity sources.
        let hook = format!(
            "{}[[vhosts.plugins]]\nplugin = \"branding\"\ngrants = [\"keys:acme\"]\n",
            text(servers, "[]")
        );
        assert_eq!(
            Config::parse(&hook, Path::new("/b"))
                .expect_err("hook plugins get no keys")
                .to_string(),
            r#"vhosts[0].plugins[0].grants[0]: only an auth plugin may be granted "keys""#
        );
    }

    #[test]
    fn grants_default_parse_and_refuse() {
        let v = |auth: &str, extra: &str| {
            format!(
                "{MIN}[[vhosts]]\ndomain = \"meet.x\"\n[vhosts.auth]\nplugin = \"auth-internal\"\n{auth}\n{extra}"
            )
        };
        let parse = |text: &str| Config::parse(text, Path::new("/base")).expect("valid");
        // Absent: today's behaviour.
        let c = parse(&v("", "[[vhosts.plugins]]\nplugin = \"branding\"\n"));
        assert_eq!(c.vhosts[0].auth.grants, Grants::AUTH_DEFAULT);
        assert_eq!(c.vhosts[0].plugins[0].grants, Grants::HOOKS_DEFAULT);
        assert_eq!(c.vhosts[0].auth.grants.to_string(), r#"["kv"]"#);
        assert_eq!(
            c.vhosts[0].plugins[0].grants.to_string(),
            r#"["kv", "stanzas", "timers"]"#
        );
        // Explicit, including none at all.
        let c = parse(&v(
            "grants = []",
            "[[vhosts.plugins]]\nplugin = \"a\"\ngrants = [\"timers\", \"kv\"]\n\
             [[vhosts.plugins]]\nplugin = \"b\"\ngrants = [\"stanzas\"]\n",
        ));
        assert_eq!(c.vhosts[0].auth.grants, Grants::NONE);
        let a = c.vhosts[0].plugins[0].grants;
        assert!(a.contains(Capability::Kv) && a.contains(Capability::Timers));
        assert!(!a.contains(Capability::Stanzas));
        assert_eq!(
            a,
            [Capability::Kv, Capability::Timers].into_iter().collect()
        );
        assert_eq!(
            c.vhosts[0].plugins[1].grants.iter().collect::<Vec<_>>(),
            [Capability::Stanzas]
        );
        let c = parse(&v("", "").replace(
            "[vhosts.auth]\nplugin = \"auth-internal\"",
            "auth = { plugin = \"p\", grants = [\"kv\"] }",
        ));
        assert_eq!(c.vhosts[0].auth.grants, Grants::AUTH_DEFAULT);

        // Refusals name the key.
        let e = err(&v(
            "",
            "[[vhosts.plugins]]\nplugin = \"a\"\n[[vhosts.plugins]]\nplugin = \"b\"\ngrants = [\"kvv\"]\n",
        ));
        assert_eq!(
            e,
            r#"vhosts[0].plugins[1].grants[0]: unknown capability "kvv" (known: kv, stanzas, timers, keys:<key server>, ldap:<profile>)"#
        );
        let e = err(&v("grants = [\"kv\", \"sockets\"]", ""));
        assert!(
            e.starts_with(r#"vhosts[0].auth.grants[1]: unknown capability "sockets""#),
            "{e}"
        );
        for reserved in ["http:crm", "http"] {
            let e = err(&v(&format!("grants = [{reserved:?}]"), ""));
            assert_eq!(
                e,
                format!("vhosts[0].auth.grants[0]: capability {reserved:?} is not available yet")
            );
        }
        let e = err(&v(
            "",
            "[[vhosts.plugins]]\nplugin = \"a\"\ngrants = [\"clock\"]\n",
        ));
        assert_eq!(
            e,
            r#"vhosts[0].plugins[0].grants[0]: "clock" is always granted; leave it out"#
        );
        let e = err(&v(
            "",
            "[[vhosts.plugins]]\nplugin = \"a\"\ngrants = [\"kv\", \"timers\", \"kv\"]\n",
        ));
        assert_eq!(e, r#"vhosts[0].plugins[0].grants[2]: "kv" is listed twice"#);
        let e = err(&v("grants = \"kv\"", ""));
        assert!(e.contains("grants"), "{e}");
    }

    #[test]
    fn settings_become_json() {
        let c = Config::parse(
            &format!(
                "{MIN}[[vhosts]]\ndomain = \"a.example\"\n[vhosts.auth]\nplugin = \"auth-internal\"\n\
                 settings = {{ iterations = 5000, mechanisms = [\"plain\"] }}\n"
            ),
            Path::new("/b"),
        )
        .expect("valid");
        assert_eq!(c.vhosts[0].auth.settings["iterations"], 5000);
        assert_eq!(c.vhosts[0].auth.settings["mechanisms"][0], "plain");
    }
}
