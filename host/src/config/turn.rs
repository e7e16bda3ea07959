//! `[turn]`: the STUN/TURN server (coturn) that vhosts advertise to clients over XEP-0215,
//! and the secret it shares with Lilt for time-limited credentials (coturn's
//! `use-auth-secret` + `static-auth-secret`). Absent by default: there is no TURN server
//! unless one is configured.
//!
//! Pure: validation only (a `secret_file` is read here). Invariants: every error names its
//! key (`turn.services[2].transport`); the secret is never printed. Tests: `mod tests` below;
//! end to end with a real coturn in tests/all/turn.rs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::router::extdisco::{ExtDiscoConfig, Service, ServiceKind, Transport};
use crate::stanza::jid::valid_domain;

/// Credentials last a day by default (coturn's and Prosody's `turn_external_ttl` default).
const DEFAULT_TTL_SECS: u64 = 86_400;
/// Shortest and longest credential lifetimes accepted.
const TTL_RANGE: std::ops::RangeInclusive<u64> = 60..=7 * 86_400;
/// Shortest secret accepted.
const MIN_SECRET: usize = 16;

/// `[turn]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTurn {
    host: String,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    ttl_secs: Option<u64>,
    vhosts: Option<Vec<String>>,
    services: Option<Vec<RawService>>,
}

/// One `[[turn.services]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(rename = "type")]
    kind: String,
    port: u32,
    transport: Option<String>,
}

/// The services advertised when `services` is absent: coturn's default listeners.
const DEFAULT_SERVICES: [Service; 4] = [
    Service {
        kind: ServiceKind::Stun,
        port: 3478,
        transport: Transport::Udp,
    },
    Service {
        kind: ServiceKind::Turn,
        port: 3478,
        transport: Transport::Udp,
    },
    Service {
        kind: ServiceKind::Turn,
        port: 3478,
        transport: Transport::Tcp,
    },
    Service {
        kind: ServiceKind::Turns,
        port: 5349,
        transport: Transport::Tcp,
    },
];

/// Validate `[turn]`; `vhosts` are the configured vhost domains and `rel` makes a relative
/// `secret_file` relative to the config file.
pub(super) fn validate_turn(
    raw: RawTurn,
    vhosts: &[String],
    rel: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<ExtDiscoConfig, ConfigError> {
    let host = validate_host(&raw.host)?;
    let secret = match (raw.secret, raw.secret_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "turn.secret_file",
                "set turn.secret or turn.secret_file, not both",
            ));
        }
        (None, None) => {
            return Err(invalid(
                "turn.secret",
                "missing; set secret (or secret_file) to coturn's static-auth-secret",
            ));
        }
        (Some(s), None) => checked_secret(s, "turn.secret")?,
        (None, Some(f)) => {
            let f = rel(f);
            checked_secret(read_secret(&f)?, "turn.secret_file")?
        }
    };
    let ttl_secs = raw.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if !TTL_RANGE.contains(&ttl_secs) {
        return Err(invalid(
            "turn.ttl_secs",
            format!(
                "must be between {} and {} seconds",
                TTL_RANGE.start(),
                TTL_RANGE.end()
            ),
        ));
    }
    let services = match raw.services {
        None => DEFAULT_SERVICES.to_vec(),
        Some(list) => validate_services(list)?,
    };
    let vhosts = match raw.vhosts {
        None => None,
        Some(list) => {
            let mut set = BTreeSet::new();
            for v in list {
                let v = v.to_ascii_lowercase();
                if !vhosts.contains(&v) {
                    return Err(invalid(
                        "turn.vhosts",
                        format!("{v:?} is not a configured vhost"),
                    ));
                }
                set.insert(v);
            }
            if set.is_empty() {
                return Err(invalid(
                    "turn.vhosts",
                    "empty; leave it out to advertise TURN on every vhost",
                ));
            }
            Some(set)
        }
    };
    Ok(ExtDiscoConfig {
        host,
        secret,
        ttl_secs,
        services,
        vhosts,
    })
}

/// A host clients can put in `turn:HOST:PORT`: a domain name, an IPv4 address, or an IPv6
/// address in brackets.
fn validate_host(raw: &str) -> Result<String, ConfigError> {
    let host = raw.trim().to_ascii_lowercase();
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(host);
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if inner.parse::<std::net::Ipv6Addr>().is_ok() {
            return Ok(host);
        }
    } else if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(invalid(
            "turn.host",
            format!("write an IPv6 address in brackets: \"[{host}]\""),
        ));
    }
    if valid_domain(&host) && !host.contains(':') {
        return Ok(host);
    }
    Err(invalid(
        "turn.host",
        format!("{raw:?} is not a host name or IP address (the port goes in turn.services)"),
    ))
}

fn read_secret(f: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(f).map_err(|e| {
        invalid(
            "turn.secret_file",
            format!("cannot read {}: {e}", f.display()),
        )
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

fn checked_secret(secret: String, key: &str) -> Result<String, ConfigError> {
    if secret.chars().count() < MIN_SECRET {
        return Err(invalid(
            key,
            format!("the secret must be at least {MIN_SECRET} characters"),
        ));
    }
    if secret.chars().any(char::is_whitespace) {
        return Err(invalid(
            key,
            "the secret must not contain spaces or line breaks (coturn's static-auth-secret cannot)",
        ));
    }
    Ok(secret)
}

fn validate_services(list: Vec<RawService>) -> Result<Vec<Service>, ConfigError> {
    if list.is_empty() {
        return Err(invalid(
            "turn.services",
            "empty; leave it out for the defaults (stun and turn on 3478, turns on 5349)",
        ));
    }
    let mut out: Vec<Service> = Vec::new();
    for (i, s) in list.into_iter().enumerate() {
        let key = format!("turn.services[{i}]");
        let kind = ServiceKind::parse(&s.kind).ok_or_else(|| {
            invalid(
                format!("{key}.type"),
                format!("unknown type {:?}; expected stun, turn or turns", s.kind),
            )
        })?;
        let port = u16::try_from(s.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid(format!("{key}.port"), "must be between 1 and 65535"))?;
        let transport = match s.transport.as_deref() {
            None if kind == ServiceKind::Turns => Transport::Tcp,
            None => Transport::Udp,
            Some(t) => Transport::parse(t).ok_or_else(|| {
                invalid(
                    format!("{key}.transport"),
                    format!("unknown transport {t:?}; expected udp or tcp"),
                )
            })?,
        };
        if kind == ServiceKind::Turns && transport == Transport::Udp {
            return Err(invalid(
                format!("{key}.transport"),
                "turns is TURN over TLS, which runs on tcp",
            ));
        }
        let service = Service {
            kind,
            port,
            transport,
        };
        if out.contains(&service) {
            return Err(invalid(key, "listed twice"));
        }
        out.push(service);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    const BASE: &str = r#"
[[listeners]]
type = "c2s"
bind = "127.0.0.1:5222"

[[vhosts]]
domain = "meet.example.com"
auth = { plugin = "auth-anonymous" }

[[vhosts]]
domain = "guest.example.com"
auth = { plugin = "auth-anonymous" }
"#;

    fn parse(turn: &str) -> Result<Config, ConfigError> {
        Config::parse(&format!("{BASE}\n[turn]\n{turn}"), Path::new("/base"))
    }

    fn err(turn: &str) -> String {
        match parse(turn) {
            Ok(_) => panic!("config should fail: {turn}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn absent_means_no_turn() {
        let c = Config::parse(BASE, Path::new("/base")).expect("parses");
        assert!(c.turn.is_none());
    }

    #[test]
    fn defaults_follow_coturn() {
        let c = parse("host = \"turn.example.com\"\nsecret = \"0123456789abcdef\"").expect("ok");
        let t = c.turn.expect("turn");
        assert_eq!(t.host, "turn.example.com");
        assert_eq!(t.ttl_secs, 86_400);
        assert_eq!(t.services, DEFAULT_SERVICES);
        assert!(t.serves("meet.example.com") && t.serves("guest.example.com"));
        assert!(!format!("{t:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn services_vhosts_and_secret_file() {
        let dir = std::env::temp_dir().join(format!("lilt-turn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("turn.secret");
        std::fs::write(&file, "from-a-file-0123456789\n").expect("write");
        let c = parse(&format!(
            "host = \"[2001:db8::1]\"\nsecret_file = {:?}\nttl_secs = 3600\nvhosts = [\"Meet.example.com\"]\n\
             services = [{{ type = \"turn\", port = 3478, transport = \"tcp\" }}, {{ type = \"turns\", port = 443 }}]",
            file.display().to_string()
        ))
        .expect("ok");
        let _ = std::fs::remove_dir_all(&dir);
        let t = c.turn.expect("turn");
        assert_eq!(t.host, "[2001:db8::1]");
        assert_eq!(t.secret, "from-a-file-0123456789");
        assert_eq!(t.ttl_secs, 3600);
        assert!(t.serves("meet.example.com") && !t.serves("guest.example.com"));
        assert_eq!(
            t.services,
            [
                Service {
                    kind: ServiceKind::Turn,
                    port: 3478,
                    transport: Transport::Tcp
                },
                Service {
                    kind: ServiceKind::Turns,
                    port: 443,
                    transport: Transport::Tcp
                }
            ]
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let ok_secret = "secret = \"0123456789abcdef\"";
        for (turn, needle) in [
            (ok_secret.to_owned(), "missing field `host`"),
            ("host = \"t.example\"".to_owned(), "turn.secret: missing"),
            (
                "host = \"t.example\"\nsecret = \"short\"".to_owned(),
                "turn.secret: the secret must be at least 16",
            ),
            (
                "host = \"t.example\"\nsecret = \"0123456789abcdef\"\nsecret_file = \"x\""
                    .to_owned(),
                "turn.secret_file: set turn.secret or turn.secret_file, not both",
            ),
            (
                "host = \"t.example\"\nsecret_file = \"/nonexistent/turn.secret\"".to_owned(),
                "turn.secret_file: cannot read /nonexistent/turn.secret",
            ),
            (
                format!("host = \"t.example:3478\"\n{ok_secret}"),
                "turn.host: \"t.example:3478\" is not a host name",
            ),
            (
                format!("host = \"2001:db8::1\"\n{ok_secret}"),
                "turn.host: write an IPv6 address in brackets",
            ),
            (
                format!("host = \"t.example\"\n{ok_secret}\nttl_secs = 5"),
                "turn.ttl_secs: must be between 60",
            ),
            (
                format!("host = \"t.example\"\n{ok_secret}\nvhosts = [\"other.example\"]"),
                "turn.vhosts: \"other.example\" is not a configured vhost",
            ),
            (
                format!("host = \"t.example\"\n{ok_secret}\nservices = []"),
                "turn.services: empty",
            ),
            (
                format!(
                    "host = \"t.example\"\n{ok_secret}\nservices = [{{ type = \"ftp\", port = 21 }}]"
                ),
                "turn.services[0].type: unknown type \"ftp\"",
            ),
            (
                format!(
                    "host = \"t.example\"\n{ok_secret}\nservices = [{{ type = \"turn\", port = 0 }}]"
                ),
                "turn.services[0].port: must be between 1 and 65535",
            ),
            (
                format!(
                    "host = \"t.example\"\n{ok_secret}\nservices = [{{ type = \"turn\", port = 1, transport = \"sctp\" }}]"
                ),
                "turn.services[0].transport: unknown transport \"sctp\"",
            ),
            (
                format!(
                    "host = \"t.example\"\n{ok_secret}\nservices = [{{ type = \"turns\", port = 5349, transport = \"udp\" }}]"
                ),
                "turn.services[0].transport: turns is TURN over TLS",
            ),
            (
                format!(
                    "host = \"t.example\"\n{ok_secret}\nservices = [{{ type = \"stun\", port = 3478 }}, {{ type = \"stun\", port = 3478 }}]"
                ),
                "turn.services[1]: listed twice",
            ),
            (
                format!("host = \"t.example\"\n{ok_secret}\nrealm = \"x\""),
                "unknown field `realm`",
            ),
        ] {
            let e = err(&turn);
            assert!(
                e.contains(needle),
                "{turn}\n  gave: {e}\n  wanted: {needle}"
            );
        }
    }
}
