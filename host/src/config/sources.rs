//! The identity sources auth plugins may be granted: key servers (`[[key_servers]]`, grant
//! `keys:<name>`) and directory profiles (`[[ldap]]`, grant `ldap:<profile>`). Connections,
//! TLS settings and service-account credentials live here, in the host's config, never in a
//! plugin's settings.
//!
//! Pure: validation only. Invariants: names are unique per kind; URLs have the right scheme;
//! timeouts and sizes are bounded. Tests: `mod tests` in `config/mod.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// `[[key_servers]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeyServer {
    name: String,
    url: String,
    timeout_ms: Option<u64>,
    max_key_bytes: Option<usize>,
    default_max_age_secs: Option<u64>,
}

/// A key server: public keys by key id at `<url>/<sha256-hex(kid)>.pem` (Jitsi's ASAP layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyServer {
    /// Its name, as granted (`keys:<name>`).
    pub name: String,
    /// The base URL (`http://` or `https://`), without a trailing `/`.
    pub url: String,
    /// Connect-and-answer limit of one fetch. Defaults to 2 s; must stay below the plugin
    /// call's wall-clock limit.
    pub timeout: Duration,
    /// Largest key file accepted. Defaults to 16 KiB.
    pub max_key_bytes: usize,
    /// How long a key is kept when the server sends no `Cache-Control: max-age` (and no
    /// `no-store`/`no-cache`). Defaults to 1 hour. A server's `max-age` is capped at a day.
    pub default_max_age: Duration,
}

/// `[[ldap]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLdap {
    name: String,
    url: String,
    #[serde(default)]
    starttls: bool,
    ca_file: Option<PathBuf>,
    base_dn: String,
    bind_dn: Option<String>,
    bind_password: Option<String>,
    bind_password_file: Option<PathBuf>,
    timeout_ms: Option<u64>,
    pool_size: Option<usize>,
}

/// A directory profile: where the directory is, how to reach it safely, and the service
/// account searches run as.
#[derive(Clone, PartialEq, Eq)]
pub struct LdapProfile {
    /// Its name, as granted (`ldap:<profile>`).
    pub name: String,
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// Upgrade `ldap://` with StartTLS before anything else.
    pub starttls: bool,
    /// CA certificate(s) (PEM) to verify the directory's certificate with, instead of the
    /// system roots.
    pub ca_file: Option<PathBuf>,
    /// Every DN a plugin binds as or searches under must be this one or below it.
    pub base_dn: String,
    /// The service account searches run as (`None`: anonymous searches).
    pub bind_dn: Option<String>,
    /// Its password.
    pub bind_password: Option<String>,
    /// Limit of one operation (connect, bind or search). Defaults to 2 s; must stay below
    /// the plugin call's wall-clock limit.
    pub timeout: Duration,
    /// Service-account connections kept open. Defaults to 4.
    pub pool_size: usize,
}

impl std::fmt::Debug for LdapProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapProfile")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("base_dn", &self.base_dn)
            .field("bind_dn", &self.bind_dn)
            .finish_non_exhaustive()
    }
}

fn checked_name(name: &str, key: &str, seen: &[&str]) -> Result<(), ConfigError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(key, "names use letters, digits, '-' and '_'"));
    }
    if seen.contains(&name) {
        return Err(invalid(key, format!("{name:?} is configured twice")));
    }
    Ok(())
}

/// Default limit of one key fetch or directory operation.
const DEFAULT_TIMEOUT_MS: u64 = 2000;

/// A source's timeout: a plugin waits for it inside one call, so it must end before the
/// call's wall-clock limit does.
fn bounded_ms(v: Option<u64>, key: &str, wall: Duration) -> Result<Duration, ConfigError> {
    let ms = v.unwrap_or(DEFAULT_TIMEOUT_MS);
    let timeout = Duration::from_millis(ms);
    if ms == 0 || timeout >= wall {
        return Err(invalid(
            key,
            format!(
                "must be between 1 and {} (below plugin_limits.call_wall_timeout_ms)",
                wall.as_millis().saturating_sub(1)
            ),
        ));
    }
    Ok(timeout)
}

pub(super) fn validate_key_servers(
    raw: Vec<RawKeyServer>,
    wall: Duration,
) -> Result<Vec<Arc<KeyServer>>, ConfigError> {
    let mut out: Vec<Arc<KeyServer>> = Vec::new();
    for (i, k) in raw.into_iter().enumerate() {
        let key = format!("key_servers[{i}]");
        let seen: Vec<&str> = out.iter().map(|k| k.name.as_str()).collect();
        checked_name(&k.name, &format!("{key}.name"), &seen)?;
        let url = k.url.trim_end_matches('/').to_owned();
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() < 10 {
            return Err(invalid(
                format!("{key}.url"),
                "must be an http:// or https:// URL",
            ));
        }
        let max_key_bytes = k.max_key_bytes.unwrap_or(16 * 1024);
        if !(256..=1 << 20).contains(&max_key_bytes) {
            return Err(invalid(
                format!("{key}.max_key_bytes"),
                "must be between 256 and 1048576",
            ));
        }
        let default_max_age_secs = k.default_max_age_secs.unwrap_or(3600);
        if default_max_age_secs > 86_400 {
            return Err(invalid(
                format!("{key}.default_max_age_secs"),
                "must be at most 86400",
            ));
        }
        out.push(Arc::new(KeyServer {
            name: k.name,
            url,
            timeout: bounded_ms(k.timeout_ms, &format!("{key}.timeout_ms"), wall)?,
            max_key_bytes,
            default_max_age: Duration::from_secs(default_max_age_secs),
        }));
    }
    Ok(out)
}

pub(super) fn validate_ldap(
    raw: Vec<RawLdap>,
    rel: &dyn Fn(PathBuf) -> PathBuf,
    wall: Duration,
) -> Result<Vec<Arc<LdapProfile>>, ConfigError> {
    let mut out: Vec<Arc<LdapProfile>> = Vec::new();
    for (i, l) in raw.into_iter().enumerate() {
        let key = format!("ldap[{i}]");
        let seen: Vec<&str> = out.iter().map(|p| p.name.as_str()).collect();
        checked_name(&l.name, &format!("{key}.name"), &seen)?;
        let ldaps = l.url.starts_with("ldaps://");
        if !(ldaps || l.url.starts_with("ldap://")) {
            return Err(invalid(
                format!("{key}.url"),
                "must be an ldap:// or ldaps:// URL",
            ));
        }
        if ldaps && l.starttls {
            return Err(invalid(
                format!("{key}.starttls"),
                "ldaps:// is TLS already; StartTLS is for ldap://",
            ));
        }
        if l.base_dn.trim().is_empty() {
            return Err(invalid(format!("{key}.base_dn"), "must not be empty"));
        }
        let bind_password = match (l.bind_password, l.bind_password_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    format!("{key}.bind_password_file"),
                    "set bind_password or bind_password_file, not both",
                ));
            }
            (Some(p), None) => Some(p),
            (None, Some(f)) => {
                let f = rel(f);
                let text = std::fs::read_to_string(&f).map_err(|e| {
                    invalid(
                        format!("{key}.bind_password_file"),
                        format!("cannot read {}: {e}", f.display()),
                    )
                })?;
                Some(text.trim_end_matches(['\r', '\n']).to_owned())
            }
            (None, None) => None,
        };
        if bind_password.is_some() != l.bind_dn.is_some() {
            return Err(invalid(
                format!("{key}.bind_dn"),
                "bind_dn and a bind password go together",
            ));
        }
        let pool_size = l.pool_size.unwrap_or(4);
        if !(1..=64).contains(&pool_size) {
            return Err(invalid(
                format!("{key}.pool_size"),
                "must be between 1 and 64",
            ));
        }
        out.push(Arc::new(LdapProfile {
            name: l.name,
            url: l.url,
            starttls: l.starttls,
            ca_file: l.ca_file.map(rel),
            base_dn: l.base_dn,
            bind_dn: l.bind_dn,
            bind_password,
            timeout: bounded_ms(l.timeout_ms, &format!("{key}.timeout_ms"), wall)?,
            pool_size,
        }));
    }
    Ok(out)
}

/// What a `keys:<name>` or `ldap:<profile>` grant names, resolved.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The key server of a `keys:<name>` grant.
    pub key_server: Option<Arc<KeyServer>>,
    /// The directory profile of an `ldap:<profile>` grant.
    pub ldap: Option<Arc<LdapProfile>>,
}

impl Sources {
    /// Resolve a grant `name` of the form `keys:<name>` or `ldap:<profile>` into `self`.
    /// `Ok(false)`: not such a grant.
    pub(super) fn grant(
        &mut self,
        name: &str,
        key: &str,
        key_servers: &[Arc<KeyServer>],
        ldap: &[Arc<LdapProfile>],
    ) -> Result<bool, ConfigError> {
        if let Some(server) = name.strip_prefix("keys:") {
            if self.key_server.is_some() {
                return Err(invalid(key, "one key server per plugin"));
            }
            let found = key_servers
                .iter()
                .find(|k| k.name == server)
                .ok_or_else(|| {
                    invalid(key, format!("no [[key_servers]] entry is named {server:?}"))
                })?;
            self.key_server = Some(found.clone());
            return Ok(true);
        }
        if let Some(profile) = name.strip_prefix("ldap:") {
            if self.ldap.is_some() {
                return Err(invalid(key, "one directory profile per plugin"));
            }
            let found = ldap
                .iter()
                .find(|p| p.name == profile)
                .ok_or_else(|| invalid(key, format!("no [[ldap]] entry is named {profile:?}")))?;
            self.ldap = Some(found.clone());
            return Ok(true);
        }
        Ok(false)
    }
}
