//! Header-extension stripping checked against an independent RTP implementation (rtc-rtp):
//! random packets in the one-byte and two-byte forms, some with CSRCs, are built by
//! rtc-rtp, stripped by the SFU, and parsed back by rtc-rtp; exactly the kept extensions must
//! survive, in order, and every other field and the payload must be unchanged.

use bytes::Bytes;
use lilt_sfu::rtp::{parse_header, strip_extensions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtc_rtp::header::{Extension, Header};
use rtc_rtp::packet::Packet;
use rtc_shared::marshal::{Marshal, Unmarshal};

#[test]
fn random_packets_keep_exactly_the_declared_extensions() {
    let mut rng = StdRng::seed_from_u64(2024);
    for round in 0..2000 {
        let two_byte = rng.random_bool(0.4);
        let n = rng.random_range(0..6);
        let mut exts: Vec<Extension> = Vec::new();
        for _ in 0..n {
            let id = if two_byte {
                rng.random_range(1..=30u8)
            } else {
                rng.random_range(1..=14u8)
            };
            if exts.iter().any(|e| e.id == id) {
                continue;
            }
            let len = if two_byte {
                rng.random_range(0..=20)
            } else {
                rng.random_range(1..=16)
            };
            let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            exts.push(Extension {
                id,
                payload: Bytes::from(data),
            });
        }
        let csrc: Vec<u32> = (0..rng.random_range(0..3)).map(|_| rng.random()).collect();
        let payload: Vec<u8> = (0..rng.random_range(0..200))
            .map(|_| rng.random())
            .collect();
        let header = Header {
            version: 2,
            padding: false,
            extension: !exts.is_empty(),
            marker: rng.random(),
            payload_type: rng.random_range(0..128),
            sequence_number: rng.random(),
            timestamp: rng.random(),
            ssrc: rng.random(),
            csrc,
            extension_profile: if exts.is_empty() {
                0
            } else if two_byte {
                0x1000
            } else {
                0xBEDE
            },
            extensions: exts.clone(),
            ..Header::default()
        };
        let original = Packet {
            header,
            payload: Bytes::from(payload),
        };
        let wire = original.marshal().expect("marshal").to_vec();

        let kept_ids: Vec<u8> = (1..=30u8).filter(|_| rng.random_bool(0.3)).collect();
        let hdr = parse_header(&wire).expect("our parser accepts rtc-rtp's packet");
        assert_eq!(hdr.ssrc, original.header.ssrc);
        let stripped = strip_extensions(&wire, &hdr, |id| kept_ids.contains(&id)).expect("strip");
        let parsed = Packet::unmarshal(&mut &stripped[..]).expect("rtc-rtp parses the result");

        let expected: Vec<(u8, Bytes)> = exts
            .iter()
            .filter(|e| kept_ids.contains(&e.id))
            .map(|e| (e.id, e.payload.clone()))
            .collect();
        let got: Vec<(u8, Bytes)> = parsed
            .header
            .extensions
            .iter()
            .map(|e| (e.id, e.payload.clone()))
            .collect();
        assert_eq!(got, expected, "round {round}");
        assert_eq!(
            parsed.header.extension,
            !expected.is_empty(),
            "round {round}"
        );
        assert_eq!(parsed.payload, original.payload, "round {round}");
        assert_eq!(
            (
                parsed.header.marker,
                parsed.header.payload_type,
                parsed.header.sequence_number,
                parsed.header.timestamp,
                parsed.header.ssrc,
                &parsed.header.csrc
            ),
            (
                original.header.marker,
                original.header.payload_type,
                original.header.sequence_number,
                original.header.timestamp,
                original.header.ssrc,
                &original.header.csrc
            ),
            "round {round}"
        );
    }
}
