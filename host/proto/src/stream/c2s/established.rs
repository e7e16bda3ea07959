//! The phases of a bound session: `Established` (stanzas are checked, stamped with the full
//! JID and routed with `from` and `to` parsed, the only parse of a client stanza's addresses;
//! deliveries are written) and `Detached` (the transport is gone, deliveries queue for
//! resumption). Owns the `Session`: the full JID and the XEP-0198 state, which
//! exists only here, and the handoff of a new transport on resumption.
//! Spec: RFC 6120 §8 (stanza addressing), RFC 3921 §3 (legacy session), XEP-0198.

use std::time::Instant;

use super::{C2sStream, Output, PendingInput, Phase, SM_REQUEST_EVERY, Session};
use crate::stanza::{self, Condition, ErrorType, Jid, Kind, Outbound, Stanza, StanzaError};
use crate::stream::error::StreamCondition;
use crate::stream::framing::Framing;
use crate::stream::sm::SmState;
use crate::xml::{Element, ns};

impl C2sStream {
    /// Resume this (detached or still attached) session on a new transport whose stream is
    /// already open and authenticated: `input` continues that stream, `h` is the client's count.
    /// Without `keep_resumable` (the id was single-use), the session ends with its new
    /// transport instead of waiting to be resumed again. `_encrypted` (whether the new
    /// transport is) changes nothing once a session is bound; the parameter stays for callers.
    pub fn resume(
        &mut self,
        now: Instant,
        input: PendingInput,
        h: u32,
        _encrypted: bool,
        keep_resumable: bool,
    ) {
        self.io.replace_transport(input);
        let session = match self.take_phase() {
            Phase::Established(session) | Phase::Detached { session, .. }
                if session.sm.is_some() =>
            {
                session
            }
            // No session to resume: end without a word (the old transport is gone).
            other => {
                self.phase = other;
                return self.end();
            }
        };
        self.phase = Phase::Established(session);
        let Phase::Established(Session { sm: Some(sm), .. }) = &mut self.phase else {
            return;
        };
        sm.resumable &= keep_resumable;
        if let Err(e) = sm.ack(h) {
            return self.stream_error(StreamCondition::UndefinedCondition, Some(&e.to_string()));
        }
        let resumed = Element::builder("resumed", ns::SM)
            .attr("previd", sm.id.clone().unwrap_or_default())
            .attr("h", sm.inbound.to_string())
            .build();
        self.io.write(&resumed);
        for stanza in sm.unacked() {
            self.io.write_outbound(stanza);
        }
        self.drain_parser(now);
    }

    /// `Established`: a stanza or an XEP-0198 element from the peer.
    pub(super) fn established(&mut self, mut el: Element) {
        if el.ns() == ns::SM {
            return self.sm_element(&el);
        }
        let Some(kind) = Kind::of(&el) else {
            return self.stream_error(StreamCondition::UnsupportedStanzaType, None);
        };
        let Phase::Established(session) = &mut self.phase else {
            return;
        };
        if let Some(sm) = session.sm.as_mut() {
            sm.count_inbound();
        }
        let full = session.full.clone();
        if let Some(from) = el.attr("from") {
            match Jid::parse(from) {
                Ok(f) if f == full || f == full.bare() => {}
                _ => return self.stream_error(StreamCondition::InvalidFrom, None),
            }
        }
        let to = match el.attr("to").map(Jid::parse) {
            None => None,
            Some(Ok(jid)) => {
                el.set_attr("to", jid.to_string());
                Some(jid)
            }
            Some(Err(_)) => {
                return self.reply_error(
                    &el,
                    &StanzaError::new(ErrorType::Modify, Condition::JidMalformed),
                );
            }
        };
        el.set_attr("from", full.to_string());
        if kind == Kind::Iq && el.get_child("session", ns::SESSION).is_some() && to.is_none() {
            // RFC 3921 legacy session establishment: a no-op today.
            let reply = stanza::iq_result(&el);
            return self.deliver(reply.into());
        }
        // The addresses travel parsed: nothing after this parses them again.
        self.io
            .out
            .push_back(Output::Route(Stanza::new(el, full, to)));
    }

    /// `<enable/>`, `<r/>`, `<a/>` (XEP-0198 §3–§4).
    fn sm_element(&mut self, el: &Element) {
        let Phase::Established(session) = &mut self.phase else {
            return;
        };
        match el.name() {
            "enable" => {
                if session.sm.is_some()
                    || !self.config.sm_enabled
                    || self.io.framing == Framing::Bosh
                {
                    let mut failed = Element::new("failed", ns::SM);
                    failed.append_child(Element::new("unexpected-request", ns::STANZAS));
                    return self.io.write(&failed);
                }
                session.sm = Some(SmState::new(
                    self.config.sm_max_unacked,
                    self.config.sm_max_unacked_bytes,
                ));
                if matches!(el.attr("resume"), Some("true" | "1")) {
                    self.io.out.push_back(Output::EnableResumption);
                } else {
                    self.io.write(&Element::new("enabled", ns::SM));
                }
            }
            "r" => {
                let Some(sm) = &session.sm else { return };
                let a = Element::builder("a", ns::SM)
                    .attr("h", sm.inbound.to_string())
                    .build();
                self.io.write(&a);
            }
            "a" => {
                let Some(sm) = session.sm.as_mut() else {
                    return;
                };
                let Some(h) = el.attr("h").and_then(|h| h.parse::<u32>().ok()) else {
                    return self.stream_error(
                        StreamCondition::UndefinedCondition,
                        Some("Missing or bad h."),
                    );
                };
                if let Err(e) = sm.ack(h) {
                    self.stream_error(StreamCondition::UndefinedCondition, Some(&e.to_string()));
                }
            }
            _ => self.stream_error(StreamCondition::UnsupportedStanzaType, None),
        }
    }

    /// The router granted resumption (answer to `Output::EnableResumption`).
    pub(super) fn resumption_enabled(&mut self, id: String) {
        let Some(sm) = self.phase.session_mut().and_then(|s| s.sm.as_mut()) else {
            return;
        };
        sm.resumable = true;
        sm.id = Some(id.clone());
        let enabled = Element::builder("enabled", ns::SM)
            .attr("id", id)
            .attr("resume", "true")
            .attr("max", self.config.sm_resume_timeout.as_secs().to_string())
            .build();
        self.io.write(&enabled);
    }

    /// A stanza for the session: written while attached, queued for replay while detached,
    /// dropped before a bind.
    pub(super) fn deliver(&mut self, stanza: Outbound) {
        let attached = match &self.phase {
            Phase::Established(_) => true,
            Phase::Detached { .. } => false,
            _ => return,
        };
        if attached {
            self.io.write_outbound(&stanza);
        }
        let Some(sm) = self.phase.session_mut().and_then(|s| s.sm.as_mut()) else {
            return;
        };
        if !sm.push_outbound(stanza) {
            return self.stream_error(
                StreamCondition::PolicyViolation,
                Some("Too many unacknowledged stanzas."),
            );
        }
        if attached && sm.unacked_len() % SM_REQUEST_EVERY == 0 {
            self.io.write(&Element::new("r", ns::SM));
        }
    }

    /// The transport is gone: a resumable session detaches, anything else ends.
    pub(super) fn transport_closed(&mut self, now: Instant) {
        match self.take_phase() {
            Phase::Established(session) if session.sm.as_ref().is_some_and(|sm| sm.resumable) => {
                self.io.discard_writes();
                self.phase = Phase::Detached {
                    session,
                    until: now + self.config.sm_resume_timeout,
                };
                self.io.out.push_back(Output::Detached);
            }
            other => {
                self.phase = other;
                self.close();
            }
        }
    }
}
