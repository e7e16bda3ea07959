//! Jingle (XEP-0166/0167/0176/0320, with Jitsi's source-signaling extensions) as the in-process
//! focus speaks it to lib-jitsi-meet: the typed model of a `<jingle/>` element, its parser, the
//! builders of what the focus sends, and the per-endpoint source sets the focus keeps.
//!
//! Core (sans-IO, pure). `parse` turns a peer's `<jingle/>` into a `Jingle` and refuses wrong
//! namespaces, bad numbers and oversized lists with a `JingleError` (never panics);
//! `build.rs` writes the exact shapes lib-jitsi-meet parses (an explicit `xmlns` on every
//! `transport`, `source`, `ssrc-group`, `ssrc-info`, `group`, `rtp-hdrext`, `rtcp-fb` and
//! `fingerprint`); `sources.rs` validates and normalizes what one endpoint signals
//! (`EndpointSources`). The conventions are described in docs/jingle.md.
//! Tests: jingle/tests.rs.

mod build;
mod parse;
mod sources;
#[cfg(test)]
mod tests;

use crate::stanza::Jid;

pub use build::{
    Codecs, HeaderExtension, Offer, TRANSPORT_CC_ID, TRANSPORT_CC_URI, iq_set, session_initiate,
    session_initiate_with, session_terminate, session_terminate_with_text, source_add,
    source_change, source_remove, transport_info,
};
pub use parse::parse;
pub use sources::{
    BRIDGE_OWNER, EndpointSources, MAX_SSRCS_PER_ENDPOINT, MediaSources, SourceError,
};

/// The Jingle namespace (`ns::JINGLE`).
pub const NS: &str = ns::JINGLE;
/// XEP-0166 §10 Jingle error conditions (`unknown-session`, `out-of-order`, …).
pub const NS_ERRORS: &str = "urn:xmpp:jingle:errors:1";

/// Namespaces of Jingle and the extensions lib-jitsi-meet and Jicofo use.
pub mod ns {
    /// XEP-0166 Jingle.
    pub const JINGLE: &str = "urn:xmpp:jingle:1";
    /// XEP-0167 RTP sessions (the `description`).
    pub const RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
    /// XEP-0176 ICE-UDP transport.
    pub const ICE_UDP: &str = "urn:xmpp:jingle:transports:ice-udp:1";
    /// XEP-0320 DTLS fingerprints.
    pub const DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
    /// XEP-0339 source-specific media attributes (`source`, `ssrc-group`).
    pub const SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
    /// Jitsi's `ssrc-info` (the owner of a source).
    pub const JITMEET: &str = "http://jitsi.org/jitmeet";
    /// XEP-0293 RTCP feedback.
    pub const RTCP_FB: &str = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";
    /// XEP-0294 RTP header extensions.
    pub const RTP_HDREXT: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";
    /// XEP-0338 grouping (BUNDLE).
    pub const GROUPING: &str = "urn:xmpp:jingle:apps:grouping:0";
    /// Colibri: the bridge's WebSocket (`web-socket url`).
    pub const COLIBRI: &str = "http://jitsi.org/protocol/colibri";
    /// Jicofo's focus namespace (`bridge-session`, `ice-state`).
    pub const FOCUS: &str = "http://jitsi.org/protocol/focus";
}

/// Most contents in one `<jingle/>`.
pub const MAX_CONTENTS: usize = 8;
/// Most `source` elements in one description.
pub const MAX_SOURCES_PER_CONTENT: usize = 64;
/// Most `ssrc-group` elements in one description.
pub const MAX_GROUPS_PER_CONTENT: usize = 32;
/// Most SSRCs in one `ssrc-group`.
pub const MAX_SSRCS_PER_GROUP: usize = 16;
/// Most candidates in one transport.
pub const MAX_CANDIDATES: usize = 32;
/// Most fingerprints in one transport.
pub const MAX_FINGERPRINTS: usize = 4;
/// Longest attribute value or text the parser keeps, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;

/// A Jingle action (XEP-0166 §7.2, plus Jitsi's `source-add`/`source-remove`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Action {
    ContentAccept,
    ContentAdd,
    ContentModify,
    ContentReject,
    ContentRemove,
    DescriptionInfo,
    SecurityInfo,
    SessionAccept,
    SessionInfo,
    SessionInitiate,
    SessionTerminate,
    TransportAccept,
    TransportInfo,
    TransportReject,
    TransportReplace,
    /// Jitsi's `source-add` (old clients: `addsource`).
    SourceAdd,
    /// Jitsi's `source-remove` (old clients: `removesource`).
    SourceRemove,
    /// Anything else, as sent.
    Unknown(String),
}

impl Action {
    /// Parse the `action` attribute (unknown values are kept, not refused).
    pub fn from_attr(s: &str) -> Action {
        match s {
            "content-accept" => Action::ContentAccept,
            "content-add" => Action::ContentAdd,
            "content-modify" => Action::ContentModify,
            "content-reject" => Action::ContentReject,
            "content-remove" => Action::ContentRemove,
            "description-info" => Action::DescriptionInfo,
            "security-info" => Action::SecurityInfo,
            "session-accept" => Action::SessionAccept,
            "session-info" => Action::SessionInfo,
            "session-initiate" => Action::SessionInitiate,
            "session-terminate" => Action::SessionTerminate,
            "transport-accept" => Action::TransportAccept,
            "transport-info" => Action::TransportInfo,
            "transport-reject" => Action::TransportReject,
            "transport-replace" => Action::TransportReplace,
            "source-add" | "addsource" => Action::SourceAdd,
            "source-remove" | "removesource" => Action::SourceRemove,
            other => Action::Unknown(other.to_owned()),
        }
    }

    /// The attribute value.
    pub fn as_str(&self) -> &str {
        match self {
            Action::ContentAccept => "content-accept",
            Action::ContentAdd => "content-add",
            Action::ContentModify => "content-modify",
            Action::ContentReject => "content-reject",
            Action::ContentRemove => "content-remove",
            Action::DescriptionInfo => "description-info",
            Action::SecurityInfo => "security-info",
            Action::SessionAccept => "session-accept",
            Action::SessionInfo => "session-info",
            Action::SessionInitiate => "session-initiate",
            Action::SessionTerminate => "session-terminate",
            Action::TransportAccept => "transport-accept",
            Action::TransportInfo => "transport-info",
            Action::TransportReject => "transport-reject",
            Action::TransportReplace => "transport-replace",
            Action::SourceAdd => "source-add",
            Action::SourceRemove => "source-remove",
            Action::Unknown(s) => s,
        }
    }
}

/// A parsed `<jingle/>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jingle {
    /// The action.
    pub action: Action,
    /// The session id.
    pub sid: String,
    /// `initiator`, when sent.
    pub initiator: Option<Jid>,
    /// `responder`, when sent.
    pub responder: Option<Jid>,
    /// The contents, in document order.
    pub contents: Vec<Content>,
    /// The content names of the BUNDLE group (XEP-0338), when one was sent.
    pub bundle: Option<Vec<String>>,
    /// Jitsi's `<bridge-session/>`, when sent.
    pub bridge_session: Option<BridgeSession>,
    /// Jitsi's `<ice-state/>` text in a `session-info` (e.g. `failed`).
    pub ice_state: Option<String>,
    /// The `<reason/>` of a `session-terminate` (or any action that carries one).
    pub reason: Option<Reason>,
}

/// The media of a content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Media {
    /// `audio`
    Audio,
    /// `video`
    Video,
    /// Anything else (e.g. `application` for a data channel), as sent.
    Other(String),
}

impl Media {
    /// From a `media` attribute or a content name.
    pub fn from_attr(s: &str) -> Media {
        match s {
            "audio" => Media::Audio,
            "video" => Media::Video,
            other => Media::Other(other.to_owned()),
        }
    }

    /// The attribute value.
    pub fn as_str(&self) -> &str {
        match self {
            Media::Audio => "audio",
            Media::Video => "video",
            Media::Other(s) => s,
        }
    }
}

/// One `<content/>`. Only what the focus acts on is kept: the media, the signaled sources and
/// groups, and the transport. `creator`/`senders` are not trusted and not kept; payload types
/// in an answer are ignored (the focus offers a fixed set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The content name as sent (`audio`, `video`, or `0`/`1` from some clients).
    pub name: String,
    /// `description@media`; without a description, derived from the content name.
    pub media: Media,
    /// The `source` elements of the description.
    pub sources: Vec<Source>,
    /// The `ssrc-group` elements of the description.
    pub groups: Vec<SsrcGroup>,
    /// The ICE-UDP transport, when present.
    pub transport: Option<Transport>,
}

/// One RTP source (XEP-0339 `source`, with Jitsi's `name`, `videoType` and `ssrc-info`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    /// The SSRC.
    pub ssrc: u32,
    /// The source name (`<endpoint>-a0`, `<endpoint>-v0`, …).
    pub name: Option<String>,
    /// `videoType` (`camera` or `desktop`) on video sources.
    pub video_type: Option<String>,
    /// The `msid` parameter value: `STREAM TRACK`.
    pub msid: Option<String>,
    /// The `ssrc-info@owner`: the endpoint id (or `jvb`).
    pub owner: Option<String>,
}

impl Source {
    /// A source with only its SSRC.
    pub fn new(ssrc: u32) -> Source {
        Source {
            ssrc,
            name: None,
            video_type: None,
            msid: None,
            owner: None,
        }
    }
}

/// One `ssrc-group`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SsrcGroup {
    /// `SIM`, `FID`, …
    pub semantics: String,
    /// The SSRCs in order (for FID: primary, then RTX; for SIM: lowest layer first).
    pub ssrcs: Vec<u32>,
}

/// An ICE-UDP transport (XEP-0176) with DTLS fingerprints (XEP-0320) and Colibri's WebSocket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transport {
    /// ICE username fragment.
    pub ufrag: Option<String>,
    /// ICE password.
    pub pwd: Option<String>,
    /// DTLS fingerprints.
    pub fingerprints: Vec<Fingerprint>,
    /// ICE candidates.
    pub candidates: Vec<Candidate>,
    /// The bridge's Colibri WebSocket URL.
    pub web_socket: Option<String>,
}

/// A DTLS fingerprint (XEP-0320).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// `sha-256`, …
    pub hash: String,
    /// `actpass`, `active`, `passive`.
    pub setup: Option<String>,
    /// The colon-separated hex value.
    pub value: String,
}

/// An ICE candidate (XEP-0176 §5.2), every attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `component` (1 = RTP).
    pub component: u16,
    /// `foundation`.
    pub foundation: String,
    /// `generation`.
    pub generation: Option<u32>,
    /// `id`.
    pub id: Option<String>,
    /// `network`.
    pub network: Option<u32>,
    /// `protocol` (`udp`, `tcp`, `ssltcp`).
    pub protocol: String,
    /// `priority`.
    pub priority: u32,
    /// `ip`: an address or an mDNS `.local` name.
    pub ip: String,
    /// `port`.
    pub port: u16,
    /// `type`: `host`, `srflx`, `prflx`, `relay`.
    pub kind: String,
    /// `rel-addr`.
    pub rel_addr: Option<String>,
    /// `rel-port`.
    pub rel_port: Option<u16>,
    /// `tcptype`.
    pub tcptype: Option<String>,
}

impl Candidate {
    /// A UDP host candidate of component 1 (rtcp-mux), generation 0, network 0: what an SFU
    /// offers.
    pub fn udp_host(id: &str, foundation: &str, priority: u32, ip: &str, port: u16) -> Candidate {
        Candidate {
            component: 1,
            foundation: foundation.to_owned(),
            generation: Some(0),
            id: Some(id.to_owned()),
            network: Some(0),
            protocol: "udp".to_owned(),
            priority,
            ip: ip.to_owned(),
            port,
            kind: "host".to_owned(),
            rel_addr: None,
            rel_port: None,
            tcptype: None,
        }
    }

    /// An mDNS candidate (`ip` is a `.local` name that browsers use to hide local
    /// addresses): a server cannot resolve it, so it is best skipped.
    pub fn is_mdns(&self) -> bool {
        self.ip.to_ascii_lowercase().ends_with(".local")
    }
}

/// Jitsi's `<bridge-session xmlns='http://jitsi.org/protocol/focus' id=… [restart='true']/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSession {
    /// The bridge session id.
    pub id: Option<String>,
    /// The client asks for a restart (in `session-terminate`).
    pub restart: bool,
}

/// A `<reason/>` (XEP-0166 §7.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The condition element's name (`success`, `connectivity-error`, …); empty if none.
    pub condition: String,
    /// The `<text/>`, when sent.
    pub text: Option<String>,
}

/// Why a `<jingle/>` element was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JingleError {
    /// The element is not `jingle` in `urn:xmpp:jingle:1`.
    #[error("not a jingle element")]
    NotJingle,
    /// A required attribute is missing.
    #[error("<{element}/> lacks {attr}")]
    MissingAttr {
        /// The element.
        element: &'static str,
        /// The attribute.
        attr: &'static str,
    },
    /// A numeric attribute does not parse or is out of range.
    #[error("<{element} {attr}='{value}'/> is not a valid number")]
    BadNumber {
        /// The element.
        element: &'static str,
        /// The attribute.
        attr: &'static str,
        /// The value as sent (truncated to 64 bytes).
        value: String,
    },
    /// `initiator` or `responder` is not a JID.
    #[error("{0} is not a JID")]
    BadJid(&'static str),
    /// A known child element is in an unsupported namespace.
    #[error("<{element}/> in unsupported namespace {ns}")]
    WrongNamespace {
        /// The element.
        element: &'static str,
        /// Its namespace (truncated to 64 bytes).
        ns: String,
    },
    /// Two contents share a name.
    #[error("duplicate content {0}")]
    DuplicateContent(String),
    /// An attribute value (or text, `attr` = `text`) is longer than `MAX_VALUE_LEN`.
    #[error("<{element} {attr}/> longer than {} bytes", MAX_VALUE_LEN)]
    TooLong {
        /// The element.
        element: &'static str,
        /// The attribute.
        attr: &'static str,
    },
    /// A list is longer than its bound.
    #[error("more than {limit} {what}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
}
