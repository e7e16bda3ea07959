//! The authenticated phases before a session exists: `ExpectBind` (a `<bind/>` request, or a
//! XEP-0198 `<resume/>`), `Binding` and `Resuming` while the router answers. They carry the
//! `Login` (the `Authenticated` JID, the plugin's identity, the deadline); a successful bind
//! turns it into the `Session` of the established phase.
//! Spec: RFC 6120 §7 (resource binding), XEP-0198 §5 (resumption request).

use super::{C2sStream, Output, Phase, Session};
use crate::stanza::{Condition, ErrorType, Jid, Kind, StanzaError};
use crate::stream::error::StreamCondition;
use crate::xml::{Element, ns};

impl C2sStream {
    /// `ExpectBind`: only a bind request (or a resumption) may come now.
    pub(super) fn bind_element(&mut self, el: Element) {
        if el.is("enable", ns::SM) || el.is("r", ns::SM) || el.is("a", ns::SM) {
            // XEP-0198 §3: enabling before binding is only meaningful for resumption.
            let mut failed = Element::new("failed", ns::SM);
            failed.append_child(Element::new("unexpected-request", ns::STANZAS));
            return self.io.write(&failed);
        }
        if el.is("resume", ns::SM) {
            return self.resume_request(&el);
        }
        if Kind::of(&el) != Some(Kind::Iq) {
            return self.stream_error(
                StreamCondition::NotAuthorized,
                Some("Bind a resource first."),
            );
        }
        let Some(bind) = el
            .get_child("bind", ns::BIND)
            .filter(|_| el.attr("type") == Some("set"))
        else {
            let err = StanzaError::new(ErrorType::Auth, Condition::NotAuthorized)
                .with_text("Bind a resource first.");
            return self.reply_error(&el, &err);
        };
        let resource = bind
            .get_child("resource", ns::BIND)
            .map(Element::text)
            .filter(|r| !r.trim().is_empty());
        let Phase::ExpectBind(login) = &self.phase else {
            return;
        };
        if let Some(r) = &resource
            && login.auth.jid().with_resource(r).is_err()
        {
            return self.reply_error(
                &el,
                &StanzaError::new(ErrorType::Modify, Condition::BadRequest),
            );
        }
        let bind = Output::Bind {
            jid: login.auth.jid().clone(),
            resource,
            identity: login.identity.clone(),
        };
        self.phase = match self.take_phase() {
            Phase::ExpectBind(login) => Phase::Binding {
                login,
                iq_id: el.attr("id").unwrap_or_default().to_owned(),
            },
            other => other,
        };
        self.io.out.push_back(bind);
    }

    /// `<resume/>` (XEP-0198 §5): ask the router for the detached session.
    fn resume_request(&mut self, el: &Element) {
        let previd = el.attr("previd").map(str::to_owned);
        let h = el.attr("h").and_then(|h| h.parse::<u32>().ok());
        let (Some(previd), Some(h)) = (previd, h) else {
            let mut failed = Element::new("failed", ns::SM);
            failed.append_child(Element::new("bad-request", ns::STANZAS));
            return self.io.write(&failed);
        };
        self.phase = match self.take_phase() {
            Phase::ExpectBind(login) => {
                self.io.out.push_back(Output::Resume {
                    previd,
                    h,
                    jid: login.auth.jid().clone(),
                });
                Phase::Resuming(login)
            }
            other => other,
        };
    }

    /// The router's answer to `Output::Bind`.
    pub(super) fn bound(&mut self, result: Result<Jid, StanzaError>) {
        let (login, iq_id) = match self.take_phase() {
            Phase::Binding { login, iq_id } => (login, iq_id),
            other => {
                self.phase = other;
                return;
            }
        };
        match result {
            Ok(full) => {
                let mut jid = Element::new("jid", ns::BIND);
                jid.append_text(&full.to_string());
                let mut bind = Element::new("bind", ns::BIND);
                bind.append_child(jid);
                let mut iq = Element::builder("iq", ns::CLIENT)
                    .attr("type", "result")
                    .attr("id", iq_id)
                    .build();
                iq.append_child(bind);
                self.io.write(&iq);
                self.phase = Phase::Established(Session { full, sm: None });
            }
            Err(err) => {
                let iq = Element::builder("iq", ns::CLIENT)
                    .attr("type", "set")
                    .attr("id", iq_id)
                    .build();
                self.phase = Phase::ExpectBind(login);
                self.reply_error(&iq, &err);
            }
        }
    }

    /// The router could not resume (unknown or expired id): binding is still possible.
    pub(super) fn resume_failed(&mut self, now: std::time::Instant) {
        match self.take_phase() {
            Phase::Resuming(login) => {
                self.phase = Phase::ExpectBind(login);
                let mut failed = Element::new("failed", ns::SM);
                failed.append_child(Element::new("item-not-found", ns::STANZAS));
                self.io.write(&failed);
                self.drain_parser(now);
            }
            other => self.phase = other,
        }
    }
}
