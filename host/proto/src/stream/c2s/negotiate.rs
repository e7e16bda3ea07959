//! The phases before a resource is bound, up to SASL success: the stream header (first, after
//! STARTTLS, after SASL), the features offered, STARTTLS, and the SASL exchange with the auth
//! plugin's answers. Owns `PreAuth` (encryption, failed attempts, the deadline), the vhost, and
//! `SaslExchange` while it runs; creates the `Login` (with its `Authenticated`) on success.
//! Spec: RFC 6120 §4.2–§4.3 (headers, features), §5 (STARTTLS), §6 (SASL).

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{
    Authenticated, Awaiting, C2sStream, Login, MAX_AUTH_FAILURES, Output, Phase, PreAuth,
    SaslExchange,
};
use crate::entropy;
use crate::identity::Identity;
use crate::sasl::{self, Mechanism, SaslFailure, SaslServer, SaslStep};
use crate::stanza::{self, Jid};
use crate::stream::error::StreamCondition;
use crate::stream::framing::Framing;
use crate::xml::{self, Element, ns};

impl C2sStream {
    /// A stream header from the peer: valid only where ours is still to be written.
    pub(super) fn stream_open(&mut self, header: xml::StreamHeader) {
        let to = header.to.as_deref().map(str::to_ascii_lowercase);
        let Some(known) = self.phase.pending_header() else {
            // Every other phase has written its header already.
            return self.stream_error(
                StreamCondition::NotWellFormed,
                Some("Unexpected stream header."),
            );
        };
        let from = known.or(to
            .as_deref()
            .filter(|d| self.config.vhosts.contains_key(*d)));
        self.io.header(from, self.config.entropy.as_ref());
        let known = known.map(str::to_owned);
        if header.default_ns != ns::CLIENT {
            return self.fail(
                StreamCondition::InvalidNamespace,
                Some("Expected jabber:client."),
            );
        }
        if header.version.as_deref() != Some("1.0") {
            return self.fail(
                StreamCondition::UnsupportedVersion,
                Some("Only XMPP 1.0 streams are served."),
            );
        }
        let Some(to) = to.filter(|d| self.config.vhosts.contains_key(d)) else {
            return self.fail(StreamCondition::HostUnknown, None);
        };
        if known.is_some_and(|v| v != to) {
            return self.fail(
                StreamCondition::HostUnknown,
                Some("The restarted stream names another host."),
            );
        }
        self.phase = match self.take_phase() {
            Phase::ExpectHeader { pre, .. } => Phase::ExpectAuth { vhost: to, pre },
            Phase::ExpectRestart(login) => Phase::ExpectBind(login),
            other => other,
        };
        let features = self.features();
        self.io.features(&features);
    }

    /// STARTTLS exists only on a plain byte stream (WebSocket and BOSH get TLS from HTTPS).
    fn starttls_offered(&self, pre: &PreAuth) -> bool {
        !pre.encrypted && self.config.starttls_available && !self.io.framing.is_framed()
    }

    /// What the current phase offers.
    fn features(&self) -> Vec<Element> {
        let mut features = Vec::new();
        let Some(policy) = self.vhost().and_then(|v| self.config.vhosts.get(v)) else {
            return features;
        };
        match &self.phase {
            Phase::ExpectAuth { pre, .. } => {
                if self.starttls_offered(pre) {
                    let mut tls = Element::new("starttls", ns::TLS);
                    if !policy.allow_unencrypted {
                        tls.append_child(Element::new("required", ns::TLS));
                    }
                    features.push(tls);
                }
                if pre.encrypted || policy.allow_unencrypted {
                    let mut mechs = Element::new("mechanisms", ns::SASL);
                    for m in &policy.mechanisms {
                        let mut el = Element::new("mechanism", ns::SASL);
                        el.append_text(m.name());
                        mechs.append_child(el);
                    }
                    features.push(mechs);
                }
            }
            Phase::ExpectBind(_) => {
                features.push(Element::new("bind", ns::BIND));
                let mut session = Element::new("session", ns::SESSION);
                session.append_child(Element::new("optional", ns::SESSION));
                features.push(session);
                if self.config.sm_enabled && self.io.framing != Framing::Bosh {
                    features.push(Element::new("sm", ns::SM));
                }
            }
            _ => {}
        }
        features
    }

    /// The transport finished the handshake `<proceed/>` asked for: a new stream begins.
    pub(super) fn tls_established(&mut self) {
        self.phase = match self.take_phase() {
            Phase::StartingTls { vhost, mut pre } => {
                pre.encrypted = true;
                self.io.parser.reset();
                Phase::ExpectHeader {
                    vhost: Some(vhost),
                    pre,
                }
            }
            other => other,
        };
    }

    /// `ExpectAuth`: STARTTLS or SASL `<auth/>`, nothing else.
    pub(super) fn auth_element(&mut self, now: Instant, el: Element) {
        let Phase::ExpectAuth { vhost, pre } = &self.phase else {
            return;
        };
        if el.is("starttls", ns::TLS) {
            if !self.starttls_offered(pre) {
                return self.stream_error(
                    StreamCondition::PolicyViolation,
                    Some("TLS is not available here."),
                );
            }
            self.io.write(&Element::new("proceed", ns::TLS));
            self.io.flush_writes();
            self.phase = match self.take_phase() {
                Phase::ExpectAuth { vhost, pre } => Phase::StartingTls { vhost, pre },
                other => other,
            };
            self.io.out.push_back(Output::StartTls);
            return;
        }
        if !el.is("auth", ns::SASL) {
            return self.stream_error(StreamCondition::NotAuthorized, Some("Authenticate first."));
        }
        let Some(policy) = self.config.vhosts.get(vhost) else {
            return;
        };
        if !pre.encrypted && !policy.allow_unencrypted {
            return self.auth_failure(SaslFailure::EncryptionRequired, None);
        }
        let mech = el.attr("mechanism").and_then(Mechanism::from_name);
        let Some(mech) = mech.filter(|m| policy.mechanisms.contains(m)) else {
            return self.auth_failure(SaslFailure::InvalidMechanism, None);
        };
        let initial = match decode_sasl_payload(&el.text()) {
            Ok(v) => v,
            Err(()) => return self.auth_failure(SaslFailure::IncorrectEncoding, None),
        };
        let cx = sasl::SaslContext {
            vhost: vhost.clone(),
            secret: self.config.sasl_secret.clone(),
            server_nonce: sasl::new_nonce(self.config.entropy.as_ref()),
        };
        let (server, step) = SaslServer::start(mech, initial, cx);
        self.phase = match self.take_phase() {
            Phase::ExpectAuth { vhost, pre } => Phase::Sasl {
                vhost,
                pre,
                sasl: Box::new(SaslExchange {
                    mech,
                    server,
                    awaiting: Awaiting::Peer,
                }),
            },
            other => other,
        };
        self.sasl_step(now, step);
    }

    /// `Sasl`, reading: the peer's `<response/>` or `<abort/>`.
    pub(super) fn sasl_element(&mut self, now: Instant, el: Element) {
        let Phase::Sasl { sasl, .. } = &mut self.phase else {
            return;
        };
        let step = if el.is("response", ns::SASL) {
            match decode_sasl_payload(&el.text()) {
                Ok(data) => sasl.server.response(data.unwrap_or_default()),
                Err(()) => SaslStep::Failure(SaslFailure::IncorrectEncoding),
            }
        } else if el.is("abort", ns::SASL) {
            sasl.server.abort()
        } else {
            return self.stream_error(
                StreamCondition::NotAuthorized,
                Some("SASL exchange in progress."),
            );
        };
        self.sasl_step(now, step);
    }

    /// The auth plugin answered (`Err`: it failed, which is a temporary failure to the peer).
    pub(super) fn plugin_answered(
        &mut self,
        now: Instant,
        answer: Result<impl FnOnce(&mut SaslServer) -> SaslStep, ()>,
    ) {
        let Phase::Sasl { sasl, .. } = &mut self.phase else {
            return;
        };
        if !matches!(sasl.awaiting, Awaiting::Plugin) {
            return;
        }
        sasl.awaiting = Awaiting::Peer;
        let step = match answer {
            Ok(apply) => apply(&mut sasl.server),
            Err(()) => SaslStep::Failure(SaslFailure::TemporaryAuthFailure),
        };
        self.sasl_step(now, step);
        self.drain_parser(now);
    }

    /// Act on what the mechanism says next.
    fn sasl_step(&mut self, now: Instant, step: SaslStep) {
        let Phase::Sasl { vhost, sasl, .. } = &mut self.phase else {
            return;
        };
        let mech = sasl.mech;
        match step {
            SaslStep::Challenge(data) => {
                let mut ch = Element::new("challenge", ns::SASL);
                ch.append_text(&encode_sasl_payload(&data));
                self.io.write(&ch);
            }
            SaslStep::CheckPassword { username, password } => {
                match normalize_username(&username, vhost) {
                    Some(username) => {
                        sasl.awaiting = Awaiting::Plugin;
                        let vhost = vhost.clone();
                        self.io.out.push_back(Output::CheckPassword {
                            vhost,
                            username,
                            password,
                        });
                    }
                    None => self.sasl_failed(mech, SaslFailure::NotAuthorized, None),
                }
            }
            SaslStep::FetchCredentials { username, hash } => {
                match normalize_username(&username, vhost) {
                    Some(username) => {
                        sasl.awaiting = Awaiting::Plugin;
                        let vhost = vhost.clone();
                        self.io.out.push_back(Output::FetchCredentials {
                            vhost,
                            username,
                            hash,
                        });
                    }
                    None => self.sasl_failed(mech, SaslFailure::NotAuthorized, None),
                }
            }
            SaslStep::Success {
                username,
                additional_data,
            } => {
                let node = if mech == Mechanism::Anonymous {
                    entropy::uuid(self.config.entropy.as_ref()).to_string()
                } else {
                    match normalize_username(&username, vhost) {
                        Some(n) => n,
                        None => return self.sasl_failed(mech, SaslFailure::NotAuthorized, None),
                    }
                };
                if self
                    .config
                    .vhosts
                    .get(vhost.as_str())
                    .is_some_and(|p| p.identify)
                {
                    let username = if mech == Mechanism::Anonymous {
                        String::new()
                    } else {
                        node.clone()
                    };
                    sasl.awaiting = Awaiting::Identity {
                        node,
                        additional_data,
                    };
                    let vhost = vhost.clone();
                    self.io.out.push_back(Output::Identify {
                        vhost,
                        mechanism: mech,
                        username,
                    });
                    return;
                }
                self.sasl_succeeded(now, &node, additional_data, None);
            }
            SaslStep::Failure(failure) => self.sasl_failed(mech, failure, None),
        }
    }

    /// The plugin said who the session is, or refused it.
    pub(super) fn identified(
        &mut self,
        now: Instant,
        result: Result<Option<Identity>, (SaslFailure, String)>,
    ) {
        let Phase::Sasl { sasl, .. } = &mut self.phase else {
            return;
        };
        let Awaiting::Identity { .. } = sasl.awaiting else {
            return;
        };
        let Awaiting::Identity {
            node,
            additional_data,
        } = std::mem::replace(&mut sasl.awaiting, Awaiting::Peer)
        else {
            return;
        };
        let mech = sasl.mech;
        match result {
            Ok(identity) => {
                self.sasl_succeeded(now, &node, additional_data, identity.map(Arc::new));
            }
            Err((failure, text)) => self.sasl_failed(mech, failure, Some(&text)),
        }
        self.drain_parser(now);
    }

    /// `<success/>`: the SASL phases end, a `Login` begins and waits for the restart.
    fn sasl_succeeded(
        &mut self,
        now: Instant,
        node: &str,
        additional_data: Option<Vec<u8>>,
        identity: Option<Arc<Identity>>,
    ) {
        let (vhost, mech) = match self.take_phase() {
            Phase::Sasl { vhost, sasl, .. } => (vhost, sasl.mech),
            other => {
                self.phase = other;
                return;
            }
        };
        let jid = Jid::bare_from(node, &vhost);
        let mut success = Element::new("success", ns::SASL);
        if let Some(data) = additional_data {
            success.append_text(&B64.encode(data));
        }
        self.io.write(&success);
        self.io.out.push_back(Output::Authenticated {
            jid: jid.clone(),
            mechanism: mech,
        });
        if !self.io.framing.is_framed() {
            self.io.parser.restart();
        }
        self.phase = Phase::ExpectRestart(Login {
            auth: Authenticated(jid),
            identity,
            deadline: now + self.config.unauthenticated_timeout,
        });
    }

    /// The mechanism failed (reported for audit), then the peer is told.
    fn sasl_failed(&mut self, mech: Mechanism, failure: SaslFailure, text: Option<&str>) {
        self.io.out.push_back(Output::AuthFailed {
            mechanism: mech,
            condition: failure.condition(),
        });
        self.auth_failure(failure, text);
    }

    /// `<failure/>`: back to `ExpectAuth`, one attempt fewer left.
    fn auth_failure(&mut self, failure: SaslFailure, text: Option<&str>) {
        let (vhost, mut pre) = match self.take_phase() {
            Phase::ExpectAuth { vhost, pre } | Phase::Sasl { vhost, pre, .. } => (vhost, pre),
            other => {
                self.phase = other;
                return;
            }
        };
        let mut el = Element::new("failure", ns::SASL);
        el.append_child(Element::new(failure.condition(), ns::SASL));
        if let Some(text) = text {
            let mut t = Element::new("text", ns::SASL);
            t.append_text(text);
            el.append_child(t);
        }
        self.io.write(&el);
        pre.failures += 1;
        let too_many = pre.failures >= MAX_AUTH_FAILURES;
        self.phase = Phase::ExpectAuth { vhost, pre };
        if too_many {
            self.stream_error(
                StreamCondition::PolicyViolation,
                Some("Too many failed authentication attempts."),
            );
        }
    }
}

/// Decode a SASL element's base64 text: absent/empty → `None`, `=` → empty (RFC 6120 §6.4.2).
fn decode_sasl_payload(text: &str) -> Result<Option<Vec<u8>>, ()> {
    let text = text.trim();
    match text {
        "" => Ok(None),
        "=" => Ok(Some(Vec::new())),
        _ => B64.decode(text).map(Some).map_err(|_| ()),
    }
}

fn encode_sasl_payload(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_owned()
    } else {
        B64.encode(data)
    }
}

/// The localpart a SASL username stands for on `vhost`: lowercased, `user@vhost` accepted,
/// anything that is not a valid localpart refused.
fn normalize_username(username: &str, vhost: &str) -> Option<String> {
    let node = match username.split_once('@') {
        Some((node, domain)) if domain.eq_ignore_ascii_case(vhost) => node,
        Some(_) => return None,
        None => username,
    };
    let node = node.to_lowercase();
    stanza::jid::valid_node(&node).then_some(node)
}
