//! Builders of what the focus sends: `session-initiate` with the fixed codec offer (`Codecs`),
//! `source-add`/`source-remove`, `session-terminate`, `transport-info`, and the iq around them.
//!
//! Core (pure). The shapes are those Jicofo sends and lib-jitsi-meet parses (docs/jingle.md):
//! content names `audio`/`video` matching `description@media`, Opus with `channels='2'`,
//! `<rtcp-mux/>` in every description, one BUNDLE group, the same transport in every content.
//! lib-jitsi-meet selects `transport`, `source`, `ssrc-group`, `ssrc-info`, `group`,
//! `rtp-hdrext`, `rtcp-fb` and `fingerprint` by their literal `xmlns` attribute, so each of
//! them carries one: the serializer declares a namespace that differs from the parent's, and
//! where it equals the parent's (a `source` inside an `ssrc-group`) the builder adds an
//! explicit `xmlns` attribute. Tests: jingle/tests.rs.

use super::{Action, EndpointSources, MediaSources, Source, SsrcGroup, Transport, ns};
use crate::stanza::Jid;
use crate::xml::{Element, ns as xml_ns};

/// An RTP header extension offered in a description (XEP-0294).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderExtension {
    /// The extension id (1–14 for one-byte headers).
    pub id: u8,
    /// The extension URI.
    pub uri: String,
}

/// The codec offer. Payload types are fixed (Opus 111 with `transport-cc` feedback,
/// telephone-event 126; VP8 100/rtx 96, VP9 101/rtx 97, H264 107/rtx 99 with `ccm fir`,
/// `nack`, `nack pli` and `transport-cc` feedback); the header extensions are configurable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codecs {
    /// Header extensions of the audio description.
    pub audio_header_extensions: Vec<HeaderExtension>,
    /// Header extensions of the video description.
    pub video_header_extensions: Vec<HeaderExtension>,
}

/// The transport-wide sequence number extension (draft-holmer-rmcat-transport-wide-cc-
/// extensions-01): the SFU answers packets carrying it with transport-cc feedback.
pub const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// Its id in the offer (Jicofo's; the SFU reads the same id).
pub const TRANSPORT_CC_ID: u8 = 5;

impl Default for Codecs {
    /// `ssrc-audio-level` (id 1) on audio, and the transport-wide sequence number (id 5) on
    /// both, so that browsers get the feedback their bandwidth estimation needs.
    fn default() -> Self {
        let transport_cc = HeaderExtension {
            id: TRANSPORT_CC_ID,
            uri: TRANSPORT_CC_URI.to_owned(),
        };
        Codecs {
            audio_header_extensions: vec![
                HeaderExtension {
                    id: 1,
                    uri: "urn:ietf:params:rtp-hdrext:ssrc-audio-level".to_owned(),
                },
                transport_cc.clone(),
            ],
            video_header_extensions: vec![transport_cc],
        }
    }
}

/// What a `session-initiate` carries: the session, the bridge's transport for this endpoint
/// (the same in every content), the sources to announce (normally the bridge's, then every
/// other endpoint's, simulcast stripped) and the `bridge-session` id.
#[derive(Debug, Clone)]
pub struct Offer<'a> {
    /// The session id.
    pub sid: &'a str,
    /// The focus's full JID (`initiator`).
    pub initiator: &'a Jid,
    /// The bridge's transport for this endpoint.
    pub transport: &'a Transport,
    /// The sources to announce, in order.
    pub sources: Vec<&'a EndpointSources>,
    /// The `bridge-session` id.
    pub bridge_session: &'a str,
}

/// `<jingle action='session-initiate'/>` with the default `Codecs`.
pub fn session_initiate(offer: &Offer<'_>) -> Element {
    session_initiate_with(offer, &Codecs::default())
}

/// `<jingle action='session-initiate'/>`: audio and video contents with the fixed payload types
/// and `codecs`' header extensions, the offer's sources, its transport in both contents, a
/// BUNDLE group and the `bridge-session`.
pub fn session_initiate_with(offer: &Offer<'_>, codecs: &Codecs) -> Element {
    let (audio, video) = collect(offer.sources.iter().copied());
    let mut j = jingle("session-initiate", offer.sid);
    j.set_attr("initiator", offer.initiator.to_string());
    for (media, srcs) in [("audio", &audio), ("video", &video)] {
        let mut d = if media == "audio" {
            audio_description(codecs)
        } else {
            video_description(codecs)
        };
        d.append_child(Element::new("rtcp-mux", ns::RTP));
        append_sources(&mut d, srcs, media == "video");
        let mut c = content(media);
        c.set_attr("senders", "both");
        c.append_child(d);
        c.append_child(transport(offer.transport));
        j.append_child(c);
    }
    let mut group = child(ns::JINGLE, "group", ns::GROUPING);
    group.set_attr("semantics", "BUNDLE");
    for media in ["audio", "video"] {
        group.append_child(
            Element::builder("content", ns::GROUPING)
                .attr("name", media)
                .build(),
        );
    }
    j.append_child(group);
    j.append_child(
        Element::builder("bridge-session", ns::FOCUS)
            .attr("id", offer.bridge_session)
            .build(),
    );
    j
}

/// `<jingle action='source-add'/>`: one content per media that has sources or groups.
pub fn source_add<'a>(
    sid: &str,
    sources: impl IntoIterator<Item = &'a EndpointSources>,
) -> Element {
    source_change(Action::SourceAdd, sid, sources)
}

/// `<jingle action='source-remove'/>`: one content per media that has sources or groups.
pub fn source_remove<'a>(
    sid: &str,
    sources: impl IntoIterator<Item = &'a EndpointSources>,
) -> Element {
    source_change(Action::SourceRemove, sid, sources)
}

/// `<jingle action='session-terminate'/>` with `<reason><CONDITION/></reason>` (XEP-0166 §7.4
/// conditions: `success`, `gone`, `connectivity-error`, …).
pub fn session_terminate(sid: &str, condition: &str) -> Element {
    session_terminate_with_text(sid, condition, None)
}

/// `session_terminate` with a `<text/>` in the reason.
pub fn session_terminate_with_text(sid: &str, condition: &str, text: Option<&str>) -> Element {
    let mut j = jingle("session-terminate", sid);
    let mut reason = Element::new("reason", ns::JINGLE);
    reason.append_child(Element::new(condition, ns::JINGLE));
    if let Some(t) = text {
        reason.append_child(Element::builder("text", ns::JINGLE).text(t).build());
    }
    j.append_child(reason);
    j
}

/// `<jingle action='transport-info'/>` carrying `transport` in the audio and video contents.
pub fn transport_info(sid: &str, initiator: &Jid, t: &Transport) -> Element {
    let mut j = jingle("transport-info", sid);
    j.set_attr("initiator", initiator.to_string());
    for media in ["audio", "video"] {
        let mut c = content(media);
        c.append_child(transport(t));
        j.append_child(c);
    }
    j
}

/// `<iq type='set' from to id>` around a `<jingle/>`.
pub fn iq_set(from: &Jid, to: &Jid, id: &str, jingle: Element) -> Element {
    Element::builder("iq", xml_ns::CLIENT)
        .attr("type", "set")
        .attr("from", from.to_string())
        .attr("to", to.to_string())
        .attr("id", id)
        .append(jingle)
        .build()
}

/// `<jingle action=ACTION/>` (`source-add` or `source-remove`) with one content per media that
/// has sources or groups, each `description` holding them.
pub fn source_change<'a>(
    action: Action,
    sid: &str,
    sources: impl IntoIterator<Item = &'a EndpointSources>,
) -> Element {
    let (audio, video) = collect(sources);
    let mut j = jingle(action.as_str(), sid);
    for (media, srcs) in [("audio", &audio), ("video", &video)] {
        if srcs.is_empty() {
            continue;
        }
        let mut d = Element::builder("description", ns::RTP)
            .attr("media", media)
            .build();
        append_sources(&mut d, srcs, media == "video");
        let mut c = content(media);
        c.append_child(d);
        j.append_child(c);
    }
    j
}

fn collect<'a>(
    sources: impl IntoIterator<Item = &'a EndpointSources>,
) -> (MediaSources, MediaSources) {
    let mut audio = MediaSources::default();
    let mut video = MediaSources::default();
    for e in sources {
        audio.sources.extend(e.audio().sources.iter().cloned());
        audio.groups.extend(e.audio().groups.iter().cloned());
        video.sources.extend(e.video().sources.iter().cloned());
        video.groups.extend(e.video().groups.iter().cloned());
    }
    (audio, video)
}

fn jingle(action: &str, sid: &str) -> Element {
    Element::builder("jingle", ns::JINGLE)
        .attr("action", action)
        .attr("sid", sid)
        .build()
}

fn content(media: &str) -> Element {
    Element::builder("content", ns::JINGLE)
        .attr("creator", "initiator")
        .attr("name", media)
        .build()
}

/// An element in `ns` under a parent in `parent_ns`, with an explicit `xmlns` attribute when
/// the serializer would not declare it (same namespace as the parent).
fn child(parent_ns: &str, name: &str, ns: &str) -> Element {
    let mut e = Element::new(name, ns);
    if parent_ns == ns {
        e.set_attr("xmlns", ns);
    }
    e
}

fn transport(t: &Transport) -> Element {
    let mut e = child(ns::JINGLE, "transport", ns::ICE_UDP);
    if let Some(u) = &t.ufrag {
        e.set_attr("ufrag", u.as_str());
    }
    if let Some(p) = &t.pwd {
        e.set_attr("pwd", p.as_str());
    }
    if let Some(url) = &t.web_socket {
        e.append_child(
            Element::builder("web-socket", ns::COLIBRI)
                .attr("url", url.as_str())
                .build(),
        );
    }
    for f in &t.fingerprints {
        let mut fe = child(ns::ICE_UDP, "fingerprint", ns::DTLS);
        fe.set_attr("hash", f.hash.as_str());
        if let Some(s) = &f.setup {
            fe.set_attr("setup", s.as_str());
        }
        fe.set_attr("required", "false");
        fe.append_text(&f.value);
        e.append_child(fe);
    }
    for c in &t.candidates {
        let mut ce = Element::new("candidate", ns::ICE_UDP);
        ce.set_attr("component", c.component.to_string());
        ce.set_attr("foundation", c.foundation.as_str());
        if let Some(g) = c.generation {
            ce.set_attr("generation", g.to_string());
        }
        if let Some(id) = &c.id {
            ce.set_attr("id", id.as_str());
        }
        if let Some(n) = c.network {
            ce.set_attr("network", n.to_string());
        }
        ce.set_attr("protocol", c.protocol.as_str());
        ce.set_attr("priority", c.priority.to_string());
        ce.set_attr("ip", c.ip.as_str());
        ce.set_attr("port", c.port.to_string());
        ce.set_attr("type", c.kind.as_str());
        if let Some(a) = &c.rel_addr {
            ce.set_attr("rel-addr", a.as_str());
        }
        if let Some(p) = c.rel_port {
            ce.set_attr("rel-port", p.to_string());
        }
        if let Some(t) = &c.tcptype {
            ce.set_attr("tcptype", t.as_str());
        }
        e.append_child(ce);
    }
    e
}

fn payload_type(id: u8, name: &str, clockrate: u32, channels: Option<u8>) -> Element {
    let mut p = Element::builder("payload-type", ns::RTP)
        .attr("id", id.to_string())
        .attr("name", name)
        .attr("clockrate", clockrate.to_string())
        .build();
    if let Some(c) = channels {
        p.set_attr("channels", c.to_string());
    }
    p
}

fn parameter(parent_ns: &str, name: &str, value: &str) -> Element {
    Element::builder("parameter", parent_ns)
        .attr("name", name)
        .attr("value", value)
        .build()
}

fn rtcp_fb(p: &mut Element) {
    for (kind, subtype) in [
        ("ccm", Some("fir")),
        ("nack", None),
        ("nack", Some("pli")),
        ("transport-cc", None),
    ] {
        let mut fb = child(ns::RTP, "rtcp-fb", ns::RTCP_FB);
        fb.set_attr("type", kind);
        if let Some(s) = subtype {
            fb.set_attr("subtype", s);
        }
        p.append_child(fb);
    }
}

fn header_extensions(d: &mut Element, exts: &[HeaderExtension]) {
    for x in exts {
        let mut h = child(ns::RTP, "rtp-hdrext", ns::RTP_HDREXT);
        h.set_attr("id", x.id.to_string());
        h.set_attr("uri", x.uri.as_str());
        d.append_child(h);
    }
}

fn audio_description(codecs: &Codecs) -> Element {
    let mut d = Element::builder("description", ns::RTP)
        .attr("media", "audio")
        .attr("maxptime", "60")
        .build();
    let mut opus = payload_type(111, "opus", 48000, Some(2));
    opus.append_child(parameter(ns::RTP, "minptime", "10"));
    opus.append_child(parameter(ns::RTP, "useinbandfec", "1"));
    let mut fb = child(ns::RTP, "rtcp-fb", ns::RTCP_FB);
    fb.set_attr("type", "transport-cc");
    opus.append_child(fb);
    d.append_child(opus);
    d.append_child(payload_type(126, "telephone-event", 8000, None));
    header_extensions(&mut d, &codecs.audio_header_extensions);
    d
}

fn video_description(codecs: &Codecs) -> Element {
    let mut d = Element::builder("description", ns::RTP)
        .attr("media", "video")
        .build();
    let h264_params: &[(&str, &str)] = &[
        ("profile-level-id", "42e01f"),
        ("level-asymmetry-allowed", "1"),
        ("packetization-mode", "1"),
    ];
    for (id, name, rtx, params) in [
        (100, "VP8", 96, &[][..]),
        (101, "VP9", 97, &[][..]),
        (107, "H264", 99, h264_params),
    ] {
        let mut p = payload_type(id, name, 90000, None);
        for (k, v) in params {
            p.append_child(parameter(ns::RTP, k, v));
        }
        rtcp_fb(&mut p);
        d.append_child(p);
        let mut r = payload_type(rtx, "rtx", 90000, None);
        r.append_child(parameter(ns::RTP, "apt", &id.to_string()));
        rtcp_fb(&mut r);
        d.append_child(r);
    }
    header_extensions(&mut d, &codecs.video_header_extensions);
    d
}

fn source(s: &Source, video: bool) -> Element {
    let mut e = child(ns::RTP, "source", ns::SSMA);
    e.set_attr("ssrc", s.ssrc.to_string());
    if let Some(n) = &s.name {
        e.set_attr("name", n.as_str());
    }
    if video && let Some(v) = &s.video_type {
        e.set_attr("videoType", v.as_str());
    }
    if let Some(o) = &s.owner {
        let mut info = child(ns::SSMA, "ssrc-info", ns::JITMEET);
        info.set_attr("owner", o.as_str());
        e.append_child(info);
    }
    if let Some(m) = &s.msid {
        e.append_child(parameter(ns::SSMA, "msid", m));
    }
    e
}

fn group(g: &SsrcGroup) -> Element {
    let mut e = child(ns::RTP, "ssrc-group", ns::SSMA);
    e.set_attr("semantics", g.semantics.as_str());
    for s in &g.ssrcs {
        let mut se = child(ns::SSMA, "source", ns::SSMA);
        se.set_attr("ssrc", s.to_string());
        e.append_child(se);
    }
    e
}

fn append_sources(d: &mut Element, m: &MediaSources, video: bool) {
    for s in &m.sources {
        d.append_child(source(s, video));
    }
    for g in &m.groups {
        d.append_child(group(g));
    }
}
