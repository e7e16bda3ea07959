//! XEP-0215 external service discovery: the STUN and TURN servers a client may use, with
//! time-limited TURN credentials in the TURN REST API scheme that coturn checks with
//! `use-auth-secret` / `static-auth-secret` (username `<expiry unix seconds>:<user>`, password
//! `base64(HMAC-SHA1(secret, username))`).
//!
//! Core (sans-IO): `answer` builds the reply to one `<services/>` or `<credentials/>` query
//! from an [`ExtDiscoConfig`], the requester and the time the router was given. The router
//! (router/mod.rs) decides who may ask (bound local sessions only) and advertises
//! [`NS`] on the vhost's disco#info when TURN is configured for it. Invariants: the secret
//! never leaves the server (only HMACs of it); every TURN entry carries credentials valid for
//! `ttl_secs` from now. Tests: `mod tests` below; end to end with a real coturn in
//! tests/all/turn.rs.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;

use crate::stanza::{self, Condition, ErrorType, Jid, StanzaError};
use crate::xml::Element;

/// The namespace lib-jitsi-meet asks first (`getStunAndTurnCredentials`).
pub const NS: &str = "urn:xmpp:extdisco:2";

/// What kind of server a service entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// STUN (RFC 8489): no credentials.
    Stun,
    /// TURN (RFC 8656) over plain UDP or TCP.
    Turn,
    /// TURN over TLS.
    Turns,
}

impl ServiceKind {
    /// The `type` attribute's value.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Stun => "stun",
            ServiceKind::Turn => "turn",
            ServiceKind::Turns => "turns",
        }
    }

    /// The kind called `s` (`stun`, `turn`, `turns`).
    pub fn parse(s: &str) -> Option<ServiceKind> {
        [ServiceKind::Stun, ServiceKind::Turn, ServiceKind::Turns]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// Whether its entries carry credentials.
    pub fn relays(self) -> bool {
        self != ServiceKind::Stun
    }
}

/// The transport of a service entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP (TLS over TCP for `turns`).
    Tcp,
}

impl Transport {
    /// The `transport` attribute's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }

    /// The transport called `s` (`udp`, `tcp`).
    pub fn parse(s: &str) -> Option<Transport> {
        match s {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            _ => None,
        }
    }
}

/// One advertised service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// STUN, TURN or TURNS.
    pub kind: ServiceKind,
    /// Its port.
    pub port: u16,
    /// Its transport.
    pub transport: Transport,
}

/// The STUN/TURN server clients are told about, and the secret it shares with us.
#[derive(Clone)]
pub struct ExtDiscoConfig {
    /// The name or IP address clients reach the TURN server at.
    pub host: String,
    /// coturn's `static-auth-secret`.
    pub secret: String,
    /// How long credentials stay valid, in seconds.
    pub ttl_secs: u64,
    /// The entries to advertise, in order.
    pub services: Vec<Service>,
    /// The vhosts that answer (`None`: every vhost).
    pub vhosts: Option<BTreeSet<String>>,
}

impl fmt::Debug for ExtDiscoConfig {
    /// Everything but the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtDiscoConfig")
            .field("host", &self.host)
            .field("secret", &"<redacted>")
            .field("ttl_secs", &self.ttl_secs)
            .field("services", &self.services)
            .field("vhosts", &self.vhosts)
            .finish()
    }
}

impl ExtDiscoConfig {
    /// Whether `vhost` answers external service discovery.
    pub fn serves(&self, vhost: &str) -> bool {
        self.vhosts.as_ref().is_none_or(|v| v.contains(vhost))
    }
}

/// TURN REST API credentials for `user`, valid until `expiry` (Unix seconds): the username
/// `<expiry>:<user>` and its password `base64(HMAC-SHA1(secret, username))`.
pub fn credentials(secret: &str, expiry: u64, user: &str) -> (String, String) {
    let username = format!("{expiry}:{user}");
    let mac = lilt_scram::hmac(
        lilt_scram::Hash::Sha1,
        secret.as_bytes(),
        username.as_bytes(),
    );
    let password = base64::engine::general_purpose::STANDARD.encode(mac);
    (username, password)
}

/// Whether `payload` is a query this module answers: `<services/>` or `<credentials/>` in
/// [`NS`].
pub fn is_query(payload: &Element) -> bool {
    payload.ns() == NS && matches!(payload.name(), "services" | "credentials")
}

/// The result for `iq` (a `get` whose only child satisfies [`is_query`]) from `requester`
/// (a bound local session), at `now_ms` milliseconds since the Unix epoch.
///
/// `<services type='turn'/>` lists only that kind; `<credentials><service host type port/>`
/// (XEP-0215 §3.3) lists the TURN entries matching the asked host, type and port.
///
/// # Errors
/// `bad-request` for an unknown `type` filter or a `<credentials/>` naming no service;
/// `item-not-found` when no relaying service matches a `<credentials/>` request.
pub fn answer(
    config: &ExtDiscoConfig,
    iq: &Element,
    requester: &Jid,
    now_ms: u64,
) -> Result<Element, StanzaError> {
    let bad = || StanzaError::new(ErrorType::Modify, Condition::BadRequest);
    let payload = iq.children().next().ok_or_else(bad)?;
    let expiry = now_ms / 1000 + config.ttl_secs;
    let user = requester.bare().to_string();
    let wanted: Vec<&Service> = match payload.name() {
        "services" => {
            let filter = match payload.attr("type") {
                None | Some("") => None,
                Some(t) => Some(ServiceKind::parse(t).ok_or_else(bad)?),
            };
            config
                .services
                .iter()
                .filter(|s| filter.is_none_or(|k| s.kind == k))
                .collect()
        }
        "credentials" => {
            let mut found = Vec::new();
            let asked: Vec<&Element> = payload
                .children()
                .filter(|c| c.name() == "service" && c.ns() == NS)
                .collect();
            if asked.is_empty() {
                return Err(bad());
            }
            for a in asked {
                let kind = a.attr("type").map(ServiceKind::parse);
                let port = a.attr("port").map(str::parse::<u16>);
                if matches!(kind, Some(None)) || matches!(port, Some(Err(_))) {
                    return Err(bad());
                }
                found.extend(config.services.iter().filter(|s| {
                    s.kind.relays()
                        && a.attr("host").is_none_or(|h| h == config.host)
                        && kind.flatten().is_none_or(|k| k == s.kind)
                        && port
                            .as_ref()
                            .is_none_or(|p| p.as_ref().is_ok_and(|p| *p == s.port))
                }));
            }
            if found.is_empty() {
                return Err(StanzaError::new(ErrorType::Cancel, Condition::ItemNotFound));
            }
            found
        }
        _ => return Err(bad()),
    };
    let mut list = Element::new(payload.name(), NS);
    for s in wanted {
        list.append_child(entry(config, s, expiry, &user));
    }
    let mut reply = stanza::iq_result(iq);
    reply.append_child(list);
    Ok(reply)
}

fn entry(config: &ExtDiscoConfig, s: &Service, expiry: u64, user: &str) -> Element {
    let mut el = Element::builder("service", NS)
        .attr("type", s.kind.as_str())
        .attr("host", config.host.as_str())
        .attr("port", s.port.to_string())
        .attr("transport", s.transport.as_str())
        .build();
    if s.kind.relays() {
        let (username, password) = credentials(&config.secret, expiry, user);
        el.set_attr("username", username);
        el.set_attr("password", password);
        el.set_attr("expires", xep0082(expiry));
        el.set_attr("restricted", "1");
    }
    el
}

/// Unix seconds as an XEP-0082 DateTime in UTC, e.g. `2026-01-01T00:00:00Z`.
fn xep0082(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf '%s' '1767225600:alice@meet.example.com' | openssl dgst -sha1 -hmac
    /// 'north-wind-secret' -binary | base64`
    const OPENSSL_PASSWORD: &str = "E+eSuQ9baOUEBFHzSDeVqrj50oE=";

    fn config() -> ExtDiscoConfig {
        ExtDiscoConfig {
            host: "turn.example.com".to_owned(),
            secret: "north-wind-secret".to_owned(),
            ttl_secs: 86_400,
            services: vec![
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
            ],
            vhosts: None,
        }
    }

    fn query(payload: Element) -> Element {
        Element::builder("iq", crate::xml::ns::CLIENT)
            .attr("type", "get")
            .attr("id", "q1")
            .attr("from", "alice@meet.example.com/web")
            .attr("to", "meet.example.com")
            .append(payload)
            .build()
    }

    fn alice() -> Jid {
        Jid::parse("alice@meet.example.com/web").expect("present")
    }

    /// 2025-12-31T00:00:00Z, one TTL before the vector's expiry.
    const NOW_MS: u64 = 1_767_139_200_000;

    #[test]
    fn credentials_match_an_independent_hmac() {
        let (user, pass) =
            credentials("north-wind-secret", 1_767_225_600, "alice@meet.example.com");
        assert_eq!(user, "1767225600:alice@meet.example.com");
        assert_eq!(pass, OPENSSL_PASSWORD);
    }

    #[test]
    fn services_lists_every_entry_with_credentials_on_turn_only() {
        let reply = answer(
            &config(),
            &query(Element::new("services", NS)),
            &alice(),
            NOW_MS,
        )
        .expect("present");
        assert_eq!(reply.attr("type"), Some("result"));
        assert_eq!(reply.attr("id"), Some("q1"));
        assert_eq!(reply.attr("to"), Some("alice@meet.example.com/web"));
        assert_eq!(reply.attr("from"), Some("meet.example.com"));
        let services = reply.get_child("services", NS).expect("present");
        let entries: Vec<&Element> = services.children().collect();
        assert_eq!(entries.len(), 4);
        let stun = entries[0];
        assert_eq!(stun.attr("type"), Some("stun"));
        assert_eq!(stun.attr("host"), Some("turn.example.com"));
        assert_eq!(stun.attr("port"), Some("3478"));
        assert_eq!(stun.attr("username"), None);
        assert_eq!(stun.attr("password"), None);
        for (e, kind, port, transport) in [
            (entries[1], "turn", "3478", "udp"),
            (entries[2], "turn", "3478", "tcp"),
            (entries[3], "turns", "5349", "tcp"),
        ] {
            assert_eq!(e.attr("type"), Some(kind));
            assert_eq!(e.attr("port"), Some(port));
            assert_eq!(e.attr("transport"), Some(transport));
            assert_eq!(
                e.attr("username"),
                Some("1767225600:alice@meet.example.com")
            );
            assert_eq!(e.attr("password"), Some(OPENSSL_PASSWORD));
            assert_eq!(e.attr("expires"), Some("2026-01-01T00:00:00Z"));
            assert_eq!(e.attr("restricted"), Some("1"));
        }
        // The secret itself is nowhere in the answer.
        let bytes = reply.to_bytes(crate::xml::ns::CLIENT);
        assert!(!String::from_utf8_lossy(&bytes).contains("north-wind-secret"));
    }

    #[test]
    fn type_filter_and_expiry_follow_the_clock() {
        let q = query(
            Element::builder("services", NS)
                .attr("type", "turns")
                .build(),
        );
        let reply = answer(&config(), &q, &alice(), NOW_MS + 61_500).expect("present");
        let entries: Vec<&Element> = reply
            .get_child("services", NS)
            .expect("present")
            .children()
            .collect();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].attr("type"), Some("turns"));
        assert_eq!(
            entries[0].attr("username"),
            Some("1767225661:alice@meet.example.com")
        );
        assert_eq!(entries[0].attr("expires"), Some("2026-01-01T00:01:01Z"));
        let bad = query(Element::builder("services", NS).attr("type", "ftp").build());
        let e = answer(&config(), &bad, &alice(), NOW_MS).expect_err("an error");
        assert_eq!(e.condition, Condition::BadRequest);
    }

    #[test]
    fn credentials_request_names_one_service() {
        let ask = |host: &str, kind: &str, port: &str| {
            query(
                Element::builder("credentials", NS)
                    .append(
                        Element::builder("service", NS)
                            .attr("host", host)
                            .attr("type", kind)
                            .attr("port", port)
                            .build(),
                    )
                    .build(),
            )
        };
        let reply = answer(
            &config(),
            &ask("turn.example.com", "turns", "5349"),
            &alice(),
            NOW_MS,
        )
        .expect("present");
        let list = reply.get_child("credentials", NS).expect("present");
        let entries: Vec<&Element> = list.children().collect();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].attr("password"), Some(OPENSSL_PASSWORD));
        let e = answer(
            &config(),
            &ask("other.example.com", "turn", "3478"),
            &alice(),
            NOW_MS,
        )
        .expect_err("an error");
        assert_eq!(e.condition, Condition::ItemNotFound);
        let e = answer(
            &config(),
            &query(Element::new("credentials", NS)),
            &alice(),
            NOW_MS,
        )
        .expect_err("an error");
        assert_eq!(e.condition, Condition::BadRequest);
    }

    #[test]
    fn datetimes_are_utc() {
        assert_eq!(xep0082(0), "1970-01-01T00:00:00Z");
        assert_eq!(xep0082(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(xep0082(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    /// The router with TURN on `a.example` only, and a session `u@a.example/web` (id 1).
    fn router() -> crate::router::Router {
        use std::sync::Arc;
        let mut r = crate::router::Router::new(
            crate::router::ServerInfo {
                name: "Lilt".into(),
                version: "0".into(),
                components: Vec::new(),
            },
            ["a.example".to_owned(), "b.example".to_owned()],
            Arc::new(crate::entropy::Seeded::new(1)),
        );
        let mut c = config();
        c.vhosts = Some(["a.example".to_owned()].into());
        r.set_extdisco(Some(Arc::new(c)));
        r.set_clock(NOW_MS);
        r.bind(
            &Jid::parse("u@a.example").expect("present"),
            Some("web"),
            1,
            None,
        )
        .expect("present");
        r
    }

    fn ask(r: &mut crate::router::Router, from: &str, to: &str, payload: Element) -> Element {
        let iq = Element::builder("iq", crate::xml::ns::CLIENT)
            .attr("type", "get")
            .attr("id", "e1")
            .attr("from", from)
            .attr("to", to)
            .append(payload)
            .build();
        let out = r.route(iq);
        assert_eq!(out.len(), 1, "{out:?}");
        out[0].stanza.element().clone()
    }

    fn condition(reply: &Element) -> Option<String> {
        let e = reply.get_child("error", crate::xml::ns::CLIENT)?;
        e.children().next().map(|c| c.name().to_owned())
    }

    #[test]
    fn the_router_answers_bound_sessions_of_enabled_vhosts() {
        let mut r = router();
        let reply = ask(
            &mut r,
            "u@a.example/web",
            "a.example",
            Element::new("services", NS),
        );
        assert_eq!(reply.attr("type"), Some("result"), "{reply:?}");
        let first_turn = reply
            .get_child("services", NS)
            .expect("present")
            .children()
            .find(|e| e.attr("type") == Some("turn"))
            .expect("present")
            .clone();
        assert_eq!(first_turn.attr("username"), Some("1767225600:u@a.example"));
        // Not a session bound here (a component): refused.
        r.add_component("comp.a.example", 7);
        let reply = ask(
            &mut r,
            "comp.a.example",
            "a.example",
            Element::new("services", NS),
        );
        assert_eq!(condition(&reply).as_deref(), Some("forbidden"));
        // A vhost without TURN does not know the query.
        let reply = ask(
            &mut r,
            "u@a.example/web",
            "b.example",
            Element::new("services", NS),
        );
        assert_eq!(condition(&reply).as_deref(), Some("service-unavailable"));
        // The legacy namespace is not served (lib-jitsi-meet's retry gets an error too).
        let reply = ask(
            &mut r,
            "u@a.example/web",
            "a.example",
            Element::new("services", "urn:xmpp:extdisco:1"),
        );
        assert_eq!(condition(&reply).as_deref(), Some("service-unavailable"));
    }

    #[test]
    fn disco_info_advertises_extdisco_where_configured() {
        let mut r = router();
        let features = |reply: &Element| -> Vec<String> {
            reply
                .get_child("query", crate::xml::ns::DISCO_INFO)
                .expect("present")
                .children()
                .filter_map(|f| f.attr("var").map(str::to_owned))
                .collect()
        };
        let disco = || Element::new("query", crate::xml::ns::DISCO_INFO);
        let a = ask(&mut r, "u@a.example/web", "a.example", disco());
        assert!(features(&a).iter().any(|f| f == NS), "{a:?}");
        let b = ask(&mut r, "u@a.example/web", "b.example", disco());
        assert!(!features(&b).iter().any(|f| f == NS), "{b:?}");
        r.set_extdisco(None);
        let a = ask(&mut r, "u@a.example/web", "a.example", disco());
        assert!(!features(&a).iter().any(|f| f == NS), "{a:?}");
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", config()).contains("north-wind"));
    }
}
