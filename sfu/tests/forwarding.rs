//! End-to-end test of the SFU core against synthetic clients over an in-memory network on
//! virtual time: real ICE (the clients' addresses reach the SFU only as peer-reflexive
//! candidates), real DTLS with fingerprint checks, real SRTP; forwarding, extension stripping,
//! simulcast layer dropping, RTCP routing, keyframe-on-join and dominant speaker.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lilt_sfu::client::{Client, SrtpProtectionProfile};
use lilt_sfu::{
    DtlsCertificate, GroupSemantics, MediaKind, ReceiverConstraints, Sfu, SfuConfig, SfuEvent,
    Source, SsrcGroup,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc_rtp::header::{Extension, Header};
use rtc_rtp::packet::Packet;
use rtc_shared::marshal::{Marshal, MarshalSize, Unmarshal};

const SFU: &str = "10.0.0.1:10000";

struct Net {
    now: Instant,
    sfu_addr: SocketAddr,
    sfu: Sfu,
    clients: HashMap<SocketAddr, Client>,
    events: Vec<SfuEvent>,
    /// Drop the clients' STUN binding requests (their responses and everything else pass).
    drop_client_checks: bool,
    /// What the SFU allocated, by endpoint id.
    locals: HashMap<String, lilt_sfu::LocalTransport>,
    /// Binding requests the SFU sent to clients.
    sfu_checks: usize,
    /// Every DTLS datagram a client sent to the SFU, in order: (client, bytes).
    client_dtls: Vec<(SocketAddr, Vec<u8>)>,
    /// Constraints the next joining endpoint asks for.
    pending_constraints: Option<ReceiverConstraints>,
}

impl Net {
    fn new() -> Self {
        let now = Instant::now();
        let sfu_addr: SocketAddr = SFU.parse().expect("addr");
        let cert = DtlsCertificate::generate().expect("cert");
        let sfu = Sfu::new(
            SfuConfig::new(vec![sfu_addr], cert),
            Box::new(StdRng::seed_from_u64(7)),
            now,
        )
        .expect("sfu");
        Self {
            now,
            sfu_addr,
            sfu,
            clients: HashMap::new(),
            events: Vec::new(),
            drop_client_checks: false,
            pending_constraints: None,
            locals: HashMap::new(),
            sfu_checks: 0,
            client_dtls: Vec::new(),
        }
    }

    /// Delivers every queued datagram (zero latency) until the network is quiet.
    fn flush(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.sfu.poll_transmit() {
                moved = true;
                assert_eq!(t.from, self.sfu_addr);
                if t.data.first() == Some(&0) && t.data.get(1) == Some(&1) {
                    self.sfu_checks += 1;
                }
                if let Some(c) = self.clients.get_mut(&t.to) {
                    c.handle_input(self.now, self.sfu_addr, &t.data);
                }
            }
            for (addr, c) in self.clients.iter_mut() {
                while let Some(t) = c.poll_transmit() {
                    moved = true;
                    let is_check = t.data.first() == Some(&0) && t.data.get(1) == Some(&1);
                    if self.drop_client_checks && is_check {
                        continue;
                    }
                    if t.to == self.sfu_addr {
                        if t.data.first().is_some_and(|b| (20..=63).contains(b)) {
                            self.client_dtls.push((*addr, t.data.to_vec()));
                        }
                        self.sfu
                            .handle_input(self.now, *addr, self.sfu_addr, &t.data);
                    }
                }
            }
            while let Some(e) = self.sfu.poll_event() {
                self.events.push(e);
            }
            if !moved {
                break;
            }
        }
    }

    /// Advances virtual time by `step`, firing due timers.
    fn tick(&mut self, step: Duration) {
        self.now += step;
        if self.sfu.poll_timeout().is_some_and(|t| t <= self.now) {
            self.sfu.handle_timeout(self.now);
            // A timer the core handled must move on, or a shell would spin.
            let next = self.sfu.poll_timeout();
            assert!(
                next.is_none_or(|t| t > self.now),
                "timer stuck at {next:?} (now {:?})",
                self.now
            );
        }
        for c in self.clients.values_mut() {
            if c.poll_timeout().is_some_and(|t| t <= self.now) {
                c.handle_timeout(self.now);
            }
        }
        self.flush();
    }

    fn run_until(&mut self, what: &str, mut cond: impl FnMut(&mut Self) -> bool) {
        for _ in 0..2000 {
            self.flush();
            if cond(self) {
                return;
            }
            self.tick(Duration::from_millis(10));
        }
        panic!("timed out waiting for {what}; events: {:?}", self.events);
    }

    /// Allocates `endpoint` and a client at `addr`, exchanges transports, runs until connected.
    fn join(&mut self, endpoint: &str, addr: &str, seed: u64) -> SocketAddr {
        self.join_with(endpoint, addr, seed, lilt_sfu::SRTP_PROFILES.to_vec())
    }

    /// As `join_with`, the endpoint asking for `constraints` from the start.
    fn join_with_constraints(
        &mut self,
        endpoint: &str,
        addr: &str,
        seed: u64,
        profiles: Vec<SrtpProtectionProfile>,
        constraints: ReceiverConstraints,
    ) -> SocketAddr {
        self.pending_constraints = Some(constraints);
        self.join_with(endpoint, addr, seed, profiles)
    }

    fn join_with(
        &mut self,
        endpoint: &str,
        addr: &str,
        seed: u64,
        profiles: Vec<SrtpProtectionProfile>,
    ) -> SocketAddr {
        let addr: SocketAddr = addr.parse().expect("addr");
        let local = self
            .sfu
            .allocate_endpoint("conf", endpoint)
            .expect("allocate");
        assert!(local.ufrag.len() >= 4 && local.pwd.len() >= 22);
        assert_eq!(local.fingerprint.value, self.sfu.fingerprint());
        assert_eq!(local.candidates[0].addr, self.sfu_addr);
        let names: Vec<_> = local
            .feedback_sources
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, ["jvb-a0", "jvb-v0"]);
        self.locals.insert(endpoint.to_owned(), local.clone());
        if let Some(c) = self.pending_constraints.take() {
            self.sfu
                .set_receiver_constraints("conf", endpoint, c)
                .expect("constraints");
        }
        let mut client = Client::new(self.now, addr, seed).expect("client");
        client.set_srtp_profiles(profiles);
        client.set_remote(self.now, &local).expect("client remote");
        let remote = client.remote_transport();
        self.clients.insert(addr, client);
        // As with a browser, the client starts its checks before the focus has relayed its
        // answer (ufrag, pwd, fingerprint) to the SFU.
        for _ in 0..30 {
            self.tick(Duration::from_millis(10));
        }
        self.sfu
            .set_remote_transport("conf", endpoint, &remote)
            .expect("sfu remote");
        let asked = self.now;
        let ep = endpoint.to_owned();
        self.run_until("endpoint connected", |n| {
            n.clients[&addr].is_connected()
                && n.events.iter().any(|e| {
                    matches!(e, SfuEvent::EndpointConnected { endpoint, .. } if *endpoint == ep)
                })
        });
        assert!(
            self.now - asked <= Duration::from_millis(50),
            "connecting took {:?} after the SFU learned the remote transport",
            self.now - asked
        );
        // The SFU learned the client's address only from the client's own checks.
        assert!(self.events.iter().any(|e| matches!(
            e,
            SfuEvent::IceConnected { endpoint: en, remote, .. } if *en == ep && *remote == addr
        )));
        addr
    }

    fn client(&mut self, addr: SocketAddr) -> &mut Client {
        self.clients.get_mut(&addr).expect("client")
    }

    fn drain_rtp(&mut self, addr: SocketAddr) -> Vec<Packet> {
        let c = self.client(addr);
        let mut v = vec![];
        while let Some(p) = c.poll_rtp() {
            v.push(Packet::unmarshal(&mut &p[..]).expect("rtp from sfu parses"));
        }
        v
    }

    fn drain_rtcp(&mut self, addr: SocketAddr) -> Vec<Box<dyn rtc_rtcp::packet::Packet>> {
        let c = self.client(addr);
        let mut v = vec![];
        while let Some(p) = c.poll_rtcp() {
            v.extend(rtc_rtcp::packet::unmarshal(&mut &p[..]).expect("rtcp from sfu parses"));
        }
        v
    }
}

fn rtp(ssrc: u32, pt: u8, seq: u16, exts: &[(u8, &[u8])], payload: &[u8]) -> Vec<u8> {
    let header = Header {
        version: 2,
        extension: !exts.is_empty(),
        payload_type: pt,
        sequence_number: seq,
        timestamp: u32::from(seq) * 960,
        ssrc,
        extension_profile: if exts.is_empty() { 0 } else { 0xBEDE },
        extensions: exts
            .iter()
            .map(|(id, p)| Extension {
                id: *id,
                payload: Bytes::copy_from_slice(p),
            })
            .collect(),
        ..Header::default()
    };
    Packet {
        header,
        payload: Bytes::copy_from_slice(payload),
    }
    .marshal()
    .expect("marshal")
    .to_vec()
}

/// Constraints asking for at most `height` from every sender.
fn at_most(height: u32) -> ReceiverConstraints {
    ReceiverConstraints {
        default_max_height: Some(height),
        ..ReceiverConstraints::default()
    }
}

fn plis_for(pkts: &[Box<dyn rtc_rtcp::packet::Packet>], media: u32) -> usize {
    pkts.iter()
        .filter_map(|p| p.as_any().downcast_ref::<PictureLossIndication>())
        .filter(|p| p.media_ssrc == media)
        .count()
}

const A_AUDIO: u32 = 1111;
const NTP: u64 = 0x1122_3344_5566_7788;
const A_VIDEO: [u32; 3] = [2221, 2222, 2223];
const A_RTX: [u32; 3] = [3331, 3332, 3333];

/// Conference `conf` with A (sending `a_sources`) connected, then B joining; client seeds
/// `seed` and `seed + 1`.
fn a_sending_then_b(seed: u64) -> (Net, SocketAddr, SocketAddr) {
    let mut net = Net::new();
    net.sfu.create_conference("conf").expect("conference");
    let a = net.join("a", "192.168.1.2:50000", seed);
    let (sources, groups) = a_sources();
    net.sfu
        .set_sources("conf", "a", sources, groups)
        .expect("sources");
    let b = net.join("b", "192.168.1.3:50000", seed + 1);
    (net, a, b)
}

fn a_sources() -> (Vec<Source>, Vec<SsrcGroup>) {
    let mut sources = vec![Source {
        ssrc: A_AUDIO,
        kind: MediaKind::Audio,
        name: Some("a-a0".into()),
    }];
    for s in A_VIDEO.iter().chain(A_RTX.iter()) {
        sources.push(Source {
            ssrc: *s,
            kind: MediaKind::Video,
            name: Some("a-v0".into()),
        });
    }
    let mut groups = vec![SsrcGroup {
        semantics: GroupSemantics::Sim,
        ssrcs: A_VIDEO.to_vec(),
    }];
    for (p, r) in A_VIDEO.iter().zip(A_RTX.iter()) {
        groups.push(SsrcGroup {
            semantics: GroupSemantics::Fid,
            ssrcs: vec![*p, *r],
        });
    }
    (sources, groups)
}

#[test]
fn forwards_with_aes_cm_hmac_sha1_80() {
    forward_media_and_feedback(
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        "SRTP_AES128_CM_HMAC_SHA1_80",
    );
}

#[test]
fn forwards_with_aead_aes_128_gcm() {
    forward_media_and_feedback(
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
        "SRTP_AEAD_AES_128_GCM",
    );
}

#[test]
fn forwards_with_aead_aes_256_gcm() {
    forward_media_and_feedback(
        SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
        "SRTP_AEAD_AES_256_GCM",
    );
}

/// Two clients (both negotiating `profile`): A sends audio, simulcast video with RTX and a
/// sender report; B sends PLI, NACK and a receiver report.
fn forward_media_and_feedback(profile: SrtpProtectionProfile, name: &str) {
    let mut net = Net::new();
    net.sfu.create_conference("conf").expect("conference");
    let a = net.join_with("a", "192.168.1.2:50000", 1, vec![profile]);
    let (sources, groups) = a_sources();
    net.sfu
        .set_sources("conf", "a", sources, groups)
        .expect("sources");
    net.flush();
    // A alone: nobody to send a keyframe to yet.
    assert_eq!(plis_for(&net.drain_rtcp(a), A_VIDEO[0]), 0);

    // B joins, asking for 180p at most: A is asked for a keyframe of that layer (from jvb-v0
    // of A).
    let b = net.join_with_constraints("b", "192.168.1.3:50000", 2, vec![profile], at_most(180));
    net.flush();
    assert_eq!(net.client(a).srtp_profile(), Some(name));
    let to_a = net.drain_rtcp(a);
    assert_eq!(
        plis_for(&to_a, A_VIDEO[0]),
        1,
        "keyframe request on join: {to_a:?}"
    );
    assert_eq!(plis_for(&to_a, A_VIDEO[1]), 0);

    // The focus relays a later transport-info the same way: the same transport again
    // changes nothing, a different one is refused; media keeps flowing below.
    let remote_b = net.client(b).remote_transport();
    net.sfu
        .set_remote_transport("conf", "b", &remote_b)
        .expect("same transport again");
    let mut changed = remote_b.clone();
    changed.ufrag = "otherufrag".into();
    assert_eq!(
        net.sfu.set_remote_transport("conf", "b", &changed),
        Err(lilt_sfu::SfuError::RemoteTransportChanged)
    );
    net.flush();

    // Audio with audio level (id 1) and two hop-by-hop extensions (ids 3, 5).
    for seq in 0..10u16 {
        let p = rtp(
            A_AUDIO,
            111,
            seq,
            &[(1, &[0x80 | 30]), (3, &[1, 2, 3]), (5, &[9, 9])],
            &[seq as u8; 40],
        );
        net.client(a).send_rtp(&p).expect("send");
    }
    net.flush();
    let got = net.drain_rtp(b);
    assert_eq!(got.len(), 10);
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p.header.ssrc, A_AUDIO);
        assert_eq!(p.header.payload_type, 111);
        assert_eq!(p.header.sequence_number, i as u16);
        assert_eq!(&p.payload[..], &[i as u8; 40][..]);
        // The audio level stays; the transport-wide number (5) carries the SFU's own
        // numbering towards B, not A's 0x0909.
        assert_eq!(p.header.get_extension_ids(), vec![1, 5]);
        assert_eq!(p.header.get_extension(1).as_deref(), Some(&[0x80 | 30][..]));
        assert_ne!(p.header.get_extension(5).as_deref(), Some(&[9, 9][..]));
    }
    let numbers: Vec<u16> = got
        .iter()
        .filter_map(|p| p.header.get_extension(5))
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{numbers:?}"
    );
    // The sender does not get its own media back.
    assert!(net.drain_rtp(a).is_empty());

    // Video: of the simulcast layers, B gets the one it asked for (a VP8 keyframe starts
    // it), and its RTX when it retransmits a packet B got.
    for (i, ssrc) in A_VIDEO.iter().chain(A_RTX.iter()).enumerate() {
        let payload: &[u8] = if i < 3 {
            b"\x10\x00frame"
        } else {
            b"\x00\x07frame"
        };
        let p = rtp(
            *ssrc,
            if i < 3 { 100 } else { 96 },
            7,
            &[(3, &[1, 2, 3])],
            payload,
        );
        net.client(a).send_rtp(&p).expect("send");
    }
    net.flush();
    let mut ssrcs: Vec<u32> = net.drain_rtp(b).iter().map(|p| p.header.ssrc).collect();
    ssrcs.sort();
    assert_eq!(ssrcs, vec![A_VIDEO[0], A_RTX[0]]);

    // B's PLI, NACK and RR: PLI and NACK reach A, the RR is consumed.
    let b_ssrc = 0xb0b;
    let fb: Vec<Box<dyn rtc_rtcp::packet::Packet>> = vec![
        Box::new(ReceiverReport {
            ssrc: b_ssrc,
            ..Default::default()
        }),
        Box::new(PictureLossIndication {
            sender_ssrc: b_ssrc,
            media_ssrc: A_VIDEO[0],
        }),
        Box::new(TransportLayerNack {
            sender_ssrc: b_ssrc,
            media_ssrc: A_VIDEO[0],
            nacks: vec![NackPair {
                packet_id: 7,
                lost_packets: 0,
            }],
        }),
    ];
    let compound = rtc_rtcp::packet::marshal(&fb).expect("marshal");
    net.client(b).send_rtcp(&compound).expect("send rtcp");
    net.flush();
    let to_a = net.drain_rtcp(a);
    assert_eq!(plis_for(&to_a, A_VIDEO[0]), 1, "{to_a:?}");
    let nacks: Vec<_> = to_a
        .iter()
        .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
        .collect();
    assert_eq!(nacks.len(), 1);
    // Asked by B's number of the packet it got: asked of A by the layer's own (the same here,
    // as B gets the first layer and has had no switch).
    assert_eq!(
        (nacks[0].media_ssrc, nacks[0].nacks[0].packet_id),
        (A_VIDEO[0], 7)
    );
    assert!(
        to_a.iter()
            .filter_map(|p| p.as_any().downcast_ref::<ReceiverReport>())
            .all(|rr| rr.ssrc != b_ssrc),
        "B's receiver report must not be forwarded: {to_a:?}"
    );

    // A's sender report reaches B (report blocks trimmed).
    let sr: Vec<Box<dyn rtc_rtcp::packet::Packet>> = vec![Box::new(SenderReport {
        ssrc: A_VIDEO[0],
        ntp_time: NTP,
        rtp_time: 7,
        packet_count: 3,
        octet_count: 300,
        reports: vec![rtc_rtcp::reception_report::ReceptionReport {
            ssrc: 99,
            ..Default::default()
        }],
        ..Default::default()
    })];
    net.client(a)
        .send_rtcp(&rtc_rtcp::packet::marshal(&sr).expect("marshal"))
        .expect("send");
    net.flush();
    let to_b = net.drain_rtcp(b);
    let srs: Vec<_> = to_b
        .iter()
        .filter_map(|p| p.as_any().downcast_ref::<SenderReport>())
        .collect();
    assert_eq!(srs.len(), 1);
    assert_eq!(
        (srs[0].ssrc, srs[0].ntp_time, srs[0].octet_count),
        (A_VIDEO[0], NTP, 300)
    );
    assert!(srs[0].reports.is_empty());

    // The SFU's own receiver reports to A, from A's jvb-v0 for video and jvb-a0 for audio,
    // cover every SSRC it received from A (dropped layers included), with A's SR echoed.
    for _ in 0..120 {
        net.tick(Duration::from_millis(10));
    }
    let fb_audio = net.locals["a"].feedback_sources[0].ssrc;
    let fb_video = net.locals["a"].feedback_sources[1].ssrc;
    let to_a = net.drain_rtcp(a);
    let rr_from = |fb: u32| {
        to_a.iter()
            .filter_map(|p| p.as_any().downcast_ref::<ReceiverReport>())
            .find(|rr| rr.ssrc == fb)
            .unwrap_or_else(|| panic!("no receiver report from {fb}: {to_a:?}"))
    };
    let audio_rr = rr_from(fb_audio);
    let audio_ssrcs: Vec<u32> = audio_rr.reports.iter().map(|r| r.ssrc).collect();
    assert_eq!(audio_ssrcs, vec![A_AUDIO]);
    let rr = rr_from(fb_video);
    let mut reported: Vec<u32> = rr.reports.iter().map(|r| r.ssrc).collect();
    reported.sort();
    let mut all: Vec<u32> = A_VIDEO.iter().chain(&A_RTX).copied().collect();
    all.sort();
    assert_eq!(reported, all);
    let audio = &audio_rr.reports[0];
    assert_eq!((audio.last_sequence_number, audio.total_lost), (9, 0));
    let video = rr
        .reports
        .iter()
        .find(|r| r.ssrc == A_VIDEO[0])
        .expect("video block");
    assert_eq!(video.last_sender_report, 0x3344_5566);
    // DLSR: the time from the SR to this report (at most the 1.2 s waited), in 1/65536 s.
    assert!(
        video.delay > 0 && video.delay < 65536 * 6 / 5,
        "DLSR {}",
        video.delay
    );

    // Counters.
    let stats = net.sfu.stats();
    let sa = &stats.endpoints[0];
    let sb = &stats.endpoints[1];
    assert_eq!((sa.endpoint.as_str(), sb.endpoint.as_str()), ("a", "b"));
    assert!(sa.dtls_connected && sb.dtls_connected);
    assert_eq!((sa.srtp_profile, sb.srtp_profile), (Some(name), Some(name)));
    assert_eq!(sa.counters.rtp_packets_in, 16);
    assert_eq!(sb.counters.rtp_packets_out, 12);
    // The layers B does not get are not losses: nothing was dropped.
    assert_eq!(sa.counters.dropped, 0);
    assert_eq!(sb.counters.plis_in, 1);
    assert_eq!(sb.counters.nacks_in, 1);
    assert_eq!(sa.counters.nacks_out, 1);
    assert_eq!(sa.counters.plis_out, 2);
    // Loss on the way in (A's audio 0..9 and video 7: none missing) and the ICE round trip
    // (measured on this zero-delay network, so present and tiny).
    assert_eq!(sa.packets_lost_in, 0);
    assert!(sa.rtt_us.is_some_and(|us| us < 1_000), "{:?}", sa.rtt_us);
    assert!(sb.rtt_us.is_some());
    // Audio 12 after 9: 10 and 11 count as lost.
    let p = rtp(A_AUDIO, 111, 12, &[(1, &[0x80 | 30])], &[0; 40]);
    net.client(a).send_rtp(&p).expect("send");
    net.flush();
    assert_eq!(net.sfu.stats().endpoints[0].packets_lost_in, 2);
}

#[test]
fn dominant_speaker_follows_audio_levels() {
    let mut net = Net::new();
    net.sfu.create_conference("conf").expect("conference");
    let a = net.join("a", "192.168.1.2:50000", 3);
    let b = net.join("b", "192.168.1.3:50000", 4);
    let c = net.join("c", "192.168.1.4:50000", 5);
    for (ep, ssrc) in [("a", 10u32), ("b", 20), ("c", 30)] {
        net.sfu
            .set_sources(
                "conf",
                ep,
                vec![Source {
                    ssrc,
                    kind: MediaKind::Audio,
                    name: None,
                }],
                vec![],
            )
            .expect("sources");
    }
    net.events.clear();
    // B talks loudly for 3 s while A and C are near silent: 50 packets/s each.
    let mut seq = 0u16;
    for _ in 0..150 {
        seq += 1;
        for (addr, ssrc, level) in [(a, 10u32, 110u8), (b, 20, 25), (c, 30, 120)] {
            let p = rtp(ssrc, 111, seq, &[(1, &[level])], b"opus");
            net.client(addr).send_rtp(&p).expect("send");
        }
        net.tick(Duration::from_millis(20));
    }
    let changes: Vec<_> = net
        .events
        .iter()
        .filter_map(|e| match e {
            SfuEvent::DominantSpeakerChanged { endpoint, .. } => Some(endpoint.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(changes, vec!["b".to_owned()]);
    // Each client got the other two's audio.
    assert_eq!(net.drain_rtp(a).len(), 300);
    assert_eq!(net.drain_rtp(c).len(), 300);
}

#[test]
fn wrong_fingerprint_fails_the_endpoint() {
    let mut net = Net::new();
    net.sfu.create_conference("conf").expect("conference");
    let addr: SocketAddr = "192.168.1.9:50000".parse().expect("addr");
    let local = net.sfu.allocate_endpoint("conf", "m").expect("allocate");
    let mut client = Client::new(net.now, addr, 9).expect("client");
    client.set_remote(net.now, &local).expect("client remote");
    let mut remote = client.remote_transport();
    remote.fingerprint.value = ["AB"; 32].join(":");
    net.sfu
        .set_remote_transport("conf", "m", &remote)
        .expect("remote");
    net.clients.insert(addr, client);
    net.run_until("endpoint failed", |n| {
        n.events
            .iter()
            .any(|e| matches!(e, SfuEvent::EndpointFailed { endpoint, .. } if endpoint == "m"))
    });
    assert!(net.events.iter().any(|e| matches!(
        e,
        SfuEvent::EndpointFailed { reason, .. } if reason.contains("fingerprint")
    )));
    assert!(!net.clients[&addr].is_connected());
    assert!(!net.sfu.stats().endpoints[0].dtls_connected);
}

#[test]
fn garbage_input_never_panics() {
    let mut net = Net::new();
    net.sfu.create_conference("conf").expect("conference");
    let a = net.join("a", "192.168.1.2:50000", 6);
    let mut r = StdRng::seed_from_u64(99);
    use rand::RngCore;
    for len in 0..400usize {
        let mut buf = vec![0u8; len % 300];
        r.fill_bytes(&mut buf);
        if let Some(b) = buf.first_mut() {
            *b = [0u8, 1, 22, 23, 128, 129, 144, 200][len % 8];
        }
        net.sfu.handle_input(net.now, a, net.sfu_addr, &buf);
        let stranger: SocketAddr = "203.0.113.5:1234".parse().expect("addr");
        net.sfu.handle_input(net.now, stranger, net.sfu_addr, &buf);
    }
    net.flush();
    assert!(net.sfu.stats().endpoints[0].dtls_connected);
}

#[test]
fn checks_sent_before_the_answer_reaches_the_sfu_are_replayed() {
    // The client's checks arrive while the SFU does not know its credentials yet; after the
    // focus relays them, every further check from the client is lost. The SFU still connects:
    // it replays the early check, learns the client's address from it and checks back.
    let mut net = Net::new();
    net.sfu.create_conference("conf").expect("conference");
    let addr: SocketAddr = "192.168.1.7:50000".parse().expect("addr");
    let local = net.sfu.allocate_endpoint("conf", "e").expect("allocate");
    let mut client = Client::new(net.now, addr, 11).expect("client");
    client.set_remote(net.now, &local).expect("client remote");
    let remote = client.remote_transport();
    net.clients.insert(addr, client);
    net.tick(Duration::from_millis(10));
    net.drop_client_checks = true;
    net.sfu
        .set_remote_transport("conf", "e", &remote)
        .expect("sfu remote");
    net.run_until("connected without further client checks", |n| {
        n.clients[&addr].is_connected()
            && n.events
                .iter()
                .any(|e| matches!(e, SfuEvent::EndpointConnected { .. }))
    });
}

#[test]
fn a_signalled_candidate_is_checked_without_waiting_for_the_client() {
    // The focus relays the client's candidate. While the client's binding requests are lost
    // the SFU cannot learn its address peer-reflexively, so a check from the SFU to the
    // client proves it used the signalled candidate; then the network heals and ICE and DTLS
    // complete.
    let mut net = Net::new();
    net.sfu.create_conference("conf").expect("conference");
    let addr: SocketAddr = "192.168.1.8:50000".parse().expect("addr");
    let local = net.sfu.allocate_endpoint("conf", "e").expect("allocate");
    let mut client = Client::new(net.now, addr, 12).expect("client");
    client.set_remote(net.now, &local).expect("client remote");
    let remote = client.remote_transport();
    net.clients.insert(addr, client);
    net.drop_client_checks = true;
    net.sfu
        .set_remote_transport("conf", "e", &remote)
        .expect("sfu remote");
    net.tick(Duration::from_millis(10));
    assert_eq!(net.sfu_checks, 0);
    net.sfu
        .add_remote_candidate("conf", "e", addr)
        .expect("candidate");
    net.run_until("the SFU checks the signalled candidate", |n| {
        n.sfu_checks > 0
    });
    net.drop_client_checks = false;
    net.run_until("connected", |n| {
        n.clients[&addr].is_connected()
            && n.events
                .iter()
                .any(|e| matches!(e, SfuEvent::EndpointConnected { .. }))
    });
}

#[test]
fn a_vanished_client_fails_by_ice_consent_and_the_others_stay() {
    let mut net = Net::new();
    net.sfu.create_conference("conf").expect("conference");
    let a = net.join("a", "192.168.1.2:50000", 21);
    let _b = net.join("b", "192.168.1.3:50000", 22);
    net.events.clear();
    net.clients.remove(&a);
    for _ in 0..400 {
        net.tick(Duration::from_millis(100));
    }
    let failed: Vec<_> = net
        .events
        .iter()
        .filter_map(|e| match e {
            SfuEvent::EndpointFailed {
                endpoint, reason, ..
            } => Some((endpoint.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "a");
    assert!(failed[0].1.contains("ice"), "{failed:?}");
    let stats = net.sfu.stats();
    assert!(stats.endpoints[0].failed);
    assert!(!stats.endpoints[1].failed && stats.endpoints[1].dtls_connected);
}

#[test]
fn a_transport_info_and_a_repeated_handshake_after_dtls_completed_keep_the_endpoint() {
    // Under load a browser's transport-info (its candidates, the same ufrag, pwd and
    // fingerprint) reaches the SFU after DTLS completed. The focus relays it as the bridge
    // does: the same remote transport again, then every literal address as a candidate, here
    // the client's own address, which ICE already knows peer-reflexively (a new host pair to
    // the same 5-tuple). Then the client's whole handshake arrives again (retransmitted
    // flights). The association must survive all of it: no failure ("dtls: invalid remote
    // address" once the transport-info rebuilt the DTLS endpoint under an established
    // session), and media flows both ways with the keys of the first handshake.
    let (mut net, a, b) = a_sending_then_b(31);
    net.sfu
        .set_sources(
            "conf",
            "b",
            vec![Source {
                ssrc: 4444,
                kind: MediaKind::Audio,
                name: None,
            }],
            vec![],
        )
        .expect("sources");
    net.flush();
    net.events.clear();
    let handshake_a: Vec<Vec<u8>> = net
        .client_dtls
        .iter()
        .filter(|(from, _)| *from == a)
        .map(|(_, d)| d.clone())
        .collect();
    assert!(handshake_a.len() >= 2, "{}", handshake_a.len());

    // The transport-info, exactly as the bridge relays it.
    for (endpoint, addr) in [("a", a), ("b", b)] {
        let remote = net.client(addr).remote_transport();
        net.sfu
            .set_remote_transport("conf", endpoint, &remote)
            .expect("same transport again");
        net.sfu
            .add_remote_candidate("conf", endpoint, addr)
            .expect("candidate");
    }
    net.flush();
    for _ in 0..20 {
        net.tick(Duration::from_millis(100));
    }
    // The client's handshake again, every datagram of it, after completion.
    for d in &handshake_a {
        net.sfu.handle_input(net.now, a, net.sfu_addr, d);
    }
    net.flush();
    for _ in 0..100 {
        net.tick(Duration::from_millis(100));
    }
    let failed: Vec<_> = net
        .events
        .iter()
        .filter(|e| matches!(e, SfuEvent::EndpointFailed { .. }))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let stats = net.sfu.stats();
    for ep in &stats.endpoints {
        assert!(!ep.failed && ep.dtls_connected, "{ep:?}");
    }
    assert!(net.client(a).is_connected() && net.client(b).is_connected());

    // Media both ways with the first handshake's keys.
    for seq in 100..105u16 {
        let p = rtp(A_AUDIO, 111, seq, &[(1, &[0x80 | 30])], &[1; 20]);
        net.client(a).send_rtp(&p).expect("send a");
        let p = rtp(4444, 111, seq, &[(1, &[0x80 | 30])], &[2; 20]);
        net.client(b).send_rtp(&p).expect("send b");
    }
    net.flush();
    assert_eq!(net.drain_rtp(b).len(), 5);
    assert_eq!(net.drain_rtp(a).len(), 5);
}

#[test]
fn a_client_that_closes_dtls_and_handshakes_again_is_keyed_again() {
    // The client sends close_notify and starts a new handshake with the same certificate over
    // the same ICE pair (a browser restarting its DTLS transport). The SFU must not declare the
    // endpoint failed while ICE consent holds (it used to, with "dtls: invalid remote address"
    // at the next timer, the association having vanished under it), and must accept the new
    // handshake and key SRTP from it.
    let (mut net, a, b) = a_sending_then_b(41);
    net.flush();
    net.events.clear();
    let now = net.now;
    net.client(a).restart_dtls(now);
    net.run_until("the client keyed again", |n| n.clients[&a].is_connected());
    for _ in 0..100 {
        net.tick(Duration::from_millis(100));
    }
    let failed: Vec<_> = net
        .events
        .iter()
        .filter(|e| matches!(e, SfuEvent::EndpointFailed { .. }))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    // Media from A with the new keys reaches B.
    for seq in 0..5u16 {
        let p = rtp(A_AUDIO, 111, seq, &[(1, &[0x80 | 30])], &[3; 20]);
        net.client(a).send_rtp(&p).expect("send a");
    }
    net.flush();
    assert_eq!(net.drain_rtp(b).len(), 5);
}

/// A sender whose packets carry transport-wide sequence numbers gets transport-cc feedback
/// about them every 100 ms (what its bandwidth estimator feeds on); the numbers are
/// hop-by-hop and never reach the receivers.
#[test]
fn senders_get_transport_cc_feedback_and_receivers_get_the_sfus_own_numbers() {
    use rtc_rtcp::transport_feedbacks::transport_layer_cc::{
        PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
    };
    let (mut net, a, b) = a_sending_then_b(30);
    net.flush();
    net.drain_rtcp(a);
    net.drain_rtp(b);
    // Twenty video packets 2 ms apart, transport-wide numbers 500..520 with 507 lost.
    for i in 0..20u16 {
        if i != 7 {
            let twcc = (500 + i).to_be_bytes();
            // The first is a VP8 keyframe, which starts B's video.
            let first = if i == 0 { 0x10 } else { 0x00 };
            let p = rtp(A_VIDEO[0], 100, i, &[(5, &twcc)], &[first; 100]);
            net.client(a).send_rtp(&p).expect("send");
        }
        net.flush();
        net.tick(Duration::from_millis(2));
    }
    net.tick(Duration::from_millis(100));
    let feedback: Vec<TransportLayerCc> = net
        .drain_rtcp(a)
        .iter()
        .filter_map(|p| p.as_any().downcast_ref::<TransportLayerCc>().cloned())
        .collect();
    assert!(!feedback.is_empty(), "no transport-cc feedback reached A");
    // Together the feedback packets cover 500..519 once each, in order, 507 lost.
    let mut statuses = Vec::new();
    let mut next = 500u16;
    for fb in &feedback {
        assert_eq!(fb.base_sequence_number, next);
        let mut symbols = Vec::new();
        for c in &fb.packet_chunks {
            match c {
                PacketStatusChunk::RunLengthChunk(r) => {
                    symbols.extend(std::iter::repeat_n(
                        r.packet_status_symbol,
                        usize::from(r.run_length),
                    ));
                }
                PacketStatusChunk::StatusVectorChunk(v) => symbols.extend(v.symbol_list.iter()),
            }
        }
        symbols.truncate(usize::from(fb.packet_status_count));
        next += fb.packet_status_count;
        statuses.extend(symbols);
    }
    assert_eq!(next, 520);
    let lost: Vec<usize> = statuses
        .iter()
        .enumerate()
        .filter(|(_, s)| **s == SymbolTypeTcc::PacketNotReceived)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(lost, [7]);
    // The receiver got the video numbered by the SFU for it: consecutive, whatever A lost.
    let got = net.drain_rtp(b);
    assert_eq!(got.len(), 19);
    let numbers: Vec<u16> = got
        .iter()
        .map(|p| p.header.get_extension(5).expect("numbered"))
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{numbers:?}"
    );
    assert!(
        numbers.iter().all(|n| !(500..520).contains(n)),
        "{numbers:?}"
    );
    assert!(
        net.sfu
            .stats()
            .endpoints
            .iter()
            .any(|e| e.endpoint == "a" && e.counters.twcc_feedback_out >= 1)
    );
}

/// Simulcast: each receiver gets one layer under the first layer's SSRC, chosen by its
/// constraints among the layers the sender sends, switching only at keyframes with its
/// sequence numbers continuing; when the sender stops its top layer, a receiver on it moves
/// down (and the sender is asked for a keyframe of the new layer).
#[test]
fn receivers_get_the_layer_they_ask_for_and_follow_the_sender() {
    let (mut net, a, b) = a_sending_then_b(40);
    let c = net.join_with_constraints(
        "c",
        "192.168.1.4:50000",
        42,
        lilt_sfu::SRTP_PROFILES.to_vec(),
        at_most(180),
    );
    net.flush();
    net.drain_rtcp(a);
    // One frame on every layer, 33 ms apart: a keyframe first, then delta frames.
    let mut seq = [1000u16, 2000, 3000];
    let mut send = |net: &mut Net, layers: &[usize], key: bool| {
        for &l in layers {
            // VP8 payload header: the P bit clear on keyframes.
            let vp8 = if key { 0x00 } else { 0x01 };
            let p = rtp(A_VIDEO[l], 100, seq[l], &[], &[0x10, vp8, l as u8]);
            seq[l] = seq[l].wrapping_add(1);
            net.client(a).send_rtp(&p).expect("send");
        }
        net.flush();
        net.tick(Duration::from_millis(33));
    };
    send(&mut net, &[0, 1, 2], true);
    for _ in 0..5 {
        send(&mut net, &[0, 1, 2], false);
    }
    let layer_of = |p: &Packet| p.payload[2];
    let got_b = net.drain_rtp(b);
    let got_c = net.drain_rtp(c);
    // B, unconstrained, gets the top layer (climbing there within the first frame, as each
    // layer shows up with its keyframe); C, at most 180p, the first; both as A_VIDEO[0].
    assert_eq!(
        got_b.iter().map(layer_of).collect::<Vec<_>>(),
        [0, 1, 2, 2, 2, 2, 2, 2]
    );
    assert_eq!(got_c.iter().map(layer_of).collect::<Vec<_>>(), [0; 6]);
    assert!(
        got_b
            .iter()
            .chain(&got_c)
            .all(|p| p.header.ssrc == A_VIDEO[0])
    );
    let seqs: Vec<u16> = got_b.iter().map(|p| p.header.sequence_number).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{seqs:?}"
    );
    let last_b = *seqs.last().expect("packets");

    // A stops its top layer (its bandwidth fell). After the layer timeout B's target becomes
    // the middle layer: A is asked for its keyframe, and B switches there, continuing.
    for _ in 0..50 {
        send(&mut net, &[0, 1], false);
    }
    // Until a keyframe of the middle layer, B gets nothing (its layer stopped).
    assert!(net.drain_rtp(b).is_empty());
    let to_a = net.drain_rtcp(a);
    assert!(plis_for(&to_a, A_VIDEO[1]) >= 1, "{to_a:?}");
    let before = net.sfu.stats();
    send(&mut net, &[0, 1], true);
    send(&mut net, &[0, 1], false);
    let got = net.drain_rtp(b);
    assert_eq!(got.iter().map(layer_of).collect::<Vec<_>>(), [1, 1]);
    assert_eq!(got[0].header.ssrc, A_VIDEO[0]);
    assert_eq!(got[0].header.sequence_number, last_b.wrapping_add(1));
    assert_eq!(got[1].header.sequence_number, last_b.wrapping_add(2));
    // C stayed on the first layer all along.
    assert!(net.drain_rtp(c).iter().all(|p| layer_of(p) == 0));
    assert!(net.sfu.stats().endpoints.len() == before.endpoints.len());

    // B turns video off (height 0): nothing more of A's video reaches it.
    net.sfu
        .set_receiver_constraints("conf", "b", at_most(0))
        .expect("constraints");
    send(&mut net, &[0, 1], true);
    assert!(net.drain_rtp(b).is_empty());
    assert_eq!(net.drain_rtp(c).len(), 1);
}

/// Last-N: with a limit of 1, each receiver gets the video of the most recent dominant
/// speaker only (audio from everyone), is told which source that is (`ForwardedSources`), and
/// follows the speaker when it changes; a sender it puts on stage comes first; a receiver may
/// ask for fewer (0: no video).
#[test]
fn last_n_forwards_the_most_recent_speakers_video() {
    let mut net = Net::new();
    net.sfu.set_last_n(Some(1));
    net.sfu.create_conference("conf").expect("conference");
    let addrs: Vec<SocketAddr> = [("a", 2u8), ("b", 3), ("c", 4), ("d", 5)]
        .iter()
        .map(|(ep, n)| net.join(ep, &format!("192.168.1.{n}:50000"), u64::from(*n) + 50))
        .collect();
    let (a, b, c, d) = (addrs[0], addrs[1], addrs[2], addrs[3]);
    // A, B and C send audio (10, 20, 30) and one plain video source each (11, 21, 31).
    for (ep, base) in [("a", 10u32), ("b", 20), ("c", 30)] {
        net.sfu
            .set_sources(
                "conf",
                ep,
                vec![
                    Source {
                        ssrc: base,
                        kind: MediaKind::Audio,
                        name: Some(format!("{ep}-a0")),
                    },
                    Source {
                        ssrc: base + 1,
                        kind: MediaKind::Video,
                        name: Some(format!("{ep}-v0")),
                    },
                ],
                vec![],
            )
            .expect("sources");
    }
    net.events.clear();
    // `speaker` talks for 2 s, everyone sends video; what D got of each sender's video.
    let mut seq = 0u16;
    let mut talk = |net: &mut Net, speaker: u32| {
        for _ in 0..100 {
            seq += 1;
            for (addr, base) in [(a, 10u32), (b, 20), (c, 30)] {
                let level = if base == speaker { 20u8 } else { 120 };
                let p = rtp(base, 111, seq, &[(1, &[level])], b"opus");
                net.client(addr).send_rtp(&p).expect("send");
                let v = rtp(base + 1, 100, seq, &[], b"\x10\x00vp8");
                net.client(addr).send_rtp(&v).expect("send");
            }
            net.tick(Duration::from_millis(20));
        }
        let got = net.drain_rtp(d);
        let video_from = |ssrc: u32| got.iter().filter(|p| p.header.ssrc == ssrc).count();
        let audio = got.iter().filter(|p| p.header.payload_type == 111).count();
        (video_from(11), video_from(21), video_from(31), audio)
    };
    let told = |net: &mut Net| -> Vec<Vec<String>> {
        let v = net
            .events
            .iter()
            .filter_map(|e| match e {
                SfuEvent::ForwardedSourcesChanged {
                    endpoint, sources, ..
                } if endpoint == "d" => Some(sources.clone()),
                _ => None,
            })
            .collect();
        net.events.clear();
        v
    };
    // B speaks: D ends up with B's video only (A's until B became dominant), all audio.
    let (va, vb, vc, audio) = talk(&mut net, 20);
    assert_eq!(audio, 300);
    assert!(
        vb >= 40 && va + vb == 100 && vc == 0,
        "a {va}, b {vb}, c {vc}"
    );
    assert_eq!(told(&mut net).last(), Some(&vec!["b-v0".to_owned()]));
    // Then C: D follows.
    let (va, vb, vc, _) = talk(&mut net, 30);
    assert!(
        vc >= 40 && vb + vc == 100 && va == 0,
        "a {va}, b {vb}, c {vc}"
    );
    assert_eq!(told(&mut net), vec![vec!["c-v0".to_owned()]]);
    // D puts A on stage: under last-N 1 it gets A's video while C goes on speaking.
    net.sfu
        .set_receiver_constraints(
            "conf",
            "d",
            ReceiverConstraints {
                prioritized: vec!["a".to_owned()],
                ..ReceiverConstraints::default()
            },
        )
        .expect("constraints");
    net.flush();
    assert_eq!(told(&mut net), vec![vec!["a-v0".to_owned()]]);
    let (va, vb, vc, _) = talk(&mut net, 30);
    assert_eq!((va, vb, vc), (100, 0, 0));
    // D asks for no video at all: it gets none, and is told so.
    net.sfu
        .set_receiver_constraints(
            "conf",
            "d",
            ReceiverConstraints {
                last_n: Some(0),
                ..ReceiverConstraints::default()
            },
        )
        .expect("constraints");
    net.flush();
    assert_eq!(told(&mut net), vec![Vec::<String>::new()]);
    let (va, vb, vc, audio) = talk(&mut net, 30);
    assert_eq!((va, vb, vc, audio), (0, 0, 0, 300));
}

/// A receiver's side of the path in [`downlink_estimate_picks_the_layer_a_receiver_can_take`]:
/// a token bucket of `capacity` bps (no queue: what does not fit is lost), and the arrivals it
/// reports back in transport-cc feedback.
struct Downlink {
    capacity: f64,
    tokens: f64,
    last: Instant,
    /// (SFU's transport-wide number, arrival) of packets not yet reported.
    pending: Vec<(u16, Option<Instant>)>,
    epoch: Instant,
    count: u8,
}

impl Downlink {
    fn new(capacity: f64, now: Instant) -> Self {
        Downlink {
            capacity,
            tokens: 0.0,
            last: now,
            pending: Vec::new(),
            epoch: now,
            count: 0,
        }
    }

    /// The packets the SFU sent at `now`: those the bucket lets through, and the rest lost.
    fn carry(&mut self, now: Instant, pkts: Vec<Packet>) -> Vec<Packet> {
        let burst = 12_000.0 * 8.0;
        self.tokens = (self.tokens
            + now.saturating_duration_since(self.last).as_secs_f64() * self.capacity)
            .min(burst);
        self.last = now;
        let mut through = Vec::new();
        for p in pkts {
            let bits = (p.header.marshal_size() + p.payload.len()) as f64 * 8.0;
            let Some(n) = p.header.get_extension(5) else {
                continue;
            };
            let seq = u16::from_be_bytes([n[0], n[1]]);
            if self.tokens >= bits {
                self.tokens -= bits;
                self.pending
                    .push((seq, Some(now + Duration::from_millis(10))));
                through.push(p);
            } else {
                self.pending.push((seq, None));
            }
        }
        through
    }

    /// Transport-cc feedback covering every pending number, `None` when nothing arrived.
    fn feedback(&mut self) -> Option<Vec<u8>> {
        use rtc_rtcp::transport_feedbacks::transport_layer_cc::{
            PacketStatusChunk, RecvDelta, StatusChunkTypeTcc, StatusVectorChunk, SymbolSizeTypeTcc,
            SymbolTypeTcc, TransportLayerCc,
        };
        let pending = std::mem::take(&mut self.pending);
        let first_arrival = pending.iter().find_map(|(_, a)| *a)?;
        let base = pending[0].0;
        let count = pending.last()?.0.wrapping_sub(base) + 1;
        let mut arrivals: Vec<Option<Instant>> = vec![None; usize::from(count)];
        for (seq, at) in &pending {
            arrivals[usize::from(seq.wrapping_sub(base))] = *at;
        }
        let us = |t: Instant| t.saturating_duration_since(self.epoch).as_micros() as i64;
        let reference = us(first_arrival) / 64_000;
        let mut prev = reference * 64_000;
        let mut symbols = Vec::new();
        let mut deltas = Vec::new();
        for a in &arrivals {
            match a {
                None => symbols.push(SymbolTypeTcc::PacketNotReceived),
                Some(t) => {
                    let d = (us(*t) - prev) / 250 * 250;
                    prev += d;
                    symbols.push(SymbolTypeTcc::PacketReceivedSmallDelta);
                    deltas.push(RecvDelta {
                        type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
                        delta: d,
                    });
                }
            }
        }
        let chunks = symbols
            .chunks(7)
            .map(|c| {
                let mut list = c.to_vec();
                list.resize(7, SymbolTypeTcc::PacketNotReceived);
                PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                    type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                    symbol_size: SymbolSizeTypeTcc::TwoBit,
                    symbol_list: list,
                })
            })
            .collect();
        self.count = self.count.wrapping_add(1);
        let fb = TransportLayerCc {
            sender_ssrc: 1,
            media_ssrc: A_VIDEO[0],
            base_sequence_number: base,
            packet_status_count: count,
            reference_time: reference as u32,
            fb_pkt_count: self.count,
            packet_chunks: chunks,
            recv_deltas: deltas,
        };
        Some(fb.marshal().expect("marshal").to_vec())
    }
}

/// The whole downlink loop: the SFU numbers what it sends each receiver, reads the receivers'
/// transport-cc feedback into an estimate, and forwards the simulcast layer that estimate
/// affords. B's path narrows to 400 kbps (everything above is lost): B drops to the lowest
/// layer while C, on a wide path, keeps the top one; when B's path widens again, B climbs
/// back to the top layer.
#[test]
fn downlink_estimate_picks_the_layer_a_receiver_can_take() {
    let (mut net, a, b) = a_sending_then_b(60);
    let c = net.join("c", "192.168.1.4:50000", 62);
    net.flush();
    let mut links = [
        (b, Downlink::new(20e6, net.now)),
        (c, Downlink::new(20e6, net.now)),
    ];
    // Per 33 ms frame: layer 0 one 600-byte packet (~150 kbps), layer 1 two of 1000
    // (~480 kbps), layer 2 six of 1100 (~1.6 Mbps). Keyframes first, and on any PLI.
    let sizes: [(usize, usize); 3] = [(1, 600), (2, 1000), (6, 1100)];
    let mut seq = [1000u16, 2000, 3000];
    let mut twcc = 0u16;
    let mut key = [true; 3];
    let mut frame = 0u32;
    // Runs `frames` frames; returns the layers (payload byte 2) B and C got, in order.
    let mut run = |net: &mut Net, links: &mut [(SocketAddr, Downlink); 2], frames: u32| {
        let mut got: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..frames {
            for (l, (n, size)) in sizes.iter().enumerate() {
                for k in 0..*n {
                    let start = if k == 0 { 0x10 } else { 0x00 };
                    let vp8 = if key[l] { 0x00 } else { 0x01 };
                    let mut payload = vec![0u8; *size];
                    payload[..3].copy_from_slice(&[start, vp8, l as u8]);
                    twcc = twcc.wrapping_add(1);
                    let p = rtp(
                        A_VIDEO[l],
                        100,
                        seq[l],
                        &[(5, &twcc.to_be_bytes())],
                        &payload,
                    );
                    seq[l] = seq[l].wrapping_add(1);
                    net.client(a).send_rtp(&p).expect("send");
                }
                key[l] = false;
            }
            net.flush();
            let now = net.now;
            for (i, (addr, link)) in links.iter_mut().enumerate() {
                let pkts = net.drain_rtp(*addr);
                got[i].extend(link.carry(now, pkts).iter().map(|p| p.payload[2]));
            }
            frame += 1;
            // Feedback every third frame (~100 ms), as browsers send it.
            if frame.is_multiple_of(3) {
                for (addr, link) in links.iter_mut() {
                    if let Some(fb) = link.feedback() {
                        net.client(*addr).send_rtcp(&fb).expect("feedback");
                    }
                }
                net.flush();
            }
            let to_a = net.drain_rtcp(a);
            for (l, ssrc) in A_VIDEO.iter().enumerate() {
                if plis_for(&to_a, *ssrc) > 0 {
                    key[l] = true;
                }
            }
            net.tick(Duration::from_millis(33));
        }
        got
    };
    let last_second = |v: &[u8]| -> Vec<u8> { v[v.len().saturating_sub(30)..].to_vec() };
    let layer_of = |net: &Net, ep: &str| {
        net.sfu
            .stats()
            .endpoints
            .iter()
            .find(|e| e.endpoint == ep)
            .and_then(|e| e.forwarded_video.first().and_then(|f| f.layer))
    };
    // Wide paths: both get the top layer, and have estimates.
    let got = run(&mut net, &mut links, 90);
    assert!(last_second(&got[0]).iter().all(|l| *l == 2), "{:?}", got[0]);
    assert!(last_second(&got[1]).iter().all(|l| *l == 2));
    assert_eq!(layer_of(&net, "b"), Some(2));
    let stats = net.sfu.stats();
    let eb = stats
        .endpoints
        .iter()
        .find(|e| e.endpoint == "b")
        .expect("b");
    assert!(
        eb.estimated_bandwidth_bps.is_some_and(|e| e > 1_500_000),
        "{eb:?}"
    );
    assert!(eb.bitrate_out_bps > 1_000_000, "{eb:?}");

    // B's path narrows: within 5 s B is on the lowest layer, C still on the top.
    links[0].1.capacity = 400_000.0;
    // Seconds until B gets layer `want`, within `limit`.
    type Run<'a> = dyn FnMut(&mut Net, &mut [(SocketAddr, Downlink); 2], u32) -> [Vec<u8>; 2] + 'a;
    let until =
        |run: &mut Run, net: &mut Net, links: &mut [(SocketAddr, Downlink); 2], want, limit| {
            let after = (1..=limit).find(|_| {
                run(net, links, 30);
                layer_of(net, "b") == Some(want)
            });
            assert!(after.is_some(), "B stayed on {:?}", layer_of(net, "b"));
            after
        };
    let dropped_after = until(&mut run, &mut net, &mut links, 0, 5);
    let got = run(&mut net, &mut links, 60);
    assert!(last_second(&got[0]).iter().all(|l| *l == 0), "{:?}", got[0]);
    assert!(last_second(&got[1]).iter().all(|l| *l == 2), "{:?}", got[1]);
    let stats = net.sfu.stats();
    let eb = stats
        .endpoints
        .iter()
        .find(|e| e.endpoint == "b")
        .expect("b");
    assert!(
        eb.estimated_bandwidth_bps.is_some_and(|e| e < 600_000),
        "{eb:?}"
    );
    assert_eq!(eb.forwarded_video[0].cap, Some(0));

    // B's path widens again: within 30 s B is back on the top layer.
    links[0].1.capacity = 20e6;
    let recovered_after = until(&mut run, &mut net, &mut links, 2, 30);
    eprintln!("layer switch: down after {dropped_after:?} s, back up after {recovered_after:?} s");
}
