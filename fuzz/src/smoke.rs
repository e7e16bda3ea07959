//! The bounded, deterministic fuzz smoke run on stable Rust: for each target (XML splitter, c2s
//! stream, BOSH, MUC owner form) it mutates valid fixtures with a seeded generator and runs the
//! target's check on each. "Got deep" counts inputs that reached past the first refusal
//! (routed a stanza, got a result). Run by `tests/smoke.rs` (in the workspace's test run) and
//! by `src/bin/smoke.rs` (`smoke [COUNT]`, by hand).

use std::time::Instant;

use crate::mutate::{Rng, mutate};

const XML: &[&str] = &[
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='a' version='1.0'>\
     <message to='b@a' type='chat'><body>h\u{e9}llo &amp; &#65; <![CDATA[<x>]]></body><x xmlns='urn:x' k='&lt;'/></message>\
     <iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq><presence xml:lang='fr'><show>away</show></presence></stream:stream>",
    "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='c'>\
     <handshake>abc</handshake><p:iq xmlns:p='jabber:component:accept' p:x='1'><q xmlns='urn:q'><r/></q></p:iq>",
];

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='a.example' version='1.0'>";

/// c2s sessions; the first byte is the mode (`0`: byte stream, `1`: WebSocket, a message a line).
fn c2s_fixtures() -> Vec<String> {
    let plain = format!(
        "0{HEADER}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>{HEADER}\
         <iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>\
         <enable xmlns='urn:xmpp:sm:3' resume='true'/><presence><priority>1</priority></presence>\
         <message to='b@a.example' type='chat' id='m'><body>hi</body></message>\
         <iq type='get' id='p' to='a.example'><ping xmlns='urn:xmpp:ping'/></iq><r xmlns='urn:xmpp:sm:3'/>\
         <a xmlns='urn:xmpp:sm:3' h='2'/><iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>\
         <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"
    );
    let anonymous = format!(
        "0{HEADER}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>{HEADER}\
         <resume xmlns='urn:xmpp:sm:3' previd='old' h='4'/>\
         <iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>\
         <enable xmlns='urn:xmpp:sm:3'/><message to='a.example'><body>x</body></message>\
         <presence to='room@conference.a.example/n'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    );
    let scram = format!(
        "0{HEADER}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1hbGljZSxyPWFiYw==</auth>\
         <response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdzLHI9YWJj</response>\
         <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAA==</auth>\
         <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>YWxpY2UAYWxpY2UAcHc=</auth>{HEADER}\
         <iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>\
         <iq type='get' id='e'/>"
    );
    let websocket = "1<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='a.example' version='1.0'/>\n\
         <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>\n\
         <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='a.example' version='1.0'/>\n\
         <iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>\n\
         <enable xmlns='urn:xmpp:sm:3' resume='true'/>\n\
         <message xmlns='jabber:client' to='b@a.example' type='chat'><body>hi</body></message>\n\
         <r xmlns='urn:xmpp:sm:3'/>\n\
         <close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
        .to_owned();
    vec![plain, anonymous, scram, websocket]
}

/// BOSH request sequences, one body a line (XEP-0206 login, restart, stanzas, terminate).
const BOSH: &[&str] = &[
    "<body xmlns='http://jabber.org/protocol/httpbind' rid='100' to='a.example' wait='60' hold='1' ver='1.6' xml:lang='en' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'/>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='101' sid='sid-1'><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth></body>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='102' sid='sid-1' to='a.example' xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh'/>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='103' sid='sid-1'><iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq></body>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='105' sid='sid-1' ack='103'><message xmlns='jabber:client' to='b@a.example'><body>later</body></message></body>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='104' sid='sid-1'><presence xmlns='jabber:client'/></body>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='104' sid='sid-1'/>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='106' sid='sid-1' type='terminate'><presence xmlns='jabber:client' type='unavailable'/></body>",
    "<body xmlns='http://jabber.org/protocol/httpbind' rid='1' to='a.example' wait='5' hold='0' ack='1' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'/>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='2' sid='sid-1' pause='30'/>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='3' sid='sid-1'><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/></body>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='4' sid='sid-1' xmpp:restart='1' xmlns:xmpp='urn:xmpp:xbosh'/>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='5' sid='sid-1'><iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><message to='x@a.example'/></body>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='5' sid='sid-1'/>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='9' sid='sid-1'/>\n\
     <body xmlns='http://jabber.org/protocol/httpbind' rid='6' sid='other'/>",
];

/// Owner `<query/>` payloads: submit a configuration form, ask for it, cancel, destroy.
const MUC_OWNER: &[&str] = &[
    "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>\
     <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
     <field var='muc#roomconfig_roomname'><value>Room &amp; co</value></field>\
     <field var='muc#roomconfig_persistentroom'><value>1</value></field>\
     <field var='muc#roomconfig_membersonly'><value>false</value></field>\
     <field var='muc#roomconfig_passwordprotectedroom'><value>true</value></field>\
     <field var='muc#roomconfig_roomsecret'><value>s3cret</value></field>\
     <field var='muc#roomconfig_maxusers'><value>50</value></field>\
     <field var='muc#roomconfig_whois'><value>anyone</value></field>\
     <field var='muc#roomconfig_roomdesc'><value>d</value></field></x></query>",
    "<query xmlns='http://jabber.org/protocol/muc#owner'/>",
    "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='cancel'/></query>",
    "<query xmlns='http://jabber.org/protocol/muc#owner'><destroy jid='other@conference.a.example'><reason>moved</reason></destroy></query>",
    "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>",
];

/// A target's check; returns how deep the input got (see each `check_*`).
type Check = fn(&[u8], &mut Rng) -> usize;

fn run(
    name: &str,
    fixtures: &[String],
    count: usize,
    seed: u64,
    min_depth: usize,
    check: Check,
) -> Result<usize, String> {
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut deep = 0usize;
    for i in 0..count {
        let mut data = fixtures[i % fixtures.len()].as_bytes().to_vec();
        let other = fixtures[rng.below(fixtures.len())].as_bytes();
        // The first pass runs the fixtures intact: the unmutated paths must hold too.
        if i >= fixtures.len() {
            mutate(&mut rng, &mut data, other);
        }
        let mut sub = Rng(rng.next() | 1);
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data, &mut sub)));
        match result {
            Err(_) => {
                return Err(format!(
                    "smoke: {name}: input {i} failed: {}",
                    data.escape_ascii()
                ));
            }
            // An intact fixture must get deep (routed stanzas, results): otherwise the
            // mutations only ever exercise the first refusal.
            Ok(0) if i < fixtures.len() && min_depth > 0 => {
                return Err(format!(
                    "smoke: {name}: fixture {i} got nowhere: {}",
                    data.escape_ascii()
                ));
            }
            Ok(d) => deep += usize::from(d >= min_depth.max(1)),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = count as f64 / secs.max(1e-9);
    let deep = 100 * deep / count.max(1);
    println!(
        "smoke: {name}: {count} inputs in {secs:.1} s ({rate:.0}/s), {deep}% got deep, 0 failed"
    );
    Ok(count)
}

/// Run `count` inputs through each target, printing a line per target; the first failing
/// input ends the run with its escaped bytes.
///
/// # Errors
/// The failing input (or the intact fixture that got nowhere), escaped.
pub fn run_all(count: usize) -> Result<usize, String> {
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    // (name, fixtures, seed, the depth an intact fixture must reach, check)
    let targets: [(&str, Vec<String>, u64, usize, Check); 4] = [
        (
            "xml_splitter",
            owned(XML),
            0x9E37_79B9_7F4A_7C15,
            0,
            |data, rng| {
                crate::check_splitter(data, &cuts(rng));
                1
            },
        ),
        (
            "c2s_stream",
            c2s_fixtures(),
            0x2545_F491_4F6C_DD1D,
            1,
            |data, rng| {
                let Some((&mode, rest)) = data.split_first() else {
                    return 1;
                };
                crate::check_c2s(mode.wrapping_sub(b'0'), rest, &cuts(rng))
            },
        ),
        (
            "bosh_body",
            owned(BOSH),
            0xD1B5_4A32_D192_ED03,
            1,
            |data, _| crate::check_bosh(data),
        ),
        (
            "muc_owner_form",
            owned(MUC_OWNER),
            0xA076_1D64_78BD_642F,
            1,
            |data, _| crate::check_muc_owner(data),
        ),
    ];
    let mut total = 0;
    for (name, fixtures, seed, min_depth, check) in &targets {
        total += run(name, fixtures, count, *seed, *min_depth, *check)?;
    }
    println!("smoke: {total} passed, 0 failed");
    Ok(total)
}

/// Four piece sizes for feeding an input in pieces.
fn cuts(rng: &mut Rng) -> Vec<u8> {
    (0..4).map(|_| rng.next() as u8).collect()
}
