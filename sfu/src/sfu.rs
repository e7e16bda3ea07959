//! Owns the sans-IO SFU core: conferences and endpoints, the demultiplexing of the shared UDP
//! port onto endpoints (STUN by ufrag and transaction id, everything else by the address ICE
//! learned), RTP forwarding by SSRC with header-extension stripping, RTCP routing (NACK/PLI/FIR
//! to the media sender, sender reports to receivers, receiver reports consumed), keyframe
//! requests on join, dominant-speaker detection, each receiver's downlink estimate (its own
//! transport-wide numbering of what it sends, read back from transport-cc feedback) and the
//! simulcast layers that estimate affords, and per-endpoint counters and rates.
//!
//! The core does no I/O and reads no clock: the caller feeds it datagrams and time and drains
//! datagrams, timeouts and events (`handle_input`/`handle_timeout`/`poll_*`), as str0m and quinn
//! do. Control calls take effect at the last time the core was given.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc_dtls::crypto_provider::RTCCryptoProvider;

use crate::bwe::Bwe;
use crate::cert::DtlsCertificate;
use crate::demux::{self, PacketKind, StunClass};
use crate::rate::RateMeter;
use crate::recv::{self, RecvStream};
use crate::rng::{SeededProvider, SfuRng, SharedRng};
use crate::rtcp::{self, RtcpItem};
use crate::rtp;
use crate::simulcast::{self, Projection, VideoCodec};
use crate::speaker::{DominantSpeaker, SpeakerConfig};
use crate::transport::{Transport, TransportEvent};
use crate::twcc::{self, TwccRecorder};
use crate::types::*;

/// Static configuration of an [`Sfu`].
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The addresses of the shared UDP port, advertised as host candidates (one per interface).
    pub host_addrs: Vec<SocketAddr>,
    /// The DTLS certificate all endpoints present.
    pub certificate: DtlsCertificate,
    /// Header extension ids forwarded by default (the focus offers ssrc-audio-level as 1).
    pub forwarded_extensions: Vec<u8>,
    /// The id of `urn:ietf:params:rtp-hdrext:ssrc-audio-level`, read for dominant speaker.
    pub audio_level_extension: Option<u8>,
    /// The id of the transport-wide sequence number extension: packets that carry it are
    /// answered with transport-cc feedback, so senders can estimate their bandwidth (the
    /// extension is hop-by-hop: it is not among the forwarded ones).
    pub transport_cc_extension: Option<u8>,
    /// Dominant-speaker tuning.
    pub speaker: SpeakerConfig,
    /// Video payload types by codec, for finding keyframes where simulcast layers switch
    /// (the focus's offer: VP8 100, VP9 101, H264 107).
    pub video_codecs: Vec<(u8, VideoCodec)>,
    /// Last-N: how many senders' video each receiver gets at most, the most recent speakers
    /// first (receivers may ask for fewer); `None` for no limit.
    pub last_n: Option<usize>,
}

impl SfuConfig {
    /// A configuration with the defaults Jitsi's focus expects: extension 1 (audio level)
    /// forwarded and read.
    pub fn new(host_addrs: Vec<SocketAddr>, certificate: DtlsCertificate) -> Self {
        Self {
            host_addrs,
            certificate,
            forwarded_extensions: vec![1],
            audio_level_extension: Some(1),
            transport_cc_extension: Some(TRANSPORT_CC_EXTENSION),
            speaker: SpeakerConfig::default(),
            video_codecs: vec![
                (100, VideoCodec::Vp8),
                (101, VideoCodec::Vp9),
                (107, VideoCodec::H264),
            ],
            last_n: None,
        }
    }
}

type EpKey = u64;

/// The transport-wide sequence number's extension id in the focus's offer (as Jicofo's).
pub const TRANSPORT_CC_EXTENSION: u8 = 5;

/// How one SSRC of a conference is handled.
#[derive(Debug, Clone, Copy)]
struct Route {
    sender: EpKey,
    kind: MediaKind,
    /// An RTX SSRC (never asked for keyframes).
    rtx: bool,
    /// A simulcast layer: its source (the first layer's SSRC) and index.
    layer: Option<(u32, usize)>,
}

/// A simulcast video source: its layers, lowest first.
#[derive(Debug)]
struct SimSource {
    sender: EpKey,
    /// Each layer's SSRC (the first is what receivers know).
    layers: Vec<u32>,
    /// Each layer's RTX SSRC.
    rtx: Vec<Option<u32>>,
    /// When each layer's last media packet came.
    last_seen: Vec<Option<Instant>>,
    /// Each layer's incoming rate: what forwarding it costs a receiver.
    rates: Vec<RateMeter>,
}

impl SimSource {
    /// Which layers the sender is sending now.
    fn active(&self, now: Instant) -> Vec<bool> {
        self.last_seen
            .iter()
            .map(|t| t.is_some_and(|t| now.saturating_duration_since(t) < simulcast::LAYER_TIMEOUT))
            .collect()
    }
}

struct Conference {
    id: String,
    endpoints: Vec<EpKey>,
    routes: HashMap<u32, Route>,
    speaker: DominantSpeaker<EpKey>,
    forwarded_extensions: [bool; 256],
    /// Simulcast sources by their first layer's SSRC.
    sources: HashMap<u32, SimSource>,
    /// Endpoints, the most recent dominant speaker first (then in join order): last-N takes
    /// from the front.
    speakers: Vec<EpKey>,
    /// The names of each sender's video sources (`<ep>-v0`), for `ForwardedSources`.
    video_names: HashMap<EpKey, Vec<String>>,
}

struct Endpoint {
    conference: String,
    id: String,
    ufrag: String,
    transport: Transport,
    feedback: [FeedbackSource; 2],
    counters: Counters,
    /// Addresses authenticated by ICE as this endpoint's.
    addrs: Vec<SocketAddr>,
    /// Receive statistics of the SSRCs this endpoint sends.
    recv: HashMap<u32, RecvStream>,
    /// When the next receiver report to this endpoint is due (once connected).
    next_rr: Option<Instant>,
    /// Arrivals of its packets not yet reported in transport-cc feedback.
    twcc: TwccRecorder,
    /// When the next transport-cc feedback to it is due (set by the first unreported packet).
    next_twcc: Option<Instant>,
    /// What it asks to receive.
    constraints: ReceiverConstraints,
    /// What it gets of each simulcast source, by the source's first SSRC.
    projections: HashMap<u32, Projection>,
    /// Under last-N: the senders whose video it gets (`None`: everyone's).
    last_n_set: Option<HashSet<EpKey>>,
    /// The `ForwardedSources` it was last told, once last-N has applied to it.
    told_forwarded: Option<Vec<String>>,
    /// Its downlink estimate, from its transport-cc feedback on what the SFU sends it.
    bwe: Bwe,
    /// The highest layer of each simulcast source (by first SSRC) its downlink affords, once
    /// it has an estimate.
    caps: HashMap<u32, usize>,
    /// What it sends (RTP, protected size), what the SFU sends it, and the part of the latter
    /// that is not simulcast video (audio, single-layer video: outside the layer allocation).
    rate_in: RateMeter,
    rate_out: RateMeter,
    rate_other_out: RateMeter,
}

impl Endpoint {
    /// Whether it gets `sender`'s video under last-N.
    fn gets_video_of(&self, sender: EpKey) -> bool {
        self.last_n_set.as_ref().is_none_or(|s| s.contains(&sender))
    }
    fn connected(&self) -> bool {
        self.transport.srtp.is_some() && !self.transport.failed
    }
    fn video_feedback_ssrc(&self) -> u32 {
        self.feedback[1].ssrc
    }
}

/// The SFU core.
pub struct Sfu {
    config: SfuConfig,
    rng: SharedRng,
    provider: Arc<dyn RTCCryptoProvider>,
    /// The time the core was created: origin of arrival times in jitter computations.
    epoch: Instant,
    now: Instant,
    next_key: EpKey,
    conferences: HashMap<String, Conference>,
    endpoints: HashMap<EpKey, Endpoint>,
    by_id: HashMap<(String, String), EpKey>,
    by_ufrag: HashMap<String, EpKey>,
    by_addr: HashMap<SocketAddr, EpKey>,
    /// Outstanding ICE checks the SFU sent: transaction id -> (endpoint, sent at).
    by_transaction: HashMap<[u8; 12], (EpKey, Instant)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SfuEvent>,
    /// Cached result of [`Sfu::poll_timeout`]; `None` when it must be recomputed. Only ICE/DTLS
    /// activity, timeouts, control calls and the first audio level of a window move timers, so
    /// the per-packet path does not rescan every endpoint.
    timeout_cache: Option<Option<Instant>>,
}

/// How long an outstanding check's transaction id is remembered.
const TRANSACTION_TTL: Duration = Duration::from_secs(10);

/// Interval of the SFU's receiver reports to each sender.
const RR_INTERVAL: Duration = Duration::from_secs(1);

/// Least time between two keyframe requests for one receiver waiting to switch layers.
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(300);

/// Interval of transport-cc feedback to a sender (libwebrtc's receiver sends it about this
/// often).
const TWCC_INTERVAL: Duration = Duration::from_millis(100);

impl Sfu {
    /// A core with no conferences, at time `now`, drawing its randomness from `rng`.
    pub fn new(config: SfuConfig, rng: SfuRng, now: Instant) -> Result<Self, SfuError> {
        if config.host_addrs.is_empty() {
            return Err(SfuError::Crypto("no host address configured".into()));
        }
        let rng = SharedRng::new(rng);
        let provider =
            SeededProvider::shared(rng.clone()).map_err(|e| SfuError::Crypto(e.to_string()))?;
        Ok(Self {
            config,
            rng,
            provider,
            epoch: now,
            now,
            next_key: 1,
            conferences: HashMap::new(),
            endpoints: HashMap::new(),
            by_id: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            by_transaction: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            timeout_cache: None,
        })
    }

    /// The certificate fingerprint all endpoints present.
    pub fn fingerprint(&self) -> &str {
        self.config.certificate.fingerprint()
    }

    // ---------------------------------------------------------------- control API (colibri2)

    /// Creates an empty conference.
    pub fn create_conference(&mut self, id: &str) -> Result<(), SfuError> {
        if self.conferences.contains_key(id) {
            return Err(SfuError::ConferenceExists(id.to_owned()));
        }
        let mut forwarded = [false; 256];
        for id in &self.config.forwarded_extensions {
            forwarded[usize::from(*id)] = true;
        }
        self.conferences.insert(
            id.to_owned(),
            Conference {
                id: id.to_owned(),
                endpoints: Vec::new(),
                routes: HashMap::new(),
                speaker: DominantSpeaker::new(self.config.speaker),
                forwarded_extensions: forwarded,
                sources: HashMap::new(),
                speakers: Vec::new(),
                video_names: HashMap::new(),
            },
        );
        Ok(())
    }

    /// Replaces the header-extension ids forwarded in a conference (all others are stripped).
    pub fn set_forwarded_extensions(
        &mut self,
        conference: &str,
        ids: &[u8],
    ) -> Result<(), SfuError> {
        let conf = self
            .conferences
            .get_mut(conference)
            .ok_or_else(|| SfuError::UnknownConference(conference.to_owned()))?;
        conf.forwarded_extensions = [false; 256];
        for id in ids {
            conf.forwarded_extensions[usize::from(*id)] = true;
        }
        Ok(())
    }

    /// Allocates an endpoint: fresh ICE credentials, the host candidates, the fingerprint and
    /// the feedback sources the focus signals to the browser.
    pub fn allocate_endpoint(
        &mut self,
        conference: &str,
        endpoint: &str,
    ) -> Result<LocalTransport, SfuError> {
        if !self.conferences.contains_key(conference) {
            return Err(SfuError::UnknownConference(conference.to_owned()));
        }
        let id_key = (conference.to_owned(), endpoint.to_owned());
        if self.by_id.contains_key(&id_key) {
            return Err(SfuError::EndpointExists(endpoint.to_owned()));
        }
        let mut ufrag = self.rng.ice_string(8);
        while self.by_ufrag.contains_key(&ufrag) {
            ufrag = self.rng.ice_string(8);
        }
        let pwd = self.rng.ice_string(24);
        let transport = Transport::new(
            self.now,
            self.provider.clone(),
            self.config.certificate.certificate.clone(),
            ufrag.clone(),
            pwd.clone(),
            &self.config.host_addrs,
        )?;
        let feedback = [
            FeedbackSource {
                ssrc: self.fresh_ssrc(conference),
                name: "jvb-a0".to_owned(),
                kind: MediaKind::Audio,
            },
            FeedbackSource {
                ssrc: self.fresh_ssrc(conference),
                name: "jvb-v0".to_owned(),
                kind: MediaKind::Video,
            },
        ];
        let local = LocalTransport {
            ufrag: ufrag.clone(),
            pwd,
            fingerprint: Fingerprint {
                hash: "sha-256".to_owned(),
                value: self.config.certificate.fingerprint().to_owned(),
            },
            candidates: transport.local_candidates(),
            feedback_sources: feedback.to_vec(),
        };
        let key = self.next_key;
        self.next_key += 1;
        self.endpoints.insert(
            key,
            Endpoint {
                conference: conference.to_owned(),
                id: endpoint.to_owned(),
                ufrag: ufrag.clone(),
                transport,
                feedback,
                counters: Counters::default(),
                addrs: Vec::new(),
                recv: HashMap::new(),
                next_rr: None,
                twcc: TwccRecorder::default(),
                next_twcc: None,
                constraints: ReceiverConstraints::default(),
                projections: HashMap::new(),
                last_n_set: None,
                told_forwarded: None,
                bwe: Bwe::default(),
                caps: HashMap::new(),
                rate_in: RateMeter::default(),
                rate_out: RateMeter::default(),
                rate_other_out: RateMeter::default(),
            },
        );
        self.by_id.insert(id_key, key);
        self.by_ufrag.insert(ufrag, key);
        if let Some(conf) = self.conferences.get_mut(conference) {
            conf.endpoints.push(key);
            conf.speakers.push(key);
        }
        self.refresh_last_n(conference);
        Ok(local)
    }

    /// Installs the browser's ICE credentials and DTLS fingerprint; ICE checks start. Calling
    /// it again with the same values (a transport-info) changes nothing; different values are
    /// refused with [`SfuError::RemoteTransportChanged`].
    pub fn set_remote_transport(
        &mut self,
        conference: &str,
        endpoint: &str,
        remote: &RemoteTransport,
    ) -> Result<(), SfuError> {
        let key = self.key(conference, endpoint)?;
        let now = self.now;
        let ep = self
            .endpoints
            .get_mut(&key)
            .ok_or_else(|| SfuError::UnknownEndpoint(endpoint.to_owned()))?;
        let authentic = ep.transport.set_remote(
            now,
            &remote.ufrag,
            &remote.pwd,
            &remote.fingerprint.hash,
            &remote.fingerprint.value,
        )?;
        for addr in authentic {
            if !ep.addrs.contains(&addr) {
                ep.addrs.push(addr);
            }
            self.by_addr.insert(addr, key);
        }
        self.after_transport(key);
        Ok(())
    }

    /// Adds a remote candidate address (optional: the SFU learns the browser's address from its
    /// own checks as a peer-reflexive candidate).
    pub fn add_remote_candidate(
        &mut self,
        conference: &str,
        endpoint: &str,
        addr: SocketAddr,
    ) -> Result<(), SfuError> {
        let key = self.key(conference, endpoint)?;
        self.endpoint_mut(key)?
            .transport
            .add_remote_candidate(addr)?;
        self.after_transport(key);
        Ok(())
    }

    /// Replaces the sources an endpoint sends. For a SIM group only the first SSRC (and its FID
    /// RTX) is forwarded. A new video source of a connected endpoint gets a keyframe request.
    pub fn set_sources(
        &mut self,
        conference: &str,
        endpoint: &str,
        sources: Vec<Source>,
        groups: Vec<SsrcGroup>,
    ) -> Result<(), SfuError> {
        let key = self.key(conference, endpoint)?;
        let conf = self
            .conferences
            .get_mut(conference)
            .ok_or_else(|| SfuError::UnknownConference(conference.to_owned()))?;
        for s in &sources {
            if let Some(r) = conf.routes.get(&s.ssrc)
                && r.sender != key
            {
                return Err(SfuError::SsrcInUse(s.ssrc));
            }
        }
        let signalled: HashSet<u32> = sources.iter().map(|s| s.ssrc).collect();
        let mut rtx: HashMap<u32, u32> = HashMap::new(); // rtx -> primary
        for g in groups.iter().filter(|g| g.semantics == GroupSemantics::Fid) {
            if let [primary, r] = g.ssrcs[..] {
                rtx.insert(r, primary);
            }
        }
        // Simulcast layers: (source, index) of each layer SSRC.
        let mut layer_of: HashMap<u32, (u32, usize)> = HashMap::new();
        conf.sources.retain(|_, s| s.sender != key);
        for g in groups.iter().filter(|g| g.semantics == GroupSemantics::Sim) {
            let layers: Vec<u32> = g
                .ssrcs
                .iter()
                .copied()
                .filter(|s| signalled.contains(s))
                .collect();
            let Some(&first) = layers.first().filter(|_| layers.len() > 1) else {
                continue;
            };
            for (i, s) in layers.iter().enumerate() {
                layer_of.insert(*s, (first, i));
            }
            let rtx_of = |l: &u32| rtx.iter().find(|(_, p)| *p == l).map(|(r, _)| *r);
            conf.sources.insert(
                first,
                SimSource {
                    sender: key,
                    rtx: layers.iter().map(rtx_of).collect(),
                    last_seen: vec![None; layers.len()],
                    rates: vec![RateMeter::default(); layers.len()],
                    layers,
                },
            );
        }
        let old: HashSet<u32> = conf
            .routes
            .iter()
            .filter(|(_, r)| r.sender == key)
            .map(|(s, _)| *s)
            .collect();
        conf.routes.retain(|_, r| r.sender != key);
        let mut new_video = Vec::new();
        for s in &sources {
            let primary = rtx.get(&s.ssrc).copied();
            let layer = layer_of
                .get(&s.ssrc)
                .or_else(|| primary.and_then(|p| layer_of.get(&p)))
                .copied();
            conf.routes.insert(
                s.ssrc,
                Route {
                    sender: key,
                    kind: s.kind,
                    rtx: primary.is_some(),
                    layer,
                },
            );
            // Simulcast sources ask for keyframes when a receiver's projection needs one.
            if s.kind == MediaKind::Video
                && layer.is_none()
                && primary.is_none()
                && !old.contains(&s.ssrc)
            {
                new_video.push(s.ssrc);
            }
        }
        let names: Vec<String> = sources
            .iter()
            .filter(|s| s.kind == MediaKind::Video && !rtx.contains_key(&s.ssrc))
            .filter(|s| layer_of.get(&s.ssrc).is_none_or(|(_, i)| *i == 0))
            .filter_map(|s| s.name.clone())
            .collect();
        conf.video_names.insert(key, names);
        let live: HashSet<u32> = conf.sources.keys().copied().collect();
        for r in &conf.endpoints {
            if let Some(ep) = self.endpoints.get_mut(r) {
                ep.projections.retain(|src, _| live.contains(src));
            }
        }
        let routed: HashSet<u32> = sources.iter().map(|s| s.ssrc).collect();
        if let Some(ep) = self.endpoints.get_mut(&key) {
            ep.recv.retain(|ssrc, _| routed.contains(ssrc));
        }
        if !new_video.is_empty() {
            self.request_keyframes_from(key, &new_video);
        }
        self.refresh_last_n(conference);
        Ok(())
    }

    /// Sets last-N for every conference (see [`SfuConfig::last_n`]).
    pub fn set_last_n(&mut self, last_n: Option<usize>) {
        self.config.last_n = last_n;
        let ids: Vec<String> = self.conferences.keys().cloned().collect();
        for id in ids {
            self.refresh_last_n(&id);
        }
    }

    /// What `endpoint` asks to receive (its bridge channel's `ReceiverVideoConstraints`):
    /// the simulcast layer it gets of each sender follows from the next packet on.
    pub fn set_receiver_constraints(
        &mut self,
        conference: &str,
        endpoint: &str,
        constraints: ReceiverConstraints,
    ) -> Result<(), SfuError> {
        let key = self.key(conference, endpoint)?;
        self.endpoint_mut(key)?.constraints = constraints;
        self.refresh_last_n(conference);
        Ok(())
    }

    /// Removes an endpoint and everything it sent.
    pub fn remove_endpoint(&mut self, conference: &str, endpoint: &str) -> Result<(), SfuError> {
        let key = self.key(conference, endpoint)?;
        self.drop_endpoint(key);
        Ok(())
    }

    /// Removes a conference and all its endpoints.
    pub fn expire_conference(&mut self, conference: &str) -> Result<(), SfuError> {
        let conf = self
            .conferences
            .get(conference)
            .ok_or_else(|| SfuError::UnknownConference(conference.to_owned()))?;
        for key in conf.endpoints.clone() {
            self.drop_endpoint(key);
        }
        self.conferences.remove(conference);
        Ok(())
    }

    /// A snapshot of every endpoint's state and counters.
    pub fn stats(&self) -> SfuStats {
        let now_us = self.now_us();
        let mut endpoints: Vec<EndpointStats> = self
            .endpoints
            .values()
            .map(|ep| EndpointStats {
                conference: ep.conference.clone(),
                endpoint: ep.id.clone(),
                ice_connected: ep.transport.ice_connected,
                dtls_connected: ep.transport.srtp.is_some(),
                failed: ep.transport.failed,
                srtp_profile: ep.transport.srtp.as_ref().map(|s| s.profile),
                counters: ep.counters,
                packets_lost_in: ep
                    .recv
                    .values()
                    .map(|r| {
                        let (expected, received) = r.totals();
                        expected.saturating_sub(received)
                    })
                    .sum(),
                rtt_us: ep.transport.rtt(self.now).map(|d| (d * 1e6) as u64),
                remote_address: ep.transport.send_to,
                bitrate_in_bps: ep.rate_in.bps(now_us),
                bitrate_out_bps: ep.rate_out.bps(now_us),
                estimated_bandwidth_bps: ep.bwe.estimate(),
                loss_out_permille: ep
                    .bwe
                    .estimate()
                    .map(|_| (ep.bwe.path().0 * 1000.0).round() as u16),
                forwarded_video: self.forwarded_video(ep),
            })
            .collect();
        endpoints.sort_by(|a, b| (&a.conference, &a.endpoint).cmp(&(&b.conference, &b.endpoint)));
        SfuStats {
            conferences: self.conferences.len(),
            endpoints,
        }
    }

    // ---------------------------------------------------------------- data path

    /// Feeds one datagram received on `local` from `from`.
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, local: SocketAddr, data: &[u8]) {
        self.advance(now);
        match demux::classify(data) {
            PacketKind::Stun => self.handle_stun(from, local, data),
            PacketKind::Dtls => {
                if let Some(key) = self.by_addr.get(&from).copied()
                    && let Some(ep) = self.endpoints.get_mut(&key)
                {
                    ep.transport.handle_dtls(self.now, from, local, data);
                    self.after_transport(key);
                }
            }
            PacketKind::Rtp => self.handle_rtp(from, data),
            PacketKind::Rtcp => self.handle_rtcp(from, data),
            PacketKind::Unknown => {}
        }
    }

    /// Advances timers to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.timeout_cache = None;
        let keys: Vec<EpKey> = self
            .endpoints
            .iter_mut()
            .filter_map(|(k, ep)| {
                ep.transport
                    .poll_timeout()
                    .filter(|t| *t <= now)
                    .map(|_| *k)
            })
            .collect();
        for key in keys {
            if let Some(ep) = self.endpoints.get_mut(&key) {
                ep.transport.handle_timeout(now);
            }
            self.after_transport(key);
        }
        for ep in self.endpoints.values_mut() {
            if ep.next_twcc.is_some_and(|t| t <= now) {
                ep.next_twcc = None;
                let fb = ep.video_feedback_ssrc();
                for pkt in ep.twcc.feedback(fb) {
                    if send_rtcp(ep, &pkt, &mut self.transmits) {
                        ep.counters.twcc_feedback_out += 1;
                    }
                }
            }
            if ep.next_rr.is_some_and(|t| t <= now) {
                if !ep.connected() {
                    // Failed: no more reports (and no timer that stays in the past).
                    ep.next_rr = None;
                    continue;
                }
                ep.next_rr = Some(now + RR_INTERVAL);
                let Some(conf) = self.conferences.get(&ep.conference) else {
                    continue;
                };
                // Audio streams are reported from jvb-a0, video (and RTX) from jvb-v0.
                for (i, kind) in [(0, MediaKind::Audio), (1, MediaKind::Video)] {
                    let of_kind =
                        |ssrc: u32| conf.routes.get(&ssrc).is_some_and(|r| r.kind == kind);
                    let fb = ep.feedback[i].ssrc;
                    if let Some(rr) = recv::build_receiver_report(fb, &mut ep.recv, of_kind, now) {
                        send_rtcp(ep, &rr, &mut self.transmits);
                    }
                }
            }
        }
        let mut changes = Vec::new();
        for conf in self.conferences.values_mut() {
            if let Some(k) = conf.speaker.tick(now) {
                changes.push((conf.id.clone(), k));
            }
        }
        for (conference, k) in changes {
            if let Some(conf) = self.conferences.get_mut(&conference) {
                conf.speakers.retain(|s| *s != k);
                conf.speakers.insert(0, k);
            }
            if let Some(ep) = self.endpoints.get(&k) {
                self.events.push_back(SfuEvent::DominantSpeakerChanged {
                    conference: conference.clone(),
                    endpoint: ep.id.clone(),
                });
            }
            self.refresh_last_n(&conference);
        }
        self.by_transaction
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < TRANSACTION_TTL);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if let Some(cached) = self.timeout_cache {
            return cached;
        }
        let transports = self.endpoints.values_mut().filter_map(|ep| {
            [ep.transport.poll_timeout(), ep.next_rr, ep.next_twcc]
                .into_iter()
                .flatten()
                .min()
        });
        let speakers = self
            .conferences
            .values()
            .filter_map(|c| c.speaker.next_tick());
        let next = transports.chain(speakers).min();
        self.timeout_cache = Some(next);
        next
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SfuEvent> {
        self.events.pop_front()
    }

    // ---------------------------------------------------------------- internals

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    /// The current time as µs since the core's epoch (the time base of rates and estimates).
    fn now_us(&self) -> i64 {
        i64::try_from(self.now.saturating_duration_since(self.epoch).as_micros())
            .unwrap_or(i64::MAX)
    }

    /// What `ep` gets of each simulcast source now: sender, layer and its nominal height.
    fn forwarded_video(&self, ep: &Endpoint) -> Vec<ForwardedVideo> {
        let Some(conf) = self.conferences.get(&ep.conference) else {
            return Vec::new();
        };
        let mut out: Vec<ForwardedVideo> = ep
            .projections
            .iter()
            .filter_map(|(source, proj)| {
                let src = conf.sources.get(source)?;
                let sender = self.endpoints.get(&src.sender)?;
                Some(ForwardedVideo {
                    sender: sender.id.clone(),
                    ssrc: *source,
                    layer: proj.current,
                    height: proj
                        .current
                        .map(|l| simulcast::layer_height(l, src.layers.len())),
                    cap: ep.caps.get(source).copied(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.sender, a.ssrc).cmp(&(&b.sender, b.ssrc)));
        out
    }

    /// Shares `key`'s downlink estimate among the simulcast sources it gets (see
    /// [`simulcast::allocate`]): the senders it prioritizes (on-stage, selected) first, then
    /// the most wanted height, then the most recent speakers.
    /// Nothing is capped until the receiver has sent feedback.
    fn allocate(&mut self, key: EpKey) {
        let now = self.now;
        let now_us = self.now_us();
        let Some(ep) = self.endpoints.get(&key) else {
            return;
        };
        let Some(estimate) = ep.bwe.estimate() else {
            return;
        };
        let Some(conf) = self.conferences.get(&ep.conference) else {
            return;
        };
        let budget = estimate.saturating_sub(ep.rate_other_out.bps(now_us));
        // (source, (its rank among the prioritized senders, wanted height, speaker rank)).
        type Priority = (usize, std::cmp::Reverse<u32>, usize);
        let mut order: Vec<(u32, Priority)> = conf
            .sources
            .iter()
            .filter(|(_, src)| src.sender != key)
            .filter_map(|(source, src)| {
                let sender = self.endpoints.get(&src.sender)?;
                let max_height = if ep.gets_video_of(src.sender) {
                    ep.constraints.max_height_for(&sender.id)
                } else {
                    0
                };
                let rank = conf
                    .speakers
                    .iter()
                    .position(|k| *k == src.sender)
                    .unwrap_or(usize::MAX);
                let first = ep
                    .constraints
                    .prioritized
                    .iter()
                    .position(|id| *id == sender.id)
                    .unwrap_or(usize::MAX);
                Some((*source, (first, std::cmp::Reverse(max_height), rank)))
            })
            .collect();
        order.sort_by_key(|(source, key)| (*key, *source));
        let demands: Vec<simulcast::Demand> = order
            .iter()
            .filter_map(|(source, (_, std::cmp::Reverse(max_height), _))| {
                let src = conf.sources.get(source)?;
                let active = src.active(now);
                Some(simulcast::Demand {
                    rates: src.rates.iter().map(|r| r.bps(now_us)).collect(),
                    wanted: simulcast::choose(&active, *max_height),
                    active,
                })
            })
            .collect();
        let caps = simulcast::allocate(budget, &demands);
        let caps: HashMap<u32, usize> = order
            .iter()
            .zip(caps)
            .filter_map(|((source, _), cap)| cap.map(|c| (*source, c)))
            .collect();
        if let Some(ep) = self.endpoints.get_mut(&key) {
            ep.caps = caps;
        }
    }

    fn key(&self, conference: &str, endpoint: &str) -> Result<EpKey, SfuError> {
        if !self.conferences.contains_key(conference) {
            return Err(SfuError::UnknownConference(conference.to_owned()));
        }
        self.by_id
            .get(&(conference.to_owned(), endpoint.to_owned()))
            .copied()
            .ok_or_else(|| SfuError::UnknownEndpoint(endpoint.to_owned()))
    }

    fn endpoint_mut(&mut self, key: EpKey) -> Result<&mut Endpoint, SfuError> {
        self.endpoints
            .get_mut(&key)
            .ok_or_else(|| SfuError::UnknownEndpoint(key.to_string()))
    }

    /// A random non-zero SSRC not yet used in the conference.
    fn fresh_ssrc(&self, conference: &str) -> u32 {
        loop {
            let s = self.rng.next_u32();
            let used_route = self
                .conferences
                .get(conference)
                .is_some_and(|c| c.routes.contains_key(&s));
            let used_feedback = self
                .endpoints
                .values()
                .any(|ep| ep.feedback.iter().any(|f| f.ssrc == s));
            if s != 0 && !used_route && !used_feedback {
                return s;
            }
        }
    }

    fn drop_endpoint(&mut self, key: EpKey) {
        self.timeout_cache = None;
        let Some(ep) = self.endpoints.remove(&key) else {
            return;
        };
        self.by_id.remove(&(ep.conference.clone(), ep.id.clone()));
        self.by_ufrag.remove(&ep.ufrag);
        for a in &ep.addrs {
            if self.by_addr.get(a) == Some(&key) {
                self.by_addr.remove(a);
            }
        }
        self.by_transaction.retain(|_, (k, _)| *k != key);
        if let Some(conf) = self.conferences.get_mut(&ep.conference) {
            conf.endpoints.retain(|k| *k != key);
            conf.routes.retain(|_, r| r.sender != key);
            conf.sources.retain(|_, s| s.sender != key);
            conf.speakers.retain(|k| *k != key);
            conf.video_names.remove(&key);
            conf.speaker.remove(&key);
        }
        self.refresh_last_n(&ep.conference);
    }

    fn handle_stun(&mut self, from: SocketAddr, local: SocketAddr, data: &[u8]) {
        let Some(header) = demux::stun_header(data) else {
            return;
        };
        let key = match header.class {
            StunClass::Request => demux::stun_local_ufrag(data).and_then(|u| self.by_ufrag.get(u)),
            _ => self
                .by_transaction
                .get(&header.transaction_id)
                .map(|(k, _)| k)
                .or_else(|| self.by_addr.get(&from)),
        };
        let Some(key) = key.copied() else {
            return;
        };
        let Some(ep) = self.endpoints.get_mut(&key) else {
            return;
        };
        let accepted = ep.transport.handle_stun(self.now, from, local, data);
        if accepted && header.class == StunClass::Request {
            // An authenticated check: this address is the endpoint's (peer-reflexive if new).
            if !ep.addrs.contains(&from) {
                ep.addrs.push(from);
            }
            self.by_addr.insert(from, key);
        }
        self.after_transport(key);
    }

    /// Drains a transport's datagrams and events after it was driven.
    fn after_transport(&mut self, key: EpKey) {
        self.timeout_cache = None;
        let Some(ep) = self.endpoints.get_mut(&key) else {
            return;
        };
        let now = self.now;
        for (to, from, data) in ep.transport.out.drain(..) {
            if let Some(h) = demux::stun_header(&data)
                && h.class == StunClass::Request
            {
                self.by_transaction.insert(h.transaction_id, (key, now));
            }
            self.transmits.push_back(Transmit { to, from, data });
        }
        let events: Vec<TransportEvent> = ep.transport.events.drain(..).collect();
        let (conference, endpoint) = (ep.conference.clone(), ep.id.clone());
        for e in events {
            match e {
                TransportEvent::IceConnected(remote) => {
                    if let Some(ep) = self.endpoints.get_mut(&key)
                        && !ep.addrs.contains(&remote)
                    {
                        ep.addrs.push(remote);
                    }
                    self.by_addr.insert(remote, key);
                    self.events.push_back(SfuEvent::IceConnected {
                        conference: conference.clone(),
                        endpoint: endpoint.clone(),
                        remote,
                    });
                }
                TransportEvent::Connected => {
                    if let Some(ep) = self.endpoints.get_mut(&key) {
                        ep.next_rr = Some(now + RR_INTERVAL);
                    }
                    self.events.push_back(SfuEvent::EndpointConnected {
                        conference: conference.clone(),
                        endpoint: endpoint.clone(),
                    });
                    self.on_endpoint_connected(key);
                }
                TransportEvent::Failed(reason) => {
                    self.events.push_back(SfuEvent::EndpointFailed {
                        conference: conference.clone(),
                        endpoint: endpoint.clone(),
                        reason,
                    });
                }
            }
        }
    }

    /// Keyframe on join: the new endpoint wants keyframes from every video sender, and (if it
    /// sends video itself) its own video is wanted by everyone already there.
    fn on_endpoint_connected(&mut self, key: EpKey) {
        let Some(conf) = self
            .endpoints
            .get(&key)
            .and_then(|ep| self.conferences.get(&ep.conference))
        else {
            return;
        };
        let mut by_sender: HashMap<EpKey, Vec<u32>> = HashMap::new();
        for (ssrc, r) in &conf.routes {
            if r.kind == MediaKind::Video && r.layer.is_none() && !r.rtx {
                by_sender.entry(r.sender).or_default().push(*ssrc);
            }
        }
        // Of each simulcast source, the layer it would get (the first when none is known to
        // be on yet).
        if let Some(receiver) = self.endpoints.get(&key) {
            for src in conf.sources.values() {
                let Some(sender) = self.endpoints.get(&src.sender) else {
                    continue;
                };
                let max_height = receiver.constraints.max_height_for(&sender.id);
                if max_height == 0 {
                    continue;
                }
                let layer = simulcast::choose(&src.active(self.now), max_height).unwrap_or(0);
                by_sender
                    .entry(src.sender)
                    .or_default()
                    .push(src.layers[layer]);
            }
        }
        for (sender, ssrcs) in by_sender {
            self.request_keyframes_from(sender, &ssrcs);
        }
    }

    /// Sends a PLI for each of `ssrcs` to `sender`, if it is connected and some other endpoint
    /// of its conference is connected to receive the keyframe.
    fn request_keyframes_from(&mut self, sender: EpKey, ssrcs: &[u32]) {
        let has_receiver = self
            .endpoints
            .get(&sender)
            .and_then(|ep| self.conferences.get(&ep.conference))
            .is_some_and(|c| {
                c.endpoints
                    .iter()
                    .any(|k| *k != sender && self.endpoints.get(k).is_some_and(Endpoint::connected))
            });
        if !has_receiver {
            return;
        }
        let Some(ep) = self.endpoints.get_mut(&sender) else {
            return;
        };
        if !ep.connected() {
            return;
        }
        let fb = ep.video_feedback_ssrc();
        for ssrc in ssrcs {
            let pli = rtcp::build_pli(fb, *ssrc);
            send_rtcp(ep, &pli, &mut self.transmits);
            ep.counters.plis_out += 1;
        }
    }

    fn handle_rtp(&mut self, from: SocketAddr, data: &[u8]) {
        let Some(key) = self.by_addr.get(&from).copied() else {
            return;
        };
        let Some(ep) = self.endpoints.get_mut(&key) else {
            return;
        };
        let Some(srtp) = ep.transport.srtp.as_mut() else {
            ep.counters.dropped += 1;
            return;
        };
        let Ok(plain) = srtp.inbound.decrypt_rtp(data) else {
            ep.counters.dropped += 1;
            return;
        };
        ep.counters.rtp_packets_in += 1;
        ep.counters.rtp_bytes_in += data.len() as u64;
        let now_us = i64::try_from(self.now.saturating_duration_since(self.epoch).as_micros())
            .unwrap_or(i64::MAX);
        ep.rate_in.add(now_us, data.len());
        let Some(header) = rtp::parse_header(&plain) else {
            ep.counters.dropped += 1;
            return;
        };
        if let Some(id) = self.config.transport_cc_extension
            && let Some(seq) = rtp::transport_sequence(&plain, &header, id)
        {
            ep.twcc.on_packet(seq, now_us, header.ssrc);
            if ep.next_twcc.is_none() {
                ep.next_twcc = Some(self.now + TWCC_INTERVAL);
                self.timeout_cache = None;
            }
        }
        let Some(conf) = self.conferences.get_mut(&ep.conference) else {
            return;
        };
        let route = match conf.routes.get(&header.ssrc) {
            Some(r) if r.sender == key => *r,
            _ => {
                ep.counters.dropped += 1;
                return;
            }
        };
        let clock_rate = match route.kind {
            MediaKind::Audio => 48_000,
            MediaKind::Video => 90_000,
        };
        let arrival = self.now.saturating_duration_since(self.epoch).as_secs_f64();
        ep.recv
            .entry(header.ssrc)
            .or_insert_with(|| RecvStream::new(header.sequence_number, clock_rate))
            .on_packet(header.sequence_number, header.timestamp, arrival);
        if let Some((source, layer)) = route.layer {
            self.forward_layer(key, source, layer, route.rtx, &plain, &header);
            return;
        }
        if route.kind == MediaKind::Audio
            && let Some(id) = self.config.audio_level_extension
            && let Some((level, _voice)) = rtp::audio_level(&plain, &header, id)
        {
            if conf.speaker.next_tick().is_none() {
                self.timeout_cache = None;
            }
            conf.speaker.on_level(self.now, &key, level);
        }
        let twcc = self.config.transport_cc_extension;
        let Some((stripped, twcc_at)) = outgoing(twcc, &conf.forwarded_extensions, &plain, &header)
        else {
            ep.counters.dropped += 1;
            return;
        };
        for r in &conf.endpoints {
            if *r == key {
                continue;
            }
            let Some(receiver) = self.endpoints.get_mut(r) else {
                continue;
            };
            if !receiver.connected()
                || (route.kind == MediaKind::Video && !receiver.gets_video_of(key))
            {
                continue;
            }
            receiver.rate_other_out.add(now_us, stripped.len());
            send_rtp(receiver, &stripped, twcc_at, now_us, &mut self.transmits);
        }
    }

    /// Recompute, for every receiver of `conference`, whose video it gets under last-N (the
    /// server's `last_n` and its own; the senders it prioritizes, then the most recent speakers
    /// first); tell it
    /// (`ForwardedSourcesChanged`) when that changed and last-N applies or applied to it, and
    /// ask senders it now gets again for a keyframe.
    fn refresh_last_n(&mut self, conference: &str) {
        let Some(conf) = self.conferences.get(conference) else {
            return;
        };
        let speakers = conf.speakers.clone();
        let receivers = conf.endpoints.clone();
        let mut keyframes: Vec<(EpKey, Vec<u32>)> = Vec::new();
        for r in receivers {
            let Some(ep) = self.endpoints.get(&r) else {
                continue;
            };
            let own = ep.constraints.last_n.and_then(|n| usize::try_from(n).ok());
            let n = match (self.config.last_n, own) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // Its on-stage and selected senders first, then the most recent speakers.
            let mut order: Vec<EpKey> = ep
                .constraints
                .prioritized
                .iter()
                .filter_map(|id| self.by_id.get(&(conf.id.clone(), id.clone())).copied())
                .filter(|k| speakers.contains(k))
                .collect();
            let rest: Vec<EpKey> = speakers
                .iter()
                .copied()
                .filter(|k| !order.contains(k))
                .collect();
            order.extend(rest);
            let set: Option<HashSet<EpKey>> =
                n.map(|n| order.iter().copied().filter(|k| *k != r).take(n).collect());
            let names = (set.is_some() || ep.told_forwarded.is_some()).then(|| {
                order
                    .iter()
                    .filter(|k| **k != r && set.as_ref().is_none_or(|s| s.contains(k)))
                    .flat_map(|k| conf.video_names.get(k).into_iter().flatten().cloned())
                    .collect::<Vec<String>>()
            });
            // Senders it gets again: their (non-simulcast) video needs a keyframe.
            for k in speakers.iter().filter(|k| **k != r) {
                let was = ep.gets_video_of(*k);
                let is = set.as_ref().is_none_or(|s| s.contains(k));
                if is && !was {
                    let ssrcs: Vec<u32> = conf
                        .routes
                        .iter()
                        .filter(|(_, route)| {
                            route.sender == *k
                                && route.kind == MediaKind::Video
                                && route.layer.is_none()
                                && !route.rtx
                        })
                        .map(|(s, _)| *s)
                        .collect();
                    if !ssrcs.is_empty() {
                        keyframes.push((*k, ssrcs));
                    }
                }
            }
            let changed = names != ep.told_forwarded;
            let (id, conf_id) = (ep.id.clone(), conf.id.clone());
            if let Some(ep) = self.endpoints.get_mut(&r) {
                ep.last_n_set = set;
                if changed {
                    if let Some(sources) = &names {
                        self.events.push_back(SfuEvent::ForwardedSourcesChanged {
                            conference: conf_id,
                            endpoint: id,
                            sources: sources.clone(),
                        });
                    }
                    ep.told_forwarded = names;
                }
            }
        }
        for (sender, ssrcs) in keyframes {
            self.request_keyframes_from(sender, &ssrcs);
        }
    }

    /// A packet of layer `layer` of simulcast source `source` (its RTX when `rtx`): each
    /// receiver's projection decides whether it gets it, under which numbers; receivers that
    /// wait to switch layers get the sender asked for a keyframe (at most every
    /// `KEYFRAME_INTERVAL`).
    fn forward_layer(
        &mut self,
        sender: EpKey,
        source: u32,
        layer: usize,
        rtx: bool,
        plain: &[u8],
        header: &rtp::RtpHeader,
    ) {
        let now = self.now;
        let now_us = self.now_us();
        let Some(sender_ep) = self.endpoints.get(&sender) else {
            return;
        };
        let sender_id = sender_ep.id.clone();
        let Some(conf) = self.conferences.get_mut(&sender_ep.conference) else {
            return;
        };
        let Some(src) = conf.sources.get_mut(&source) else {
            return;
        };
        if !rtx {
            src.last_seen[layer] = Some(now);
            src.rates[layer].add(now_us, plain.len());
        }
        let active = src.active(now);
        let out_rtx = src.rtx.first().copied().flatten();
        let twcc = self.config.transport_cc_extension;
        let Some((stripped, twcc_at)) = outgoing(twcc, &conf.forwarded_extensions, plain, header)
        else {
            return;
        };
        let Some(out_header) = rtp::parse_header(&stripped) else {
            return;
        };
        let codec = self
            .config
            .video_codecs
            .iter()
            .find(|(pt, _)| *pt == header.payload_type)
            .map(|(_, c)| *c);
        let payload = rtp::payload(plain, header);
        let keyframe = !rtx && codec.is_some_and(|c| simulcast::keyframe_start(c, payload));
        let osn = match (rtx, payload) {
            (true, [a, b, ..]) => Some(u16::from_be_bytes([*a, *b])),
            (true, _) => return, // Padding only: nothing for receivers.
            _ => None,
        };
        // Layers (indices) some receiver waits for a keyframe of.
        let mut keyframes: Vec<usize> = Vec::new();
        for r in conf.endpoints.iter().copied().filter(|r| *r != sender) {
            let Some(receiver) = self.endpoints.get_mut(&r) else {
                continue;
            };
            if !receiver.connected() {
                continue;
            }
            let max_height = if receiver.gets_video_of(sender) {
                receiver.constraints.max_height_for(&sender_id)
            } else {
                0
            };
            let proj = receiver
                .projections
                .entry(source)
                .or_insert_with(|| Projection::new(1));
            proj.target =
                simulcast::choose_capped(&active, max_height, receiver.caps.get(&source).copied());
            let out = match osn {
                Some(osn) => proj.retransmit(layer, osn).map(|r| (r, 0)),
                None => proj
                    .forward(
                        layer,
                        header.sequence_number,
                        header.timestamp,
                        keyframe,
                        now,
                    )
                    .map(|(seq, ts)| ((seq, 0), ts)),
            };
            if let Some(t) = proj.needs_keyframe()
                && proj
                    .asked
                    .is_none_or(|a| now.saturating_duration_since(a) >= KEYFRAME_INTERVAL)
            {
                proj.asked = Some(now);
                keyframes.push(t);
            }
            let Some(((first, second), ts)) = out else {
                continue;
            };
            let mut pkt = stripped.clone();
            if osn.is_some() {
                // (original sequence number, RTX sequence number)
                let Some(out_rtx) = out_rtx else {
                    continue;
                };
                pkt[2..4].copy_from_slice(&second.to_be_bytes());
                pkt[8..12].copy_from_slice(&out_rtx.to_be_bytes());
                let at = out_header.payload_offset();
                pkt[at..at + 2].copy_from_slice(&first.to_be_bytes());
            } else {
                pkt[2..4].copy_from_slice(&first.to_be_bytes());
                pkt[4..8].copy_from_slice(&ts.to_be_bytes());
                pkt[8..12].copy_from_slice(&source.to_be_bytes());
            }
            send_rtp(receiver, &pkt, twcc_at, now_us, &mut self.transmits);
        }
        if keyframes.is_empty() {
            return;
        }
        keyframes.sort_unstable();
        keyframes.dedup();
        let ssrcs: Vec<u32> = conf
            .sources
            .get(&source)
            .map(|src| {
                keyframes
                    .iter()
                    .filter_map(|l| src.layers.get(*l))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        self.request_keyframes_from(sender, &ssrcs);
    }

    fn handle_rtcp(&mut self, from: SocketAddr, data: &[u8]) {
        let Some(key) = self.by_addr.get(&from).copied() else {
            return;
        };
        let Some(ep) = self.endpoints.get_mut(&key) else {
            return;
        };
        let Some(srtp) = ep.transport.srtp.as_mut() else {
            ep.counters.dropped += 1;
            return;
        };
        let Ok(plain) = srtp.inbound.decrypt_rtcp(data) else {
            ep.counters.dropped += 1;
            return;
        };
        ep.counters.rtcp_packets_in += 1;
        let Some(conf) = self.conferences.get(&ep.conference) else {
            return;
        };
        // (destination endpoint, packet) pairs; None destination = every other receiver.
        let mut routed: Vec<(Option<EpKey>, Out)> = Vec::new();
        let (mut nacks, mut plis) = (0, 0);
        let mut fed = false;
        let now_us = i64::try_from(self.now.saturating_duration_since(self.epoch).as_micros())
            .unwrap_or(i64::MAX);
        for item in rtcp::split(&plain) {
            match item {
                RtcpItem::TransportCc { raw } => {
                    if let Some(fb) = twcc::parse_feedback(raw) {
                        ep.bwe.on_feedback(now_us, &fb);
                        fed = true;
                    }
                }
                RtcpItem::Nack { media_ssrc, raw } => {
                    nacks += 1;
                    if let (Some(src), Some(proj)) = (
                        conf.sources.get(&media_ssrc),
                        ep.projections.get(&media_ssrc),
                    ) {
                        // Asked by output number: ask the sender by the layers' own.
                        let mut by_layer: HashMap<usize, Vec<u16>> = HashMap::new();
                        for seq in rtcp::nack_sequence_numbers(raw) {
                            if let Some((layer, orig)) = proj.origin(seq) {
                                by_layer.entry(layer).or_default().push(orig);
                            }
                        }
                        for (layer, seqs) in by_layer {
                            routed.push((Some(src.sender), Out::Nack(src.layers[layer], seqs)));
                        }
                    } else if let Some(r) = conf.routes.get(&media_ssrc)
                        && r.sender != key
                    {
                        routed.push((Some(r.sender), Out::Raw(raw.to_vec())));
                    }
                }
                RtcpItem::Pli { media_ssrc, raw } | RtcpItem::Fir { media_ssrc, raw } => {
                    plis += 1;
                    if let Some(src) = conf.sources.get(&media_ssrc) {
                        // A keyframe of the layer this receiver gets (or is about to).
                        let proj = ep.projections.get(&media_ssrc);
                        let layer = proj.and_then(|p| p.current.or(p.target)).unwrap_or(0);
                        routed.push((Some(src.sender), Out::Pli(src.layers[layer])));
                    } else if let Some(r) = conf.routes.get(&media_ssrc)
                        && r.sender != key
                    {
                        routed.push((Some(r.sender), Out::Raw(raw.to_vec())));
                    }
                }
                RtcpItem::SenderReport { ssrc, raw } => {
                    if let (Some(stream), Some(ntp)) = (ep.recv.get_mut(&ssrc), raw.get(8..16)) {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(ntp);
                        stream.on_sender_report(u64::from_be_bytes(b), self.now);
                    }
                    if let Some(r) = conf.routes.get(&ssrc)
                        && r.sender == key
                        && let Some(sr) = rtcp::trim_sender_report(raw)
                    {
                        match r.layer {
                            None => routed.push((None, Out::Raw(sr))),
                            // A layer's report goes, as the source's, to whoever gets that
                            // layer now, its timestamp moved as the media's is.
                            Some((source, layer)) if !r.rtx => {
                                routed.push((None, Out::LayerReport(source, layer, sr)));
                            }
                            _ => {}
                        }
                    }
                }
                RtcpItem::ReceiverReport | RtcpItem::Other => {}
            }
        }
        let receivers = conf.endpoints.clone();
        ep.counters.nacks_in += nacks;
        ep.counters.plis_in += plis;
        if fed {
            self.allocate(key);
        }
        for (dest, out) in routed {
            let targets: Vec<EpKey> = match dest {
                Some(d) => vec![d],
                None => receivers.iter().copied().filter(|r| *r != key).collect(),
            };
            for t in targets {
                let Some(target) = self.endpoints.get_mut(&t) else {
                    continue;
                };
                if !target.connected() {
                    continue;
                }
                // The SFU's own requests come from the SSRC it uses towards that endpoint.
                let pkt = match &out {
                    Out::Raw(p) => p.clone(),
                    Out::LayerReport(source, layer, sr) => {
                        let ts = u32::from_be_bytes([sr[16], sr[17], sr[18], sr[19]]);
                        let Some(out_ts) = target
                            .projections
                            .get(source)
                            .and_then(|p| p.report_timestamp(*layer, ts))
                        else {
                            continue;
                        };
                        let mut p = sr.clone();
                        p[4..8].copy_from_slice(&source.to_be_bytes());
                        p[16..20].copy_from_slice(&out_ts.to_be_bytes());
                        p
                    }
                    Out::Pli(media) => rtcp::build_pli(target.video_feedback_ssrc(), *media),
                    Out::Nack(media, seqs) => {
                        rtcp::build_nack(target.video_feedback_ssrc(), *media, seqs)
                    }
                };
                let is_nack = pkt.get(1) == Some(&205);
                let is_pli = pkt.get(1) == Some(&206);
                if send_rtcp(target, &pkt, &mut self.transmits) {
                    target.counters.nacks_out += u64::from(is_nack);
                    target.counters.plis_out += u64::from(is_pli);
                }
            }
        }
    }
}

/// A received packet as it goes out to receivers: header extensions the conference does not
/// forward stripped, except the transport-wide sequence number (extension `twcc`), kept for
/// each copy to carry the SFU's own number (its offset is returned). `None` for a malformed
/// packet.
fn outgoing(
    twcc: Option<u8>,
    forwarded: &[bool; 256],
    plain: &[u8],
    header: &rtp::RtpHeader,
) -> Option<(Vec<u8>, Option<usize>)> {
    let stripped = rtp::strip_extensions(plain, header, |id| {
        forwarded[usize::from(id)] || Some(id) == twcc
    })?;
    let twcc_at = twcc.and_then(|id| {
        rtp::parse_header(&stripped).and_then(|h| rtp::transport_sequence_offset(&stripped, &h, id))
    });
    Some((stripped, twcc_at))
}

/// An RTCP packet on its way to an endpoint: as received, or one the SFU builds for it.
enum Out {
    Raw(Vec<u8>),
    /// A PLI about this SSRC.
    Pli(u32),
    /// A NACK about this SSRC for these sequence numbers.
    Nack(u32, Vec<u16>),
    /// A sender report of a simulcast layer (source, layer): each receiver that gets that
    /// layer now gets it as the source's, its timestamp moved as the media's is.
    LayerReport(u32, usize, Vec<u8>),
}

/// Protects the RTP packet `pkt` with `ep`'s outbound SRTP context and queues it, counted.
/// `twcc_at`: where its transport-wide sequence number is, to be replaced by the next of
/// `ep`'s own numbering (remembered for its downlink estimate).
fn send_rtp(
    ep: &mut Endpoint,
    pkt: &[u8],
    twcc_at: Option<usize>,
    now_us: i64,
    out: &mut VecDeque<Transmit>,
) {
    let (Some(to), Some(srtp)) = (ep.transport.send_to, ep.transport.srtp.as_mut()) else {
        return;
    };
    let numbered;
    let pkt = match twcc_at {
        Some(at) if at + 2 <= pkt.len() => {
            let mut p = pkt.to_vec();
            let seq = ep.bwe.on_send(now_us, p.len());
            p[at..at + 2].copy_from_slice(&seq.to_be_bytes());
            numbered = p;
            &numbered[..]
        }
        _ => pkt,
    };
    match srtp.outbound.encrypt_rtp(pkt) {
        Ok(protected) => {
            ep.counters.rtp_packets_out += 1;
            ep.counters.rtp_bytes_out += protected.len() as u64;
            ep.rate_out.add(now_us, protected.len());
            out.push_back(Transmit {
                to,
                from: ep.transport.send_from,
                data: Vec::from(protected),
            });
        }
        Err(e) => tracing::debug!("srtp protect: {e}"),
    }
}

/// Protects `pkt` with `ep`'s outbound SRTCP context and queues it. Returns whether it was sent.
fn send_rtcp(ep: &mut Endpoint, pkt: &[u8], out: &mut VecDeque<Transmit>) -> bool {
    let (Some(to), Some(srtp)) = (ep.transport.send_to, ep.transport.srtp.as_mut()) else {
        return false;
    };
    match srtp.outbound.encrypt_rtcp(pkt) {
        Ok(protected) => {
            ep.counters.rtcp_packets_out += 1;
            out.push_back(Transmit {
                to,
                from: ep.transport.send_from,
                data: Vec::from(protected),
            });
            true
        }
        Err(e) => {
            tracing::debug!("srtcp protect: {e}");
            false
        }
    }
}
