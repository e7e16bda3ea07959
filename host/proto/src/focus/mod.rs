//! The conference focus (Jicofo's role), in process: it answers the conference request at
//! `focus.DOMAIN`, is in every room of its vhost as the occupant `focus`, and runs one Jingle
//! session per participant whose transport is an SFU endpoint. Sources one participant signals
//! reach every other one as `source-add`/`source-remove`.
//!
//! Core (sans-IO): stanzas addressed to the focus go in (`handle`), answers of the bridge go in
//! (`allocated`); stanzas to route and `BridgeRequest`s come out. The bridge is driven the way
//! Jicofo drives a Videobridge over colibri2 (allocate an endpoint, then tell it the remote
//! transport and sources, release it), so the SFU could run as its own process later.
//!
//! Invariants: every Jingle IQ a participant receives comes from `ROOM@MUC/focus` (the focus
//! sends to the occupant JID; the MUC rewrites the addresses) with the session's `sid`; a
//! participant is invited only once two or more participants are in the room; a participant
//! hears of another's sources only after its own `session-accept`, and only the first layer
//! of a simulcast group (the SFU forwards that one); an SSRC belongs to one participant.
//! Wire shapes: jingle.rs (codec), docs/focus.md. Tests: focus/tests.rs; end to end
//! tests/all/meeting.rs.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::entropy::Entropy;
use crate::jingle::{self, Action, Candidate, EndpointSources};
use crate::stanza::{self, Condition, ErrorType, Jid, Stanza, StanzaError};
use crate::xml::{Element, ns};

/// Namespace of the conference request and of Jicofo's own elements.
pub const NS_FOCUS: &str = "http://jitsi.org/protocol/focus";
/// Namespace of a moderator's audio mute request.
pub const NS_MUTE_AUDIO: &str = "http://jitsi.org/jitmeet/audio";
/// Namespace of a moderator's video mute request.
pub const NS_MUTE_VIDEO: &str = "http://jitsi.org/jitmeet/video";
/// Namespace of a moderator's screen-share mute request.
pub const NS_MUTE_DESKTOP: &str = "http://jitsi.org/jitmeet/desktop";
/// Namespace of Jitsi's `json-message` payloads (what the AV moderation component sends).
pub const NS_JITMEET: &str = "http://jitsi.org/jitmeet";

/// The nick the focus has in every room (lib-jitsi-meet tells the focus by it).
pub const FOCUS_NICK: &str = "focus";

/// Settings of one vhost's focus.
#[derive(Debug, Clone)]
pub struct FocusConfig {
    /// The vhost, e.g. `meet.example.com`.
    pub vhost: String,
    /// Where clients send the conference request: `focus.meet.example.com`.
    pub domain: String,
    /// The focus's own full JID, `focus@auth.meet.example.com/focus`.
    pub jid: Jid,
    /// The vhost's MUC service, `conference.meet.example.com`.
    pub muc: String,
    /// Vhost domains whose users may start a conference; empty means anyone.
    pub room_creators: Vec<String>,
}

/// The room a stanza for the focus is about, when it names one: the `room` of a conference
/// request, or of an AV moderation `json-message`. Routing shards use it to find the shard
/// that holds the room and its conference.
pub fn room_of(stanza: &Element) -> Option<Jid> {
    let room = stanza
        .children()
        .find_map(|child| match (child.name(), child.ns()) {
            ("conference", NS_FOCUS) => child.attr("room").map(str::to_owned),
            ("json-message", NS_JITMEET) => {
                serde_json::from_str::<serde_json::Value>(&child.text())
                    .ok()
                    .and_then(|v| v["room"].as_str().map(str::to_owned))
            }
            _ => None,
        })?;
    Jid::parse(&room).ok().map(|r| r.bare())
}

/// What the SFU gave an endpoint: what the participant needs to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTransport {
    /// ICE username fragment.
    pub ufrag: String,
    /// ICE password.
    pub pwd: String,
    /// SHA-256 fingerprint of the SFU's DTLS certificate, `AB:CD:…`.
    pub fingerprint: String,
    /// The SFU's ICE candidates.
    pub candidates: Vec<Candidate>,
    /// The bridge channel (colibri WebSocket) URL of this endpoint.
    pub web_socket: Option<String>,
    /// The SSRCs the SFU sends its own RTCP from (audio, video).
    pub feedback_ssrcs: (u32, u32),
}

/// What the focus asks of the SFU (colibri2's verbs).
#[derive(Debug, Clone, PartialEq)]
pub enum BridgeRequest {
    /// Create endpoint `endpoint` in `conference` (creating the conference when new); answered
    /// with `Focus::allocated`.
    Allocate {
        /// Conference id on the SFU.
        conference: String,
        /// Endpoint id (the participant's nick).
        endpoint: String,
    },
    /// The participant's side of the transport (from `session-accept` or `transport-info`).
    Connect {
        /// Conference id.
        conference: String,
        /// Endpoint id.
        endpoint: String,
        /// The participant's ICE username fragment.
        ufrag: String,
        /// The participant's ICE password.
        pwd: String,
        /// The participant's DTLS certificate fingerprint: (hash function, value).
        fingerprint: Option<(String, String)>,
        /// Candidates it signalled (often mDNS names the SFU cannot use).
        candidates: Vec<Candidate>,
    },
    /// Every source the participant sends now (replaces what was said before).
    Sources {
        /// Conference id.
        conference: String,
        /// Endpoint id.
        endpoint: String,
        /// Its sources and groups, simulcast included.
        sources: EndpointSources,
    },
    /// The endpoint is gone (left, terminated, or being re-invited).
    Release {
        /// Conference id.
        conference: String,
        /// Endpoint id.
        endpoint: String,
    },
    /// The conference is over.
    Expire {
        /// Conference id.
        conference: String,
    },
}

/// What one input made the focus do.
#[derive(Debug, Default)]
pub struct FocusOutput {
    /// Stanzas to route, from the focus's JIDs.
    pub stanzas: Vec<Element>,
    /// Requests for the SFU.
    pub bridge: Vec<BridgeRequest>,
}

/// Where a participant's Jingle session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Session {
    /// Not invited (alone in the room, or its session ended).
    None,
    /// Waiting for the SFU's endpoint (the bridge answers requests in order, so the answer
    /// that comes is the one for this allocation).
    Allocating,
    /// `session-initiate` sent (as iq `offer`), no `session-accept` yet.
    Offered { sid: String, offer: String },
    /// Accepted: the participant hears of sources from now on.
    Active { sid: String },
}

impl Session {
    fn sid(&self) -> Option<&str> {
        match self {
            Session::Offered { sid, .. } | Session::Active { sid } => Some(sid),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Participant {
    real: Jid,
    role: String,
    affiliation: String,
    /// Join order, for handing ownership on.
    joined: u64,
    session: Session,
    /// What it sends (as signalled, simulcast included).
    sources: EndpointSources,
    /// What it has been told of the others' sources, by owner.
    told: BTreeMap<String, EndpointSources>,
}

#[derive(Debug)]
struct Conference {
    /// The conference id on the SFU.
    id: String,
    /// The room's bare JID.
    room: Jid,
    participants: BTreeMap<String, Participant>,
    /// Media types under AV moderation, with the nicks allowed to unmute (as the AV
    /// moderation component last said).
    moderated: BTreeMap<String, BTreeSet<String>>,
}

/// One vhost's focus.
#[derive(Debug)]
pub struct Focus {
    config: FocusConfig,
    entropy: Arc<dyn Entropy>,
    /// Conferences by room bare JID.
    conferences: HashMap<Jid, Conference>,
    /// Room by conference id.
    by_id: HashMap<String, Jid>,
    next_id: u64,
}

/// The media a mute request's namespace is about, as AV moderation names it.
fn mute_media(ns: &str) -> &'static str {
    match ns {
        NS_MUTE_VIDEO => "video",
        NS_MUTE_DESKTOP => "desktop",
        _ => "audio",
    }
}

/// The error a Jingle IQ for a session we do not know gets (XEP-0166 §7.2).
fn unknown_session() -> StanzaError {
    StanzaError::new(ErrorType::Cancel, Condition::ItemNotFound)
        .with_app("unknown-session", jingle::NS_ERRORS)
}

impl Focus {
    /// A focus with no conferences.
    pub fn new(config: FocusConfig, entropy: Arc<dyn Entropy>) -> Focus {
        Focus {
            config,
            entropy,
            conferences: HashMap::new(),
            by_id: HashMap::new(),
            next_id: 1,
        }
    }

    /// Its settings.
    pub fn config(&self) -> &FocusConfig {
        &self.config
    }

    /// The presence payload the focus joins rooms with (no addresses).
    pub fn join_presence() -> Element {
        let mut p = Element::new("presence", ns::CLIENT);
        let mut props = Element::new("conference-properties", NS_FOCUS);
        props.append_child(
            Element::builder("property", NS_FOCUS)
                .attr("key", "support-terminate-restart")
                .attr("value", "true")
                .build(),
        );
        p.append_child(props);
        p
    }

    /// Whether a stanza to `to` is for this focus.
    pub fn owns(&self, to: &Jid) -> bool {
        to.domain() == self.config.domain || to.bare() == self.config.jid.bare()
    }

    /// Handle one stanza addressed to the focus (its domain or its JID).
    pub fn handle(&mut self, parsed: &Stanza) -> FocusOutput {
        let mut out = FocusOutput::default();
        let (stanza, from) = (parsed.element(), parsed.from());
        let Some(to) = parsed.to() else {
            return out;
        };
        let result = if to.domain() == self.config.domain {
            self.component_request(stanza, from, &mut out)
        } else {
            match stanza.name() {
                "presence" => {
                    self.presence(stanza, from, &mut out);
                    Ok(())
                }
                "iq" => self.iq(stanza, from, &mut out),
                "message" => {
                    self.component_message(stanza, from, &mut out);
                    Ok(())
                }
                _ => Ok(()),
            }
        };
        if let Err(e) = result
            && let Some(reply) = stanza::error_reply(stanza, &e)
        {
            out.stanzas.push(reply);
        }
        out
    }

    /// The SFU's answer to `BridgeRequest::Allocate`: invite the participant.
    pub fn allocated(
        &mut self,
        conference: &str,
        endpoint: &str,
        transport: Result<LocalTransport, String>,
    ) -> FocusOutput {
        let mut out = FocusOutput::default();
        let Some(room) = self.by_id.get(conference).cloned() else {
            return out;
        };
        let sid = self.random_hex(6);
        let Some(conf) = self.conferences.get_mut(&room) else {
            return out;
        };
        let still_wanted = conf
            .participants
            .get(endpoint)
            .is_some_and(|p| p.session == Session::Allocating);
        if !still_wanted {
            // It left meanwhile: give the endpoint back.
            if transport.is_ok() {
                out.bridge.push(BridgeRequest::Release {
                    conference: conference.to_owned(),
                    endpoint: endpoint.to_owned(),
                });
            }
            return out;
        }
        let transport = match transport {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(message = "The SFU could not allocate an endpoint.", room = %room, endpoint, error = %e);
                if let Some(p) = conf.participants.get_mut(endpoint) {
                    p.session = Session::None;
                }
                return out;
            }
        };
        // Everyone else's sources, as receivers are told of them.
        let mut told = BTreeMap::new();
        for (nick, other) in &conf.participants {
            if nick != endpoint && !other.sources.is_empty() {
                told.insert(nick.clone(), other.sources.for_receivers());
            }
        }
        let bridge =
            EndpointSources::bridge(transport.feedback_ssrcs.0, transport.feedback_ssrcs.1);
        let offer_transport = jingle::Transport {
            ufrag: Some(transport.ufrag.clone()),
            pwd: Some(transport.pwd.clone()),
            fingerprints: vec![jingle::Fingerprint {
                hash: "sha-256".to_owned(),
                setup: Some("actpass".to_owned()),
                value: transport.fingerprint.clone(),
            }],
            candidates: transport.candidates.clone(),
            web_socket: transport.web_socket.clone(),
        };
        let initiate = jingle::session_initiate(&jingle::Offer {
            sid: &sid,
            initiator: &self.config.jid,
            transport: &offer_transport,
            sources: std::iter::once(&bridge).chain(told.values()).collect(),
            bridge_session: &conf.id,
        });
        let to = format!("{}/{endpoint}", conf.room);
        let iq = self.set_iq(&to, initiate);
        let offer = iq.attr("id").unwrap_or_default().to_owned();
        if let Some(p) = self
            .conferences
            .get_mut(&room)
            .and_then(|c| c.participants.get_mut(endpoint))
        {
            p.session = Session::Offered { sid, offer };
            p.told = told;
        }
        out.stanzas.push(iq);
        out
    }

    fn component_request(
        &mut self,
        stanza: &Element,
        from: &Jid,
        out: &mut FocusOutput,
    ) -> Result<(), StanzaError> {
        if stanza.name() != "iq" {
            return Ok(());
        }
        if !matches!(stanza.attr("type"), Some("get" | "set")) {
            return Ok(());
        }
        let payload = stanza
            .children()
            .next()
            .ok_or_else(|| StanzaError::new(ErrorType::Modify, Condition::BadRequest))?;
        match (payload.name(), payload.ns()) {
            ("conference", NS_FOCUS) => self.conference_request(stanza, payload, from, out),
            ("query", ns::DISCO_INFO) => {
                let identity = ("component", "focus", "Lilt focus");
                let features = [ns::DISCO_INFO, NS_FOCUS, ns::PING];
                out.stanzas
                    .push(disco_info(stanza, Some(identity), &features));
                Ok(())
            }
            ("ping", ns::PING) => {
                out.stanzas.push(stanza::iq_result(stanza));
                Ok(())
            }
            _ => Err(StanzaError::service_unavailable()),
        }
    }

    /// `<conference room=… machine-uid=…/>`: make sure the focus is in the room, then say
    /// `ready`. The room is created by the focus's own join, so that every client finds it
    /// there.
    fn conference_request(
        &mut self,
        iq: &Element,
        request: &Element,
        from: &Jid,
        out: &mut FocusOutput,
    ) -> Result<(), StanzaError> {
        let room = request
            .attr("room")
            .and_then(|r| Jid::parse(r).ok())
            .filter(|r| r.is_bare() && r.node().is_some())
            .ok_or_else(|| {
                StanzaError::new(ErrorType::Modify, Condition::BadRequest)
                    .with_text("The conference request needs a room JID.")
            })?;
        if room.domain() != self.config.muc {
            return Err(StanzaError::new(ErrorType::Modify, Condition::BadRequest)
                .with_text("That room is not on this vhost's MUC service."));
        }
        if room.node().is_some_and(|n| n.to_lowercase() != n) {
            return Err(StanzaError::new(ErrorType::Modify, Condition::BadRequest)
                .with_text("Room names are lowercase."));
        }
        let exists = self.conferences.contains_key(&room);
        if !exists
            && !self.config.room_creators.is_empty()
            && !self.config.room_creators.iter().any(|d| d == from.domain())
        {
            return Err(StanzaError::new(ErrorType::Auth, Condition::NotAuthorized)
                .with_text("not authorized user domain"));
        }
        if !exists {
            self.join(&room, out);
        }
        let mut reply = stanza::iq_result(iq);
        let mut conf = Element::builder("conference", NS_FOCUS)
            .attr("room", room.to_string())
            .attr("ready", "true")
            .attr("focusjid", self.config.jid.bare().to_string())
            .build();
        // Jicofo says `authentication` when only some users may start conferences (the
        // secure-domain setting); visitors are not supported.
        let authentication = if self.config.room_creators.is_empty() {
            "false"
        } else {
            "true"
        };
        for (name, value) in [
            ("authentication", authentication),
            ("visitors-supported", "false"),
        ] {
            conf.append_child(
                Element::builder("property", NS_FOCUS)
                    .attr("name", name)
                    .attr("value", value)
                    .build(),
            );
        }
        reply.append_child(conf);
        out.stanzas.push(reply);
        Ok(())
    }

    /// Join `room` (creating it) and track it.
    fn join(&mut self, room: &Jid, out: &mut FocusOutput) {
        self.track(room);
        let mut p = Focus::join_presence();
        p.set_attr("from", self.config.jid.to_string());
        p.set_attr("to", format!("{room}/{FOCUS_NICK}"));
        p.append_child(Element::new("x", ns::MUC));
        out.stanzas.push(p);
    }

    /// The conference of `room`, created when new.
    fn track(&mut self, room: &Jid) -> &mut Conference {
        if !self.conferences.contains_key(room) {
            let id = self.random_hex(8);
            self.by_id.insert(id.clone(), room.clone());
            self.conferences.insert(
                room.clone(),
                Conference {
                    id,
                    room: room.clone(),
                    participants: BTreeMap::new(),
                    moderated: BTreeMap::new(),
                },
            );
        }
        self.conferences.get_mut(room).expect("inserted just above")
    }

    /// A presence the room sent the focus: its own (110), or an occupant's.
    fn presence(&mut self, stanza: &Element, from: &Jid, out: &mut FocusOutput) {
        let (room, Some(nick)) = (from.bare(), from.resource()) else {
            return;
        };
        if room.domain() != self.config.muc {
            return;
        }
        let kind = stanza.attr("type");
        if nick == FOCUS_NICK {
            match kind {
                None => {
                    self.track(&room);
                }
                Some("unavailable" | "error") => {
                    if kind == Some("error") {
                        tracing::warn!(message = "The focus could not join a room.", room = %room);
                    }
                    self.end(&room, out);
                }
                _ => {}
            }
            return;
        }
        let item = stanza
            .get_child("x", ns::MUC_USER)
            .and_then(|x| x.get_child("item", ns::MUC_USER));
        match kind {
            None => {
                let Some(real) = item
                    .and_then(|i| i.attr("jid"))
                    .and_then(|j| Jid::parse(j).ok())
                else {
                    return;
                };
                let role = item.and_then(|i| i.attr("role")).unwrap_or("participant");
                let affiliation = item.and_then(|i| i.attr("affiliation")).unwrap_or("none");
                let joined = self.next_id;
                self.next_id += 1;
                let conf = self.track(&room);
                let new = !conf.participants.contains_key(nick);
                let p = conf
                    .participants
                    .entry(nick.to_owned())
                    .or_insert_with(|| Participant {
                        real: real.clone(),
                        role: String::new(),
                        affiliation: String::new(),
                        joined,
                        session: Session::None,
                        sources: EndpointSources::new(nick),
                        told: BTreeMap::new(),
                    });
                p.real = real;
                p.role = role.to_owned();
                p.affiliation = affiliation.to_owned();
                if new {
                    self.ensure_owner(&room, out);
                    self.invite_all(&room, out);
                }
            }
            Some("unavailable") => self.left(&room, nick, out),
            _ => {}
        }
    }

    /// Jicofo's rule without authentication: some participant is always an owner. The
    /// longest-present one is made owner when none is.
    fn ensure_owner(&mut self, room: &Jid, out: &mut FocusOutput) {
        let Some(conf) = self.conferences.get(room) else {
            return;
        };
        if conf.participants.values().any(|p| p.affiliation == "owner") {
            return;
        }
        let Some((nick, _)) = conf.participants.iter().min_by_key(|(_, p)| p.joined) else {
            return;
        };
        let mut query = Element::new("query", ns::MUC_ADMIN);
        query.append_child(
            Element::builder("item", ns::MUC_ADMIN)
                .attr("nick", nick.clone())
                .attr("affiliation", "owner")
                .build(),
        );
        let iq = self.set_iq(&room.to_string(), query);
        out.stanzas.push(iq);
    }

    /// Invite everyone without a session, once two or more are here.
    fn invite_all(&mut self, room: &Jid, out: &mut FocusOutput) {
        let Some(conf) = self.conferences.get_mut(room) else {
            return;
        };
        if conf.participants.len() < 2 {
            return;
        }
        for (nick, p) in conf.participants.iter_mut() {
            if p.session == Session::None {
                p.session = Session::Allocating;
                out.bridge.push(BridgeRequest::Allocate {
                    conference: conf.id.clone(),
                    endpoint: nick.clone(),
                });
            }
        }
    }

    /// Occupant `nick` left `room`.
    fn left(&mut self, room: &Jid, nick: &str, out: &mut FocusOutput) {
        let Some(conf) = self.conferences.get_mut(room) else {
            return;
        };
        let Some(p) = conf.participants.remove(nick) else {
            return;
        };
        if p.session != Session::None {
            out.bridge.push(BridgeRequest::Release {
                conference: conf.id.clone(),
                endpoint: nick.to_owned(),
            });
        }
        if conf.participants.is_empty() {
            // The last one left: the focus leaves too, and the room goes.
            let leave = Element::builder("presence", ns::CLIENT)
                .attr("type", "unavailable")
                .attr("from", self.config.jid.to_string())
                .attr("to", format!("{room}/{FOCUS_NICK}"))
                .build();
            out.stanzas.push(leave);
            self.end(room, out);
            return;
        }
        self.sync_sources(room, out);
        self.ensure_owner(room, out);
    }

    /// Forget `room`'s conference.
    fn end(&mut self, room: &Jid, out: &mut FocusOutput) {
        if let Some(conf) = self.conferences.remove(room) {
            self.by_id.remove(&conf.id);
            out.bridge.push(BridgeRequest::Expire {
                conference: conf.id,
            });
        }
    }

    fn iq(&mut self, iq: &Element, from: &Jid, out: &mut FocusOutput) -> Result<(), StanzaError> {
        let room = from.bare();
        let Some(nick) = from.resource().map(str::to_owned) else {
            return match iq.attr("type") {
                Some("get" | "set") => Err(StanzaError::service_unavailable()),
                _ => Ok(()),
            };
        };
        match iq.attr("type") {
            Some("error") => {
                // A participant refused its session-initiate: its endpoint goes, and it is
                // not invited again until it rejoins or asks for a restart.
                let refused = self
                    .conferences
                    .get(&room)
                    .and_then(|c| c.participants.get(&nick))
                    .is_some_and(|p| {
                        matches!(&p.session, Session::Offered { offer, .. }
                            if Some(offer.as_str()) == iq.attr("id"))
                    });
                if refused {
                    tracing::info!(message = "A participant refused its Jingle session.", room = %room, nick);
                    self.end_session(&room, &nick, None, out);
                }
                return Ok(());
            }
            Some("result") => return Ok(()),
            _ => {}
        }
        let payload = iq
            .children()
            .next()
            .ok_or_else(|| StanzaError::new(ErrorType::Modify, Condition::BadRequest))?;
        match (payload.name(), payload.ns()) {
            ("jingle", jingle::ns::JINGLE) => self.jingle(iq, payload, &room, &nick, out),
            ("mute", NS_MUTE_AUDIO | NS_MUTE_VIDEO | NS_MUTE_DESKTOP) => {
                self.mute(iq, payload, &room, &nick, out)
            }
            ("query", ns::DISCO_INFO) => {
                let features = [ns::DISCO_INFO, jingle::ns::JINGLE, NS_FOCUS];
                out.stanzas.push(disco_info(iq, None, &features));
                Ok(())
            }
            _ => Err(StanzaError::service_unavailable()),
        }
    }

    /// A moderator mutes someone: `<mute xmlns=…/audio jid="room/nick">true</mute>`. Only
    /// moderators mute others, and nobody unmutes anyone but themselves.
    fn mute(
        &mut self,
        iq: &Element,
        mute: &Element,
        room: &Jid,
        actor: &str,
        out: &mut FocusOutput,
    ) -> Result<(), StanzaError> {
        let conf = self
            .conferences
            .get(room)
            .ok_or_else(|| StanzaError::new(ErrorType::Cancel, Condition::ItemNotFound))?;
        let sender = conf
            .participants
            .get(actor)
            .ok_or_else(|| StanzaError::new(ErrorType::Auth, Condition::Forbidden))?;
        let target = mute
            .attr("jid")
            .and_then(|j| Jid::parse(j).ok())
            .filter(|j| j.bare() == *room)
            .and_then(|j| j.resource().map(str::to_owned))
            .filter(|n| conf.participants.contains_key(n))
            .ok_or_else(|| {
                StanzaError::new(ErrorType::Cancel, Condition::ItemNotFound)
                    .with_text("No such participant.")
            })?;
        let muting = match mute.text().trim() {
            "true" => true,
            "false" => false,
            _ => return Err(StanzaError::new(ErrorType::Modify, Condition::BadRequest)),
        };
        if target != actor && (sender.role != "moderator" || !muting) {
            return Err(StanzaError::new(ErrorType::Cancel, Condition::NotAllowed)
                .with_text("Only moderators mute others, and only the owner unmutes."));
        }
        // Under AV moderation only moderators and those a moderator approved unmute (Jicofo's
        // rule; the client enforces it too, this is for the client that does not).
        if !muting
            && sender.role != "moderator"
            && conf
                .moderated
                .get(mute_media(mute.ns()))
                .is_some_and(|allowed| !allowed.contains(actor))
        {
            return Err(StanzaError::new(ErrorType::Cancel, Condition::NotAllowed)
                .with_text("This media is moderated; ask a moderator to let you unmute."));
        }
        let mut forward = Element::builder("mute", mute.ns())
            .attr("actor", format!("{room}/{actor}"))
            .build();
        forward.append_text(if muting { "true" } else { "false" });
        let to = format!("{room}/{target}");
        let iq_out = self.set_iq(&to, forward);
        out.stanzas.push(iq_out);
        out.stanzas.push(stanza::iq_result(iq));
        Ok(())
    }

    /// A `json-message` from the AV moderation component (a component domain under the vhost;
    /// clients cannot send from a domain JID): follow which media are moderated and who may
    /// unmute, and when moderation of a media starts, mute everyone but its actor, as Jicofo
    /// does.
    fn component_message(&mut self, stanza: &Element, from: &Jid, out: &mut FocusOutput) {
        let from_component = from.node().is_none()
            && from
                .domain()
                .strip_suffix(self.config.vhost.as_str())
                .is_some_and(|sub| sub.ends_with('.'));
        if !from_component {
            return;
        }
        let Some(json) = stanza.get_child("json-message", NS_JITMEET) else {
            return;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&json.text()) else {
            return;
        };
        if v["type"] != "av_moderation" {
            return;
        }
        let (Some(room), Some(media)) = (
            v["room"].as_str().and_then(|r| Jid::parse(r).ok()),
            v["mediaType"]
                .as_str()
                .filter(|m| matches!(*m, "audio" | "video" | "desktop")),
        ) else {
            return;
        };
        let room = room.bare();
        let nick_in_room = |jid: &str| {
            Jid::parse(jid)
                .ok()
                .filter(|j| j.bare() == room)
                .and_then(|j| j.resource().map(str::to_owned))
        };
        let Some(conf) = self.conferences.get_mut(&room) else {
            return;
        };
        match v["enabled"].as_bool() {
            Some(true) if !conf.moderated.contains_key(media) => {
                conf.moderated.insert(media.to_owned(), BTreeSet::new());
                let actor = v["actor"].as_str().and_then(nick_in_room);
                let muted: Vec<String> = conf
                    .participants
                    .keys()
                    .filter(|n| Some(*n) != actor.as_ref())
                    .cloned()
                    .collect();
                let ns = match media {
                    "audio" => NS_MUTE_AUDIO,
                    "video" => NS_MUTE_VIDEO,
                    _ => NS_MUTE_DESKTOP,
                };
                for nick in muted {
                    let mut mute = Element::builder("mute", ns).build();
                    if let Some(a) = &actor {
                        mute.set_attr("actor", format!("{room}/{a}"));
                    }
                    mute.append_text("true");
                    let iq = self.set_iq(&format!("{room}/{nick}"), mute);
                    out.stanzas.push(iq);
                }
            }
            Some(false) => {
                conf.moderated.remove(media);
            }
            _ => {}
        }
        // The component leaves empty lists out.
        if let (Some(lists), Some(allowed)) = (
            v["whitelists"].as_object(),
            self.conferences
                .get_mut(&room)
                .and_then(|c| c.moderated.get_mut(media)),
        ) {
            *allowed = lists
                .get(media)
                .and_then(|l| l.as_array())
                .into_iter()
                .flatten()
                .filter_map(|j| j.as_str().and_then(nick_in_room))
                .collect();
        }
    }

    fn jingle(
        &mut self,
        iq: &Element,
        el: &Element,
        room: &Jid,
        nick: &str,
        out: &mut FocusOutput,
    ) -> Result<(), StanzaError> {
        let j = jingle::parse(el)?;
        let conf = self.conferences.get_mut(room).ok_or_else(unknown_session)?;
        let conference = conf.id.clone();
        let p = conf
            .participants
            .get_mut(nick)
            .ok_or_else(unknown_session)?;
        if p.session.sid() != Some(j.sid.as_str()) {
            return Err(unknown_session());
        }
        match j.action {
            Action::SessionAccept => {
                if !matches!(p.session, Session::Offered { .. }) {
                    return Err(
                        StanzaError::new(ErrorType::Cancel, Condition::UnexpectedRequest)
                            .with_app("out-of-order", jingle::NS_ERRORS),
                    );
                }
                let sources = EndpointSources::from_client(nick, &j.contents, |ssrc| {
                    used_by_other(conf, nick, ssrc)
                })?;
                let p = conf.participants.get_mut(nick).expect("looked up above");
                p.session = Session::Active { sid: j.sid.clone() };
                p.sources = sources.clone();
                if let Some(t) = j.contents.iter().find_map(|c| c.transport.as_ref()) {
                    out.bridge.extend(connect(&conference, nick, t));
                }
                out.bridge.push(BridgeRequest::Sources {
                    conference,
                    endpoint: nick.to_owned(),
                    sources,
                });
                out.stanzas.push(stanza::iq_result(iq));
                self.sync_sources(room, out);
            }
            Action::TransportInfo => {
                if let Some(t) = j.contents.iter().find_map(|c| c.transport.as_ref()) {
                    out.bridge.extend(connect(&conference, nick, t));
                }
                out.stanzas.push(stanza::iq_result(iq));
            }
            Action::SourceAdd | Action::SourceRemove => {
                let mut sources = p.sources.clone();
                if j.action == Action::SourceAdd {
                    sources.add(&j.contents, |ssrc| used_by_other(conf, nick, ssrc))?;
                } else {
                    sources.remove(&j.contents)?;
                }
                let p = conf.participants.get_mut(nick).expect("looked up above");
                p.sources = sources.clone();
                let active = matches!(p.session, Session::Active { .. });
                if active {
                    out.bridge.push(BridgeRequest::Sources {
                        conference,
                        endpoint: nick.to_owned(),
                        sources,
                    });
                }
                out.stanzas.push(stanza::iq_result(iq));
                self.sync_sources(room, out);
            }
            Action::SessionTerminate => {
                out.stanzas.push(stanza::iq_result(iq));
                let restart = j.bridge_session.as_ref().is_some_and(|b| b.restart);
                self.end_session(room, nick, None, out);
                if restart {
                    self.invite_all(room, out);
                }
            }
            Action::SessionInfo => {
                out.stanzas.push(stanza::iq_result(iq));
                if j.ice_state.as_deref() == Some("failed") {
                    // Jicofo's answer to an ICE failure: a new session on a new endpoint.
                    self.end_session(room, nick, Some("connectivity-error"), out);
                    self.invite_all(room, out);
                }
            }
            Action::TransportAccept | Action::TransportReject | Action::ContentModify => {
                out.stanzas.push(stanza::iq_result(iq));
            }
            _ => {
                return Err(
                    StanzaError::new(ErrorType::Cancel, Condition::FeatureNotImplemented)
                        .with_app("unsupported-info", jingle::NS_ERRORS),
                );
            }
        }
        Ok(())
    }

    /// End `nick`'s session: the SFU endpoint goes, the others hear its sources go, and
    /// (when `terminate` gives a reason) the participant is told.
    fn end_session(
        &mut self,
        room: &Jid,
        nick: &str,
        terminate: Option<&str>,
        out: &mut FocusOutput,
    ) {
        let Some(conf) = self.conferences.get_mut(room) else {
            return;
        };
        let conference = conf.id.clone();
        let Some(p) = conf.participants.get_mut(nick) else {
            return;
        };
        let sid = p.session.sid().map(str::to_owned);
        p.session = Session::None;
        p.sources = EndpointSources::new(nick);
        p.told.clear();
        out.bridge.push(BridgeRequest::Release {
            conference,
            endpoint: nick.to_owned(),
        });
        if let (Some(reason), Some(sid)) = (terminate, sid) {
            let el = jingle::session_terminate(&sid, reason);
            let iq = self.set_iq(&format!("{room}/{nick}"), el);
            out.stanzas.push(iq);
        }
        self.sync_sources(room, out);
    }

    /// Tell every participant with an accepted session what changed in the others' sources.
    fn sync_sources(&mut self, room: &Jid, out: &mut FocusOutput) {
        let Some(conf) = self.conferences.get(room) else {
            return;
        };
        let current: BTreeMap<String, EndpointSources> = conf
            .participants
            .iter()
            .filter(|(_, p)| !p.sources.is_empty())
            .map(|(n, p)| (n.clone(), p.sources.for_receivers()))
            .collect();
        let mut sends = Vec::new();
        for (nick, p) in &conf.participants {
            let Session::Active { sid } = &p.session else {
                continue;
            };
            let (mut added, mut removed) = (Vec::new(), Vec::new());
            for (owner, now) in &current {
                if owner == nick {
                    continue;
                }
                match p.told.get(owner) {
                    None => added.push(now.clone()),
                    Some(before) => {
                        let (a, r) = before.diff(now);
                        added.extend(a);
                        removed.extend(r);
                    }
                }
            }
            for (owner, before) in &p.told {
                if !current.contains_key(owner) {
                    removed.push(before.clone());
                }
            }
            if !removed.is_empty() {
                let el = jingle::source_change(Action::SourceRemove, sid, &removed);
                sends.push((nick.clone(), el));
            }
            if !added.is_empty() {
                let el = jingle::source_change(Action::SourceAdd, sid, &added);
                sends.push((nick.clone(), el));
            }
        }
        if let Some(conf) = self.conferences.get_mut(room) {
            for (nick, p) in conf.participants.iter_mut() {
                if matches!(p.session, Session::Active { .. }) {
                    p.told = current
                        .iter()
                        .filter(|(o, _)| *o != nick)
                        .map(|(o, s)| (o.clone(), s.clone()))
                        .collect();
                }
            }
        }
        for (nick, el) in sends {
            let iq = self.set_iq(&format!("{room}/{nick}"), el);
            out.stanzas.push(iq);
        }
    }

    /// An iq set from the focus to `to` carrying `payload`.
    fn set_iq(&mut self, to: &str, payload: Element) -> Element {
        let id = format!("focus{}", self.next_id);
        self.next_id += 1;
        let mut iq = Element::builder("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", id)
            .attr("from", self.config.jid.to_string())
            .attr("to", to)
            .build();
        iq.append_child(payload);
        iq
    }

    fn random_hex(&self, bytes: usize) -> String {
        let mut b = vec![0u8; bytes];
        self.entropy.fill(&mut b);
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}

/// The disco#info answer to `iq`: an identity (category, type, name) if any, and `features`.
fn disco_info(iq: &Element, identity: Option<(&str, &str, &str)>, features: &[&str]) -> Element {
    let mut q = Element::new("query", ns::DISCO_INFO);
    if let Some((category, kind, name)) = identity {
        q.append_child(
            Element::builder("identity", ns::DISCO_INFO)
                .attr("category", category)
                .attr("type", kind)
                .attr("name", name)
                .build(),
        );
    }
    for f in features {
        q.append_child(
            Element::builder("feature", ns::DISCO_INFO)
                .attr("var", *f)
                .build(),
        );
    }
    let mut reply = stanza::iq_result(iq);
    reply.append_child(q);
    reply
}

/// The SFU request for a participant's transport (none without ICE credentials).
fn connect(conference: &str, endpoint: &str, t: &jingle::Transport) -> Option<BridgeRequest> {
    Some(BridgeRequest::Connect {
        conference: conference.to_owned(),
        endpoint: endpoint.to_owned(),
        ufrag: t.ufrag.clone()?,
        pwd: t.pwd.clone()?,
        fingerprint: t
            .fingerprints
            .first()
            .map(|f| (f.hash.clone(), f.value.clone())),
        candidates: t.candidates.clone(),
    })
}

/// Whether another participant of `conf` than `nick` sends `ssrc`.
fn used_by_other(conf: &Conference, nick: &str, ssrc: u32) -> bool {
    conf.participants
        .iter()
        .any(|(other, p)| other != nick && p.sources.contains(ssrc))
}
