//! MUC owner requests (`muc#owner`: the configuration form and room destruction), through the
//! service's public entry point (`MucService::handle`) on a room its owner just created. The
//! fuzzed bytes are the `<query/>` payload of the owner's iq. Checked: no panic; the owner gets
//! exactly one answer (result or error) to each iq; every stanza the service sends round-trips;
//! the service still answers a newcomer afterwards.

use std::sync::Arc;

use lilt_proto::entropy::Seeded;
use lilt_proto::hooks::NoExtensions;
use lilt_proto::muc::{MucConfig, MucLimits, MucService, Routed};
use lilt_proto::stanza::{Jid, Outbound, Stanza};
use lilt_proto::xml::{Element, ns, parse_element};

use crate::c2s::{limits, round_trip};

const SERVICE: &str = "conference.a.example";
const ROOM: &str = "room@conference.a.example";
const OWNER: &str = "owner@a.example/r";
const GUEST: &str = "guest@a.example/r";

fn service() -> MucService {
    let config = MucConfig {
        domain: SERVICE.into(),
        vhost: "a.example".into(),
        lock_new_rooms: true,
        destroy_when_empty: true,
        room_creators: Vec::new(),
        admins: Vec::new(),
        max_occupants: 0,
        focus: None,
        limits: MucLimits::default(),
        view: Default::default(),
    };
    MucService::new(config, Arc::new(Seeded::new(5)))
}

/// Every stanza `routed` stands for, checked for a round trip.
fn stanzas(routed: Vec<Routed>) -> Vec<Element> {
    let mut out = Vec::new();
    for r in routed {
        match r {
            Routed::Stanza(el) => out.push(el),
            Routed::Fanout(shared, to) => {
                for jid in to {
                    out.push(
                        Outbound::Shared(shared.clone(), jid.to_string().into()).into_element(),
                    );
                }
            }
            Routed::Call(_) => {}
        }
    }
    out.iter().for_each(round_trip);
    out
}

fn join(from: &str, nick: &str) -> Element {
    let mut p = Element::builder("presence", ns::CLIENT)
        .attr("from", from)
        .attr("to", format!("{ROOM}/{nick}"))
        .build();
    p.append_child(Element::new("x", ns::MUC));
    p
}

/// A stanza the harness built, with its (valid) addresses parsed, as c2s hands it over.
fn addressed(el: Element) -> Stanza {
    Stanza::parse(el)
        .map_err(|(_, bad)| bad)
        .expect("the harness addresses its stanzas")
}

/// Send the owner's `<query/>` (from `data`) as a `set`, then as a `get`. Returns how many of
/// the two got a result (how deep the input got).
pub fn check_muc_owner(data: &[u8]) -> usize {
    let Ok(payload) = parse_element(data, &limits()) else {
        return 0;
    };
    let mut results = 0;
    let mut muc = service();
    let created = stanzas(muc.handle(addressed(join(OWNER, "owner")), 1, &NoExtensions));
    assert!(
        created.iter().any(|s| s.attr("to") == Some(OWNER)),
        "the creator heard nothing"
    );
    for (n, ty) in ["set", "get"].into_iter().enumerate() {
        let id = format!("fuzz{n}");
        let mut iq = Element::builder("iq", ns::CLIENT)
            .attr("from", OWNER)
            .attr("to", ROOM)
            .attr("id", id.as_str())
            .attr("type", ty)
            .build();
        iq.append_child(payload.clone());
        let out = stanzas(muc.handle(addressed(iq), 2 + n as u64, &NoExtensions));
        let answers: Vec<&Element> = out
            .iter()
            .filter(|s| s.name() == "iq" && s.attr("id") == Some(id.as_str()))
            .collect();
        assert_eq!(answers.len(), 1, "{ty}: answers {answers:?}");
        assert_eq!(answers[0].attr("to"), Some(OWNER), "{ty}: {}", answers[0]);
        assert!(
            matches!(answers[0].attr("type"), Some("result" | "error")),
            "{ty}: {}",
            answers[0]
        );
        results += usize::from(answers[0].attr("type") == Some("result"));
    }
    let guest = Jid::parse(GUEST).expect("valid JID");
    let out = stanzas(muc.handle(addressed(join(GUEST, "guest")), 9, &NoExtensions));
    assert!(
        out.iter()
            .any(|s| s.attr("to") == Some(guest.to_string().as_str())),
        "the newcomer heard nothing"
    );
    results
}
