//! Unit tests of the Jingle codec: a Chrome simulcast `session-accept` parsed, validated,
//! stripped and announced to another endpoint in a `session-initiate` whose exact shape is
//! checked; `transport-info` with mDNS candidates; source validation; merging; garbage input;
//! build→parse round trips.

use super::*;
use crate::xml::{Limits, parse_element};

const EP: &str = "e5f6a7b8";
const MSID_A: &str = "e5f6a7b8-audio-1 0c5d94d1-1902-4fb7-bf6a-76517d065d02-1";
const MSID_V: &str = "e5f6a7b8-video-1 9bb9a1c4-52d1-4c35-9a0e-3e1f0f1c2d3e-1";

/// What Chrome with simulcast sends through lib-jitsi-meet: 3 SIM SSRCs, their 3 RTX, 3 FID
/// groups; `setup='active'`; no candidates.
fn chrome_accept() -> String {
    let video_source = |ssrc: u32| {
        format!(
            "<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='{ssrc}' name='{EP}-v0' \
             videoType='camera'><parameter name='msid' value='{MSID_V}'/></source>"
        )
    };
    let transport = "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='Kd8e' \
        pwd='y8cNWJ8Pw0RpjA8TjQ0kZ2Vb'><fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' \
        hash='sha-256' setup='active'>\n  4A:1F:0E:77:22:9B:C3:1D:AA:05:61:0B:6E:92:3C:8D:17:F4:\
        B0:2E:59:C6:48:13:9F:7A:D2:3B:E1:06:84:C5\n</fingerprint></transport>";
    let mut videos = String::new();
    for s in [
        257838819, 865670341, 1000000002, 1000000012, 1000000003, 1000000013,
    ] {
        videos.push_str(&video_source(s));
    }
    format!(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' \
         initiator='focus@auth.example.com/focus' \
         responder='room1@conference.example.com/{EP}' sid='a9f3k2'>\
         <content creator='responder' name='audio' senders='both'>\
          <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio' maxptime='60'>\
           <payload-type id='111' name='opus' clockrate='48000' channels='2'>\
            <parameter name='minptime' value='10'/></payload-type>\
           <rtcp-mux/>\
           <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1111111111' name='{EP}-a0'>\
            <parameter name='msid' value='{MSID_A}'/></source>\
          </description>{transport}</content>\
         <content creator='responder' name='video' senders='both'>\
          <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
           <payload-type id='100' name='VP8' clockrate='90000'/><rtcp-mux/>{videos}\
           <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='SIM'>\
            <source ssrc='257838819'/><source ssrc='1000000002'/><source ssrc='1000000003'/>\
           </ssrc-group>\
           <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'>\
            <source ssrc='257838819'/><source ssrc='865670341'/></ssrc-group>\
           <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'>\
            <source ssrc='1000000002'/><source ssrc='1000000012'/></ssrc-group>\
           <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'>\
            <source ssrc='1000000003'/><source ssrc='1000000013'/></ssrc-group>\
          </description>{transport}</content>\
         <group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'>\
          <content name='audio'/><content name='video'/></group>\
         </jingle>"
    )
}

fn el(xml: &str) -> Element {
    parse_element(xml.as_bytes(), &Limits::default()).expect("well-formed fixture")
}

fn parse_str(xml: &str) -> Result<Jingle, JingleError> {
    parse(&el(xml))
}

fn jid(s: &str) -> Jid {
    Jid::parse(s).expect("jid")
}

use crate::stanza::Jid;
use crate::xml::Element;

fn bridge_transport() -> Transport {
    Transport {
        ufrag: Some("8h2k1".into()),
        pwd: Some("u9Kx3bR7pLq2Zt6Vw1Ny4Mc8".into()),
        fingerprints: vec![Fingerprint {
            hash: "sha-256".into(),
            setup: Some("actpass".into()),
            value: "09:B1:51:0F:85:4C:80:19:A1:AF:81:73:47:EE:ED:3D:00:3A:84:C7:76:C1:4E:34:\
                    BE:56:F8:42:AD:E5:A2:D7"
                .into(),
        }],
        candidates: vec![Candidate::udp_host(
            "c1",
            "1",
            2_130_706_431,
            "203.0.113.10",
            10000,
        )],
        web_socket: Some("wss://meet.example.com/colibri-ws/sfu1/CONFID/a1b2c3d4?pwd=Zx8".into()),
    }
}

/// Every start tag named `name` in `xml`.
fn tags<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let tail = &rest[i..];
        let end = tail.find('>').expect("tag ends");
        let tag = &tail[..=end];
        let next = tag.as_bytes().get(open.len()).copied();
        if matches!(next, Some(b' ' | b'/' | b'>')) {
            out.push(tag);
        }
        rest = &tail[end..];
    }
    out
}

fn no_other(_: u32) -> bool {
    false
}

#[test]
fn chrome_session_accept_parses() {
    let j = parse_str(&chrome_accept()).expect("parses");
    assert_eq!(j.action, Action::SessionAccept);
    assert_eq!(j.sid, "a9f3k2");
    assert_eq!(j.initiator, Some(jid("focus@auth.example.com/focus")));
    assert_eq!(
        j.responder,
        Some(jid("room1@conference.example.com/e5f6a7b8"))
    );
    assert_eq!(j.bundle, Some(vec!["audio".to_owned(), "video".to_owned()]));
    assert_eq!(j.contents.len(), 2);
    let (audio, video) = (&j.contents[0], &j.contents[1]);
    assert_eq!(audio.media, Media::Audio);
    assert_eq!(audio.sources.len(), 1);
    assert_eq!(audio.sources[0].msid.as_deref(), Some(MSID_A));
    assert_eq!(audio.sources[0].owner, None);
    assert_eq!(video.media, Media::Video);
    assert_eq!(video.sources.len(), 6);
    assert_eq!(video.sources[0].video_type.as_deref(), Some("camera"));
    assert_eq!(video.groups.len(), 4);
    assert_eq!(
        video.groups[0],
        SsrcGroup {
            semantics: "SIM".into(),
            ssrcs: vec![257838819, 1000000002, 1000000003]
        }
    );
    let t = video.transport.as_ref().expect("transport");
    assert_eq!(t.ufrag.as_deref(), Some("Kd8e"));
    assert!(t.candidates.is_empty());
    assert_eq!(t.fingerprints[0].setup.as_deref(), Some("active"));
    assert!(t.fingerprints[0].value.starts_with("4A:1F:"));
    assert!(t.fingerprints[0].value.ends_with(":84:C5"));
}

#[test]
fn accept_strip_and_initiate_for_another_endpoint() {
    let j = parse_str(&chrome_accept()).expect("parses");
    let full = EndpointSources::from_client(EP, &j.contents, no_other).expect("valid");
    assert_eq!(full.len(), 7);
    assert!(
        full.video()
            .sources
            .iter()
            .all(|s| s.owner.as_deref() == Some(EP))
    );

    let stripped = full.strip_simulcast();
    let ssrcs: Vec<u32> = stripped.ssrcs().collect();
    assert_eq!(ssrcs, vec![1111111111, 257838819, 865670341]);
    assert_eq!(
        stripped.video().groups,
        vec![SsrcGroup {
            semantics: "FID".into(),
            ssrcs: vec![257838819, 865670341]
        }]
    );
    assert_eq!(stripped.for_receivers(), stripped);

    let bridge = EndpointSources::bridge(3659539811, 4012345678);
    let initiator = jid("focus@auth.example.com/focus");
    let transport = bridge_transport();
    let offer = Offer {
        sid: "b7c1d2",
        initiator: &initiator,
        transport: &transport,
        sources: vec![&bridge, &stripped],
        bridge_session: "6e0b4f7a-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
    };
    let xml = session_initiate(&offer).to_string();

    // The exact tags lib-jitsi-meet reads.
    assert!(xml.starts_with(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='b7c1d2' \
         initiator='focus@auth.example.com/focus'>"
    ));
    assert_eq!(
        tags(&xml, "content")[..2],
        [
            "<content creator='initiator' name='audio' senders='both'>",
            "<content creator='initiator' name='video' senders='both'>"
        ]
    );
    assert_eq!(
        tags(&xml, "description"),
        [
            "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio' maxptime='60'>",
            "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>"
        ]
    );
    assert!(xml.contains(
        "<payload-type id='111' name='opus' clockrate='48000' channels='2'>\
         <parameter name='minptime' value='10'/><parameter name='useinbandfec' value='1'/>\
         <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='transport-cc'/>\
         </payload-type><payload-type id='126' name='telephone-event' clockrate='8000'/>\
         <rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='1' \
         uri='urn:ietf:params:rtp-hdrext:ssrc-audio-level'/>\
         <rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='5' \
         uri='http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01'/>\
         <rtcp-mux/>"
    ));
    assert_eq!(xml.matches("<rtcp-mux/>").count(), 2);
    let fb = "<rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='ccm' subtype='fir'/>\
              <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack'/>\
              <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack' subtype='pli'/>\
              <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='transport-cc'/>";
    assert!(xml.contains(&format!(
        "<payload-type id='100' name='VP8' clockrate='90000'>{fb}</payload-type>\
         <payload-type id='96' name='rtx' clockrate='90000'><parameter name='apt' value='100'/>\
         {fb}</payload-type>"
    )));
    assert!(xml.contains(&format!(
        "<payload-type id='107' name='H264' clockrate='90000'>\
         <parameter name='profile-level-id' value='42e01f'/>\
         <parameter name='level-asymmetry-allowed' value='1'/>\
         <parameter name='packetization-mode' value='1'/>{fb}</payload-type>\
         <payload-type id='99' name='rtx' clockrate='90000'><parameter name='apt' value='107'/>"
    )));
    assert!(xml.contains("<payload-type id='101' name='VP9' clockrate='90000'>"));
    assert!(xml.contains(
        "<payload-type id='97' name='rtx' clockrate='90000'><parameter name='apt' value='101'/>"
    ));
    // Four per video payload type (six of them) and transport-cc on Opus.
    assert_eq!(xml.matches("<rtcp-fb ").count(), 25);
    assert!(xml.contains(&format!(
        "<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3659539811' name='jvb-a0'>\
         <ssrc-info xmlns='http://jitsi.org/jitmeet' owner='jvb'/>\
         <parameter name='msid' value='mixedmslabel mixedlabelaudio0'/></source>\
         <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1111111111' name='{EP}-a0'>\
         <ssrc-info xmlns='http://jitsi.org/jitmeet' owner='{EP}'/>\
         <parameter name='msid' value='{MSID_A}'/></source></description>"
    )));
    assert!(xml.contains(&format!(
        "<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4012345678' name='jvb-v0'>\
         <ssrc-info xmlns='http://jitsi.org/jitmeet' owner='jvb'/>\
         <parameter name='msid' value='mixedmslabel mixedlabelvideo0'/></source>\
         <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='257838819' name='{EP}-v0' \
         videoType='camera'><ssrc-info xmlns='http://jitsi.org/jitmeet' owner='{EP}'/>\
         <parameter name='msid' value='{MSID_V}'/></source>\
         <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='865670341' name='{EP}-v0' \
         videoType='camera'><ssrc-info xmlns='http://jitsi.org/jitmeet' owner='{EP}'/>\
         <parameter name='msid' value='{MSID_V}'/></source>\
         <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'>\
         <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='257838819'/>\
         <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='865670341'/></ssrc-group>\
         </description>"
    )));
    assert!(!xml.contains("1000000002") && !xml.contains("'SIM'"));
    let transport_xml = "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='8h2k1' \
         pwd='u9Kx3bR7pLq2Zt6Vw1Ny4Mc8'>\
         <web-socket xmlns='http://jitsi.org/protocol/colibri' \
         url='wss://meet.example.com/colibri-ws/sfu1/CONFID/a1b2c3d4?pwd=Zx8'/>\
         <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass' \
         required='false'>09:B1:51:0F:85:4C:80:19:A1:AF:81:73:47:EE:ED:3D:00:3A:84:C7:76:C1:\
         4E:34:BE:56:F8:42:AD:E5:A2:D7</fingerprint>\
         <candidate component='1' foundation='1' generation='0' id='c1' network='0' \
         protocol='udp' priority='2130706431' ip='203.0.113.10' port='10000' type='host'/>\
         </transport>";
    assert_eq!(xml.matches(transport_xml).count(), 2);
    assert!(xml.ends_with(
        "<group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'>\
         <content name='audio'/><content name='video'/></group>\
         <bridge-session xmlns='http://jitsi.org/protocol/focus' \
         id='6e0b4f7a-1c2d-4e5f-8a9b-0c1d2e3f4a5b'/></jingle>"
    ));
    // Every element lib-jitsi-meet selects by namespace carries its own xmlns.
    for (name, ns) in [
        ("transport", ns::ICE_UDP),
        ("source", ns::SSMA),
        ("ssrc-group", ns::SSMA),
        ("ssrc-info", ns::JITMEET),
        ("group", ns::GROUPING),
        ("rtp-hdrext", ns::RTP_HDREXT),
        ("rtcp-fb", ns::RTCP_FB),
        ("fingerprint", ns::DTLS),
    ] {
        let found = tags(&xml, name);
        assert!(!found.is_empty(), "{name}");
        for t in found {
            assert!(t.contains(&format!(" xmlns='{ns}'")), "{t}");
        }
    }
    // No element declares its namespace twice (an explicit attribute beside the serializer's).
    for tag in xml.split('<').filter(|t| !t.is_empty()) {
        assert!(tag.matches(" xmlns=").count() <= 1, "{tag}");
    }
    // No data content, nothing but audio and video.
    assert!(!xml.contains("name='data'") && !xml.contains("application"));
}

#[test]
fn session_initiate_round_trips() {
    let j = parse_str(&chrome_accept()).expect("parses");
    let full = EndpointSources::from_client(EP, &j.contents, no_other).expect("valid");
    let bridge = EndpointSources::bridge(1, 2);
    let initiator = jid("focus@auth.example.com/focus");
    let transport = bridge_transport();
    let codecs = Codecs {
        video_header_extensions: vec![HeaderExtension {
            id: 3,
            uri: "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time".into(),
        }],
        ..Codecs::default()
    };
    let built = session_initiate_with(
        &Offer {
            sid: "s1",
            initiator: &initiator,
            transport: &transport,
            sources: vec![&bridge, &full],
            bridge_session: "bs",
        },
        &codecs,
    );
    // Through bytes and the stream parser, as a client would receive it.
    let iq = iq_set(
        &initiator,
        &jid("room1@conference.example.com/0d1e2f3a"),
        "x1",
        built,
    );
    let wire = iq.to_bytes("jabber:client");
    let back = parse_element(&wire, &Limits::default()).expect("re-parses");
    let jin = back.get_child("jingle", ns::JINGLE).expect("jingle");
    let p = parse(jin).expect("parses");
    assert_eq!(p.action, Action::SessionInitiate);
    assert_eq!(p.sid, "s1");
    assert_eq!(p.initiator, Some(initiator.clone()));
    assert_eq!(p.bundle, Some(vec!["audio".to_owned(), "video".to_owned()]));
    assert_eq!(
        p.bridge_session,
        Some(BridgeSession {
            id: Some("bs".into()),
            restart: false
        })
    );
    assert_eq!(p.contents[0].media, Media::Audio);
    assert_eq!(p.contents[1].media, Media::Video);
    for c in &p.contents {
        assert_eq!(c.transport.as_ref(), Some(&transport));
    }
    let want_audio: Vec<Source> = bridge
        .audio()
        .sources
        .iter()
        .chain(&full.audio().sources)
        .cloned()
        .collect();
    let want_video: Vec<Source> = bridge
        .video()
        .sources
        .iter()
        .chain(&full.video().sources)
        .cloned()
        .collect();
    assert_eq!(p.contents[0].sources, want_audio);
    assert_eq!(p.contents[1].sources, want_video);
    assert_eq!(p.contents[1].groups, full.video().groups);
    assert!(
        wire.windows(11).any(|w| w == b"rtp-hdrext ")
            && String::from_utf8_lossy(&wire).contains("abs-send-time")
    );

    // source-add / source-remove round trip into another endpoint's view.
    let add = source_add("s1", [&full]);
    let p = parse(&el(&add.to_string())).expect("parses");
    assert_eq!(p.action, Action::SourceAdd);
    assert_eq!(p.contents.len(), 2);
    assert_eq!(p.contents[1].sources, full.video().sources);
    let mut mirror = EndpointSources::new(EP);
    mirror.add(&p.contents, no_other).expect("same sources");
    assert_eq!(mirror, full);
    let remove = source_change(Action::SourceRemove, "s1", std::slice::from_ref(&full));
    let p = parse(&el(&remove.to_string())).expect("parses");
    assert_eq!(p.action, Action::SourceRemove);
    let removed = mirror.remove(&p.contents).expect("present");
    assert_eq!(removed, full);
    assert!(mirror.is_empty());

    // Empty media are left out of source-add.
    let audio_only = EndpointSources::from_client(EP, &j.contents[..1], no_other).expect("valid");
    let p = parse(&source_add("s1", [&audio_only])).expect("parses");
    assert_eq!(p.contents.len(), 1);
    assert_eq!(p.contents[0].name, "audio");
}

#[test]
fn transport_info_with_mdns_candidates() {
    let xml = "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' \
        initiator='focus@auth.example.com/focus' sid='a9f3k2'>\
        <content creator='responder' name='0'>\
        <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='Kd8e' pwd='y8cNWJ8Pw0RpjA8TjQ0kZ2Vb'>\
        <candidate component='1' foundation='2842290436' generation='0' id='1a2b3c' network='1' \
         protocol='udp' priority='2122260223' ip='3b6f1c2e-7d4a-4e55-9a0b-8c1d2e3f4a5b.local' \
         port='54321' type='host'/>\
        <candidate component='1' foundation='1467250027' generation='0' id='4d5e6f' network='1' \
         protocol='udp' priority='1686052607' ip='198.51.100.7' port='54321' type='srflx' \
         rel-addr='0.0.0.0' rel-port='0'/>\
        <candidate component='1' foundation='3' protocol='tcp' priority='1518280447' \
         ip='4c7f2d3e-8e5b-4f66-ab1c-9d2e3f4a5b6c.local' port='9' type='host' tcptype='active'/>\
        </transport></content></jingle>";
    let j = parse_str(xml).expect("parses");
    assert_eq!(j.action, Action::TransportInfo);
    assert_eq!(j.contents[0].name, "0");
    assert_eq!(j.contents[0].media, Media::Other("0".into()));
    let t = j.contents[0].transport.as_ref().expect("transport");
    assert_eq!(t.candidates.len(), 3);
    assert_eq!(
        t.candidates[0].ip,
        "3b6f1c2e-7d4a-4e55-9a0b-8c1d2e3f4a5b.local"
    );
    assert_eq!(t.candidates[0].kind, "host");
    assert_eq!(t.candidates[0].network, Some(1));
    assert_eq!(t.candidates[1].rel_addr.as_deref(), Some("0.0.0.0"));
    assert_eq!(t.candidates[1].rel_port, Some(0));
    assert_eq!(t.candidates[2].tcptype.as_deref(), Some("active"));
    assert_eq!(t.candidates[2].generation, None);
    let mdns: Vec<bool> = t.candidates.iter().map(Candidate::is_mdns).collect();
    assert_eq!(mdns, [true, false, true]);
    // A transport-info content carries no sources, so it changes nobody's sources.
    let mut s = EndpointSources::new(EP);
    assert!(s.add(&j.contents, no_other).expect("nothing").is_empty());

    // And the focus's own transport-info round-trips.
    let built = transport_info("a9f3k2", &jid("focus@auth.example.com/focus"), t);
    let p = parse(&el(&built.to_string())).expect("parses");
    assert_eq!(p.contents[1].transport.as_ref(), Some(t));
    assert_eq!(p.contents[1].media, Media::Video);
}

fn video_content(sources: &[u32], groups: &[(&str, &[u32])]) -> Content {
    Content {
        name: "video".into(),
        media: Media::Video,
        sources: sources.iter().map(|s| Source::new(*s)).collect(),
        groups: groups
            .iter()
            .map(|(sem, ssrcs)| SsrcGroup {
                semantics: (*sem).into(),
                ssrcs: ssrcs.to_vec(),
            })
            .collect(),
        transport: None,
    }
}

#[test]
fn validation_failures() {
    let many: Vec<u32> = (1..=21).collect();
    assert_eq!(
        EndpointSources::from_client(EP, &[video_content(&many, &[])], no_other),
        Err(SourceError::TooManySsrcs { limit: 20 })
    );
    assert!(EndpointSources::from_client(EP, &[video_content(&many[..20], &[])], no_other).is_ok());
    assert_eq!(
        EndpointSources::from_client(
            EP,
            &[video_content(&[1, 2, 3], &[("FID", &[1, 2, 3])])],
            no_other
        ),
        Err(SourceError::FidSize(3))
    );
    assert_eq!(
        EndpointSources::from_client(EP, &[video_content(&[1, 2, 1], &[])], no_other),
        Err(SourceError::DuplicateSsrc(1))
    );
    // The same SSRC in audio and video is a duplicate too.
    let mut audio = video_content(&[7], &[]);
    audio.media = Media::Audio;
    assert_eq!(
        EndpointSources::from_client(EP, &[audio, video_content(&[7], &[])], no_other),
        Err(SourceError::DuplicateSsrc(7))
    );
    assert_eq!(
        EndpointSources::from_client(
            EP,
            &[video_content(&[1, 2], &[("SIM", &[1, 2, 3])])],
            no_other
        ),
        Err(SourceError::GroupUnknownSsrc(3))
    );
    assert_eq!(
        EndpointSources::from_client(EP, &[video_content(&[1, 2], &[("SIM", &[1, 1])])], no_other),
        Err(SourceError::BadGroup("SIM".into()))
    );
    assert_eq!(
        EndpointSources::from_client(EP, &[video_content(&[1, 2], &[])], |s| s == 2),
        Err(SourceError::SsrcInUse(2))
    );
    let mut data = video_content(&[5], &[]);
    data.media = Media::Other("application".into());
    assert_eq!(
        EndpointSources::from_client(EP, &[data], no_other),
        Err(SourceError::UnsupportedMedia("application".into()))
    );

    // A failed add or remove changes nothing.
    let mut s = EndpointSources::from_client(EP, &[video_content(&many[..19], &[])], no_other)
        .expect("19 fit");
    let before = s.clone();
    assert_eq!(
        s.add(&[video_content(&[100, 101], &[])], no_other),
        Err(SourceError::TooManySsrcs { limit: 20 })
    );
    assert_eq!(
        s.add(&[video_content(&[5], &[])], no_other),
        Err(SourceError::DuplicateSsrc(5))
    );
    assert_eq!(
        s.remove(&[video_content(&[1, 999], &[])]),
        Err(SourceError::UnknownSsrc(999))
    );
    assert_eq!(s, before);
    // Converted for the iq answer.
    let e: crate::stanza::StanzaError = SourceError::FidSize(3).into();
    assert_eq!(e.condition, crate::stanza::Condition::BadRequest);
}

#[test]
fn names_msids_and_owners_are_normalized() {
    let mut a = Source::new(11);
    a.msid = Some("default 7f3e".into());
    let audio = Content {
        name: "audio".into(),
        media: Media::Audio,
        sources: vec![a],
        groups: Vec::new(),
        transport: None,
    };
    // A camera with simulcast and RTX, no names; the first layer alone says camera.
    let mut cam = video_content(
        &[21, 22, 23, 31, 32, 33],
        &[
            ("SIM", &[21, 22, 23]),
            ("FID", &[21, 31]),
            ("FID", &[22, 32]),
            ("FID", &[23, 33]),
        ],
    );
    cam.sources[0].video_type = Some("camera".into());
    cam.sources[0].msid = Some("s-cam t-cam".into());
    let s = EndpointSources::from_client(EP, &[audio, cam], no_other).expect("valid");
    let a0 = &s.audio().sources[0];
    assert_eq!(a0.name.as_deref(), Some("e5f6a7b8-a0"));
    assert_eq!(a0.owner.as_deref(), Some(EP));
    assert_eq!(a0.msid.as_deref(), Some("e5f6a7b8-audio-1 7f3e"));
    for v in &s.video().sources {
        assert_eq!(v.name.as_deref(), Some("e5f6a7b8-v0"), "{}", v.ssrc);
        assert_eq!(v.video_type.as_deref(), Some("camera"));
        assert_eq!(v.msid.as_deref(), Some("s-cam t-cam"));
        assert_eq!(v.owner.as_deref(), Some(EP));
    }

    // A screen share added later, without name or msid, becomes v1.
    let mut s2 = s.clone();
    let mut desk = video_content(&[41], &[]);
    desk.sources[0].video_type = Some("desktop".into());
    let added = s2.add(&[desk], no_other).expect("fits");
    assert_eq!(added.len(), 1);
    let d = &added.video().sources[0];
    assert_eq!(d.name.as_deref(), Some("e5f6a7b8-v1"));
    assert_eq!(d.msid.as_deref(), Some("e5f6a7b8-video-2 e5f6a7b8-video-2"));
    assert_eq!(d.video_type.as_deref(), Some("desktop"));
    assert_eq!(s2.len(), 8);
    let (plus, minus) = s.diff(&s2);
    assert_eq!(plus, Some(added.clone()));
    assert_eq!(minus, None);
    assert_eq!(s2.diff(&s), (None, Some(added)));

    // source-remove of the simulcast layers takes their groups along.
    let removed = s2
        .remove(&[video_content(&[22, 32], &[])])
        .expect("present");
    assert_eq!(removed.video().sources.len(), 2);
    assert_eq!(removed.video().groups.len(), 2); // SIM and FID 22/32
    assert_eq!(s2.video().groups.len(), 2); // FID 21/31, FID 23/33
    assert!(!s2.has_ssrc(22) && s2.has_ssrc(23));
}

#[test]
fn terminate_info_and_actions() {
    let xml = "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='a9f3k2'>\
        <reason><connectivity-error/><text>ICE failed</text></reason>\
        <bridge-session xmlns='http://jitsi.org/protocol/focus' id='6e0b' restart='true'/></jingle>";
    let j = parse_str(xml).expect("parses");
    assert_eq!(j.action, Action::SessionTerminate);
    assert_eq!(
        j.reason,
        Some(Reason {
            condition: "connectivity-error".into(),
            text: Some("ICE failed".into())
        })
    );
    assert_eq!(
        j.bridge_session,
        Some(BridgeSession {
            id: Some("6e0b".into()),
            restart: true
        })
    );
    let j = parse_str(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='a9f3k2'>\
         <ice-state xmlns='http://jitsi.org/protocol/focus'>failed</ice-state></jingle>",
    )
    .expect("parses");
    assert_eq!(j.ice_state.as_deref(), Some("failed"));

    let t = session_terminate_with_text("s9", "success", Some("bye"));
    assert_eq!(
        t.to_string(),
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s9'>\
         <reason><success/><text>bye</text></reason></jingle>"
    );
    let p = parse(&session_terminate("s9", "gone")).expect("parses");
    assert_eq!(p.reason.map(|r| r.condition), Some("gone".to_owned()));

    for a in [
        "content-accept",
        "content-add",
        "content-modify",
        "content-reject",
        "content-remove",
        "description-info",
        "security-info",
        "session-accept",
        "session-info",
        "session-initiate",
        "session-terminate",
        "transport-accept",
        "transport-info",
        "transport-reject",
        "transport-replace",
        "source-add",
        "source-remove",
    ] {
        let action = Action::from_attr(a);
        assert!(!matches!(action, Action::Unknown(_)), "{a}");
        assert_eq!(action.as_str(), a);
    }
    assert_eq!(Action::from_attr("addsource"), Action::SourceAdd);
    assert_eq!(Action::from_attr("removesource"), Action::SourceRemove);
    assert_eq!(Action::from_attr("x-y"), Action::Unknown("x-y".into()));
    let j = parse_str("<jingle xmlns='urn:xmpp:jingle:1' action='x-y' sid='1'/>").expect("parses");
    assert_eq!(j.action.as_str(), "x-y");
}

#[test]
fn garbage_gives_errors() {
    let wrap = |inner: &str| {
        format!("<jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'>{inner}</jingle>")
    };
    let desc = |src: &str| {
        wrap(&format!(
            "<content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>{src}</description></content>"
        ))
    };
    let cases: Vec<(String, JingleError)> = vec![
        (
            "<jingle xmlns='urn:xmpp:jingle:0' action='a' sid='s'/>".into(),
            JingleError::NotJingle,
        ),
        ("<iq xmlns='jabber:client'/>".into(), JingleError::NotJingle),
        (
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept'/>".into(),
            JingleError::MissingAttr {
                element: "jingle",
                attr: "sid",
            },
        ),
        (
            "<jingle xmlns='urn:xmpp:jingle:1' sid='s'/>".into(),
            JingleError::MissingAttr {
                element: "jingle",
                attr: "action",
            },
        ),
        (
            "<jingle xmlns='urn:xmpp:jingle:1' action='a' sid='s' initiator='@x'/>".into(),
            JingleError::BadJid("initiator"),
        ),
        (
            desc("<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='abc'/>"),
            JingleError::BadNumber {
                element: "source",
                attr: "ssrc",
                value: "abc".into(),
            },
        ),
        (
            desc("<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='-1'/>"),
            JingleError::BadNumber {
                element: "source",
                attr: "ssrc",
                value: "-1".into(),
            },
        ),
        (
            desc("<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4294967296'/>"),
            JingleError::BadNumber {
                element: "source",
                attr: "ssrc",
                value: "4294967296".into(),
            },
        ),
        (
            desc("<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='+5'/>"),
            JingleError::BadNumber {
                element: "source",
                attr: "ssrc",
                value: "+5".into(),
            },
        ),
        (
            desc("<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'/>"),
            JingleError::MissingAttr {
                element: "source",
                attr: "ssrc",
            },
        ),
        (
            desc(
                "<ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source ssrc=''/></ssrc-group>",
            ),
            JingleError::BadNumber {
                element: "source",
                attr: "ssrc",
                value: String::new(),
            },
        ),
        (
            desc("<ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'/>"),
            JingleError::MissingAttr {
                element: "ssrc-group",
                attr: "semantics",
            },
        ),
        (
            wrap(
                "<content name='audio'><description xmlns='urn:xmpp:jingle:apps:rtp:2'/></content>",
            ),
            JingleError::WrongNamespace {
                element: "description",
                ns: "urn:xmpp:jingle:apps:rtp:2".into(),
            },
        ),
        (
            wrap(
                "<content name='audio'><transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'/></content>",
            ),
            JingleError::WrongNamespace {
                element: "transport",
                ns: "urn:xmpp:jingle:transports:raw-udp:1".into(),
            },
        ),
        (
            wrap("<content/>"),
            JingleError::MissingAttr {
                element: "content",
                attr: "name",
            },
        ),
        (
            desc("<source ssrc='1'/>"),
            JingleError::WrongNamespace {
                element: "source",
                ns: ns::RTP.into(),
            },
        ),
        (
            desc("<ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:1' semantics='FID'/>"),
            JingleError::WrongNamespace {
                element: "ssrc-group",
                ns: "urn:xmpp:jingle:apps:rtp:ssma:1".into(),
            },
        ),
        (
            wrap(
                "<content name='a'><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>\
                  <fingerprint hash='sha-256'>AA</fingerprint></transport></content>",
            ),
            JingleError::WrongNamespace {
                element: "fingerprint",
                ns: ns::ICE_UDP.into(),
            },
        ),
        (
            wrap("<content name='audio'/><content name='audio'/>"),
            JingleError::DuplicateContent("audio".into()),
        ),
        (
            wrap(
                "<content name='a'><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>\
                  <candidate component='1' foundation='1' protocol='udp' priority='1' ip='x' port='70000' type='host'/>\
                  </transport></content>",
            ),
            JingleError::BadNumber {
                element: "candidate",
                attr: "port",
                value: "70000".into(),
            },
        ),
        (
            wrap(
                "<content name='a'><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>\
                  <candidate component='1' foundation='1' priority='1' ip='x' port='7' type='host'/>\
                  </transport></content>",
            ),
            JingleError::MissingAttr {
                element: "candidate",
                attr: "protocol",
            },
        ),
        (
            wrap(
                "<content name='a'><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>\
                  <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0'>AA</fingerprint></transport></content>",
            ),
            JingleError::MissingAttr {
                element: "fingerprint",
                attr: "hash",
            },
        ),
    ];
    for (xml, want) in cases {
        assert_eq!(parse_str(&xml), Err(want), "{xml}");
    }

    // Bounds.
    let long = "x".repeat(MAX_VALUE_LEN + 1);
    assert_eq!(
        parse_str(&desc(&format!(
            "<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1' name='{long}'/>"
        ))),
        Err(JingleError::TooLong {
            element: "source",
            attr: "name"
        })
    );
    assert_eq!(
        parse_str(&desc(&format!(
            "<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1'>\
             <parameter name='msid' value='{long}'/></source>"
        ))),
        Err(JingleError::TooLong {
            element: "parameter",
            attr: "msid"
        })
    );
    assert_eq!(
        parse_str(&format!(
            "<jingle xmlns='urn:xmpp:jingle:1' action='a' sid='{long}'/>"
        )),
        Err(JingleError::TooLong {
            element: "jingle",
            attr: "sid"
        })
    );
    let j = parse_str(&format!(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s'>\
         <reason><gone/><text>{long}</text></reason></jingle>"
    ))
    .expect("a long reason text is cut");
    assert_eq!(
        j.reason.and_then(|r| r.text).map(|t| t.len()),
        Some(MAX_VALUE_LEN)
    );
    let sources: String = (1..=65)
        .map(|i| format!("<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='{i}'/>"))
        .collect();
    assert!(matches!(
        parse_str(&desc(&sources)),
        Err(JingleError::TooMany { limit: 64, .. })
    ));
    let cands: String = (1..=33)
        .map(|i| format!("<candidate component='1' foundation='{i}' protocol='udp' priority='1' ip='x' port='{i}' type='host'/>"))
        .collect();
    assert!(matches!(
        parse_str(&wrap(&format!(
            "<content name='a'><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>{cands}</transport></content>"
        ))),
        Err(JingleError::TooMany { limit: 32, .. })
    ));
    let contents: String = (0..9).map(|i| format!("<content name='c{i}'/>")).collect();
    assert!(matches!(
        parse_str(&wrap(&contents)),
        Err(JingleError::TooMany { limit: 8, .. })
    ));

    // Every attribute of the realistic accept replaced by junk: errors or values, no panic.
    let fixture = chrome_accept();
    let mut starts = Vec::new();
    let bytes = fixture.as_bytes();
    for i in 1..bytes.len() {
        if bytes[i] == b'\'' && bytes[i - 1] == b'=' {
            starts.push(i + 1);
        }
    }
    let mut errors = 0;
    for s in starts {
        let Some(len) = fixture[s..].find('\'') else {
            continue;
        };
        for junk in ["", "-1", "99999999999999999999", "x", "é", "1.5", "0x10"] {
            let mutated = format!("{}{junk}{}", &fixture[..s], &fixture[s + len..]);
            let Ok(e) = parse_element(mutated.as_bytes(), &Limits::default()) else {
                continue;
            };
            match parse(&e) {
                Ok(j) => {
                    let _ = EndpointSources::from_client(EP, &j.contents, no_other);
                }
                Err(_) => errors += 1,
            }
        }
    }
    assert!(errors > 50, "{errors}");
}

#[test]
fn bridge_sources_and_group_only_removal() {
    let b = EndpointSources::bridge(10, 20);
    assert_eq!(b.endpoint(), BRIDGE_OWNER);
    assert_eq!(
        b.audio().sources,
        [Source {
            ssrc: 10,
            name: Some("jvb-a0".into()),
            video_type: None,
            msid: Some("mixedmslabel mixedlabelaudio0".into()),
            owner: Some("jvb".into()),
        }]
    );
    assert_eq!(b.video().sources[0].name.as_deref(), Some("jvb-v0"));
    assert_eq!(
        b.video().sources[0].msid.as_deref(),
        Some("mixedmslabel mixedlabelvideo0")
    );
    assert!(EndpointSources::default().is_empty());

    // Audio and video count together towards the limit.
    let mut audio = video_content(&(1..=10).collect::<Vec<_>>(), &[]);
    audio.media = Media::Audio;
    let video = video_content(&(11..=21).collect::<Vec<_>>(), &[]);
    assert_eq!(
        EndpointSources::from_client(EP, &[audio, video], no_other),
        Err(SourceError::TooManySsrcs {
            limit: MAX_SSRCS_PER_ENDPOINT
        })
    );

    // A name with another endpoint's prefix is replaced.
    let mut spoof = video_content(&[5, 6], &[("FID", &[5, 6])]);
    spoof.sources[0].name = Some("0d1e2f3a-v0".into());
    spoof.sources[1].name = Some("e5f6a7b8-v3".into());
    let s = EndpointSources::from_client(EP, &[spoof], no_other).expect("valid");
    let names: Vec<_> = s.video().sources.iter().map(|x| x.name.clone()).collect();
    assert_eq!(
        names,
        [Some("e5f6a7b8-v3".into()), Some("e5f6a7b8-v3".into())]
    );

    // A source-remove naming only a group takes the group and keeps the sources.
    let mut s =
        EndpointSources::from_client(EP, &[video_content(&[1, 2], &[("FID", &[1, 2])])], no_other)
            .expect("valid");
    let removed = s
        .remove(&[video_content(&[], &[("FID", &[1, 2])])])
        .expect("ok");
    assert_eq!(removed.video().groups.len(), 1);
    assert!(removed.video().sources.is_empty());
    assert_eq!(s.len(), 2);
    assert!(s.video().groups.is_empty());
    // Both were named as one track before; they keep that name.
    assert!(
        s.video()
            .sources
            .iter()
            .all(|x| x.name.as_deref() == Some("e5f6a7b8-v0"))
    );
    // The same group added twice is stored once.
    let added = s
        .add(
            &[
                video_content(&[], &[("FID", &[1, 2])]),
                video_content(&[], &[("FID", &[1, 2])]),
            ],
            no_other,
        )
        .expect("ok");
    assert_eq!(added.video().groups.len(), 1);
    assert_eq!(s.video().groups.len(), 1);
}

/// Frames captured from the real lib-jitsi-meet (the bundle the browser tests pin) in
/// Chromium 156 against lilt, with `meet.mjs --dump-xmpp`: Chrome's `session-accept` (one
/// audio source; VP8 with three simulcast layers and their RTX), its trickled
/// `transport-info`, and lilt's own `session-initiate` and `source-add` as the client got them.
mod captured {
    use super::*;

    fn jingle_of(iq: &str) -> Jingle {
        let iq = el(iq);
        let j = iq.get_child("jingle", NS).expect("a jingle child");
        parse(j).expect("parses")
    }

    #[test]
    fn chrome_session_accept() {
        let j = jingle_of(include_str!("testdata/chrome_session_accept.xml"));
        assert_eq!(j.action, Action::SessionAccept);
        assert_eq!(
            j.bundle.as_deref(),
            Some(&["audio".to_owned(), "video".to_owned()][..])
        );
        let t = j.contents[0].transport.as_ref().expect("transport");
        assert!(t.ufrag.is_some() && t.pwd.is_some());
        assert_eq!(t.fingerprints[0].setup.as_deref(), Some("active"));
        let ep = "74e98632";
        let sources = EndpointSources::from_client(ep, &j.contents, no_other).expect("valid");
        assert_eq!(sources.audio().sources.len(), 1);
        assert_eq!(sources.video().sources.len(), 6, "3 layers and 3 RTX");
        let sim: Vec<_> = sources
            .video()
            .groups
            .iter()
            .filter(|g| g.semantics == "SIM")
            .collect();
        assert_eq!(sim.len(), 1);
        assert_eq!(sim[0].ssrcs.len(), 3);
        // Names and owners are synthesized: this client (the 2021 build) sends none.
        assert!(
            sources
                .audio()
                .sources
                .iter()
                .chain(&sources.video().sources)
                .all(|s| s.owner.as_deref() == Some(ep)
                    && s.name.as_deref().is_some_and(|n| n.starts_with(ep)))
        );
        // Receivers hear of the first layer and its RTX only.
        let stripped = sources.strip_simulcast();
        assert_eq!(stripped.video().sources.len(), 2);
        assert_eq!(stripped.video().groups.len(), 1);
        assert_eq!(stripped.video().groups[0].semantics, "FID");
        assert_eq!(stripped.video().groups[0].ssrcs[0], sim[0].ssrcs[0]);
    }

    #[test]
    fn chrome_transport_info() {
        let j = jingle_of(include_str!("testdata/chrome_transport_info.xml"));
        assert_eq!(j.action, Action::TransportInfo);
        let t = j.contents[0].transport.as_ref().expect("transport");
        assert!(!t.candidates.is_empty());
        assert!(t.candidates.iter().all(|c| c.component == 1 && c.port > 0));
    }

    #[test]
    fn lilt_frames_as_the_client_got_them() {
        let j = jingle_of(include_str!("testdata/lilt_session_initiate.xml"));
        assert_eq!(j.action, Action::SessionInitiate);
        assert_eq!(j.contents.len(), 2);
        assert!(
            j.contents
                .iter()
                .all(|c| c.transport.as_ref().is_some_and(|t| t.web_socket.is_some()))
        );
        let owners: Vec<_> = j
            .contents
            .iter()
            .flat_map(|c| &c.sources)
            .filter_map(|s| s.owner.as_deref())
            .collect();
        assert!(owners.contains(&BRIDGE_OWNER));
        let add = jingle_of(include_str!("testdata/lilt_source_add.xml"));
        assert_eq!(add.action, Action::SourceAdd);
        assert!(
            add.contents
                .iter()
                .flat_map(|c| &c.sources)
                .all(|s| s.msid.is_some() && s.owner.is_some())
        );
    }
}
