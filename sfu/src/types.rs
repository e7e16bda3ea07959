//! Owns the public data types of the SFU's control and data interfaces: what the focus passes in
//! (sources, ssrc-groups, remote transport), what the SFU hands back (local transport,
//! feedback sources, statistics), datagrams to send and events. Shaped after colibri2 so the
//! control side could later move to its own process.

use std::net::SocketAddr;

/// Errors of the control API. Peer input never produces these (it is dropped and counted).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SfuError {
    /// No conference with that id.
    #[error("unknown conference {0}")]
    UnknownConference(String),
    /// A conference with that id already exists.
    #[error("conference {0} already exists")]
    ConferenceExists(String),
    /// No endpoint with that id in the conference.
    #[error("unknown endpoint {0}")]
    UnknownEndpoint(String),
    /// An endpoint with that id already exists in the conference.
    #[error("endpoint {0} already exists")]
    EndpointExists(String),
    /// The signalled fingerprint is not `hex:hex:...` or uses a hash other than sha-256.
    #[error("unusable remote fingerprint: {0}")]
    BadFingerprint(String),
    /// The signalled ICE credentials are too short (ufrag < 4, pwd < 22 characters).
    #[error("unusable remote ICE credentials")]
    BadCredentials,
    /// The endpoint already has a different remote transport (ICE restarts and new DTLS
    /// identities take a new endpoint). The same transport again is accepted and changes
    /// nothing.
    #[error("the endpoint's remote transport is already set to different values")]
    RemoteTransportChanged,
    /// The SSRC already belongs to another endpoint of the conference.
    #[error("ssrc {0} already belongs to another endpoint")]
    SsrcInUse(u32),
    /// A crypto or protocol-library failure while setting up a transport.
    #[error("crypto: {0}")]
    Crypto(String),
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

/// One media source an endpoint sends (an `<source ssrc=...>` of colibri2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The SSRC.
    pub ssrc: u32,
    /// Audio or video.
    pub kind: MediaKind,
    /// The source name (`endpointId-a0`, `-v0`), informational.
    pub name: Option<String>,
}

/// Semantics of an ssrc-group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSemantics {
    /// Simulcast layers, lowest first: receivers know the first, and get one layer each
    /// under its SSRC (see `simulcast`).
    Sim,
    /// `[primary, rtx]` retransmission pair.
    Fid,
    /// Anything else (e.g. FEC-FR): ignored.
    Other(String),
}

/// What a receiver asks to get (its bridge channel's `ReceiverVideoConstraints`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiverConstraints {
    /// Largest video height it wants from senders it names no constraint for; `None` for
    /// no limit (the best layer the sender sends).
    pub default_max_height: Option<u32>,
    /// Largest height it wants from each sender endpoint it names (0: no video).
    pub max_height: std::collections::HashMap<String, u32>,
    /// `lastN`: how many senders' video it wants at most (the most recent speakers first);
    /// negative for no limit of its own.
    pub last_n: Option<i64>,
    /// Senders it puts first (its on-stage, then its selected sources, by endpoint id): they
    /// come first under last-N and in the share of its bandwidth.
    pub prioritized: Vec<String>,
}

impl ReceiverConstraints {
    /// The largest height it wants from sender endpoint `sender` (`u32::MAX`: no limit).
    pub fn max_height_for(&self, sender: &str) -> u32 {
        if self.last_n == Some(0) {
            return 0;
        }
        self.max_height
            .get(sender)
            .copied()
            .or(self.default_max_height)
            .unwrap_or(crate::simulcast::UNCONSTRAINED)
    }
}

/// An `<ssrc-group>` of colibri2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcGroup {
    /// SIM, FID, ...
    pub semantics: GroupSemantics,
    /// The SSRCs, in signalled order.
    pub ssrcs: Vec<u32>,
}

/// A local ICE candidate the focus signals to the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCandidate {
    /// ICE foundation.
    pub foundation: String,
    /// Component (always 1: rtcp-mux).
    pub component: u16,
    /// Transport protocol (always `udp`).
    pub protocol: &'static str,
    /// ICE priority.
    pub priority: u32,
    /// Transport address.
    pub addr: SocketAddr,
    /// Candidate type (always `host`).
    pub typ: &'static str,
}

/// An SFU-originated RTCP source the focus signals as owned by the bridge (owner `jvb`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackSource {
    /// The SSRC the SFU uses as RTCP sender SSRC.
    pub ssrc: u32,
    /// Source name: `jvb-a0` or `jvb-v0`.
    pub name: String,
    /// Audio or video.
    pub kind: MediaKind,
}

/// A certificate fingerprint as signalled (`hash` like `sha-256`, `value` like `AB:CD:..`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash function name.
    pub hash: String,
    /// Colon-separated hex digest.
    pub value: String,
}

/// What the SFU offers for an endpoint: everything the focus needs to describe the bridge side
/// of the endpoint's transport (`<transport>` of colibri2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTransport {
    /// ICE username fragment.
    pub ufrag: String,
    /// ICE password.
    pub pwd: String,
    /// DTLS certificate fingerprint (sha-256); the SFU is DTLS server (`setup=passive` side,
    /// the browser answers `setup=active`).
    pub fingerprint: Fingerprint,
    /// Host candidates.
    pub candidates: Vec<IceCandidate>,
    /// Feedback sources (audio, video) the SFU sends RTCP from towards this endpoint.
    pub feedback_sources: Vec<FeedbackSource>,
}

/// The remote side of an endpoint's transport, as the focus learned it from the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTransport {
    /// Browser's ICE ufrag.
    pub ufrag: String,
    /// Browser's ICE password.
    pub pwd: String,
    /// Browser's DTLS certificate fingerprint.
    pub fingerprint: Fingerprint,
}

/// A datagram to send from the shared port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// Local address to send from (one of the host candidate addresses).
    pub from: SocketAddr,
    /// Bytes.
    pub data: Vec<u8>,
}

/// Something the focus (or the shell) should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// ICE selected a pair for the endpoint (the browser is reachable at `remote`).
    IceConnected {
        /// Conference id.
        conference: String,
        /// Endpoint id.
        endpoint: String,
        /// The browser's address.
        remote: SocketAddr,
    },
    /// DTLS completed and SRTP keys are installed: media flows.
    EndpointConnected {
        /// Conference id.
        conference: String,
        /// Endpoint id.
        endpoint: String,
    },
    /// The endpoint's transport failed (ICE timeout, DTLS failure or fingerprint mismatch).
    EndpointFailed {
        /// Conference id.
        conference: String,
        /// Endpoint id.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// What video an endpoint gets changed under last-N: the source names (`<ep>-v0`) of the
    /// video forwarded to it now (sent to it as `ForwardedSources`).
    ForwardedSourcesChanged {
        /// Conference id.
        conference: String,
        /// The receiving endpoint's id.
        endpoint: String,
        /// The names of the video sources it gets.
        sources: Vec<String>,
    },
    /// A conference's dominant speaker changed.
    DominantSpeakerChanged {
        /// Conference id.
        conference: String,
        /// The new dominant speaker's endpoint id.
        endpoint: String,
    },
}

/// Per-endpoint counters. "in" is from the endpoint to the SFU, "out" from the SFU to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// RTP packets received (after SRTP authentication).
    pub rtp_packets_in: u64,
    /// RTP bytes received (protected size).
    pub rtp_bytes_in: u64,
    /// RTP packets sent.
    pub rtp_packets_out: u64,
    /// RTP bytes sent (protected size).
    pub rtp_bytes_out: u64,
    /// RTCP packets (compounds) received.
    pub rtcp_packets_in: u64,
    /// RTCP packets sent.
    pub rtcp_packets_out: u64,
    /// Generic NACKs received from this endpoint.
    pub nacks_in: u64,
    /// Generic NACKs sent to this endpoint.
    pub nacks_out: u64,
    /// PLIs/FIRs received from this endpoint.
    pub plis_in: u64,
    /// PLIs/FIRs sent to this endpoint (forwarded or SFU-originated).
    pub plis_out: u64,
    /// Transport-cc feedback packets sent to this endpoint (about the media it sends).
    pub twcc_feedback_out: u64,
    /// Datagrams dropped (failed SRTP authentication/replay, an SSRC the endpoint did not signal,
    /// malformed).
    pub dropped: u64,
}

/// Snapshot of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStats {
    /// Conference id.
    pub conference: String,
    /// Endpoint id.
    pub endpoint: String,
    /// ICE selected a pair.
    pub ice_connected: bool,
    /// DTLS completed.
    pub dtls_connected: bool,
    /// The transport failed.
    pub failed: bool,
    /// The negotiated SRTP profile (`SRTP_AEAD_AES_128_GCM`, ...), once DTLS completed.
    pub srtp_profile: Option<&'static str>,
    /// Counters.
    pub counters: Counters,
    /// RTP packets lost on the way in from this endpoint: expected (from sequence numbers)
    /// minus received, over every SSRC it sends (RFC 3550 §6.4.1 cumulative loss).
    pub packets_lost_in: u64,
    /// Round-trip time to the endpoint in microseconds, from ICE's consent checks on the
    /// selected pair.
    pub rtt_us: Option<u64>,
    /// The address media goes to (ICE's selected pair), once known.
    pub remote_address: Option<std::net::SocketAddr>,
    /// What it sent over the last second, bits per second (protected RTP).
    pub bitrate_in_bps: u64,
    /// What the SFU sent it over the last second, bits per second (protected RTP).
    pub bitrate_out_bps: u64,
    /// Its downlink estimate, once it has sent transport-cc feedback.
    pub estimated_bandwidth_bps: Option<u64>,
    /// The share of the SFU's packets to it that its last feedback interval reported lost,
    /// in thousandths (with the estimate).
    pub loss_out_permille: Option<u16>,
    /// What it gets of each simulcast source, by sender then SSRC.
    pub forwarded_video: Vec<ForwardedVideo>,
}

/// What one receiver gets of one simulcast source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedVideo {
    /// The sending endpoint's id.
    pub sender: String,
    /// The source's first SSRC (what the receiver knows it by).
    pub ssrc: u32,
    /// The layer being forwarded (0 lowest), `None` when none is.
    pub layer: Option<usize>,
    /// That layer's nominal height (180, 360, 720 for three layers).
    pub height: Option<u32>,
    /// The highest layer its downlink estimate affords, once it has one.
    pub cap: Option<usize>,
}

/// Snapshot of the whole SFU.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SfuStats {
    /// Number of conferences.
    pub conferences: usize,
    /// Every endpoint, sorted by conference then endpoint id.
    pub endpoints: Vec<EndpointStats>,
}
