//! Multi-user chat as Jitsi uses it, as scripted conversations: several tokio-xmpp clients
//! send stanzas and each expected stanza is compared with what arrives, after XML
//! normalization (attribute order, whitespace and `id` ignored; `*` matches any value).
//!
//! Shell (end-to-end against `lilt serve`). Spec: XEP-0045 (join, 110/100/201, 303, 307,
//! 104, conflict, password, members-only, max occupants, kick, roles, affiliations, owner
//! form, destroy), lib-jitsi-meet's MUC conventions, docs/muc.md (non-anonymous items, verbatim presence extensions,
//! meeting id and created timestamp in room disco#info, the limits), XEP-0030, XEP-0059 (the
//! service's disco#items pages).
//! Invariants checked: each client receives exactly the scripted stanzas in order (a stray
//! stanza fails the next expectation); every occupant item carries the real full JID.
//! Tests: this file.

use futures::StreamExt as _;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::{Client, Event, Stanza};

use crate::client::{self, STANZA_TIMEOUT};
use crate::harness::{Server, Setup, TestConfig, Vhost};

pub(crate) const MUC: &str = "conference.localhost";

/// One logged-in client.
pub(crate) struct Peer {
    client: Client,
    /// Its bound full JID.
    pub(crate) jid: String,
    /// Variables substituted into scripts: `{name}` → value.
    vars: Vec<(String, String)>,
}

impl Peer {
    /// An anonymous login on `domain`.
    pub(crate) async fn anonymous(server: &Server, domain: &str) -> Peer {
        let (client, jid) =
            client::online(server.ports().c2s_addr(), &format!("x@{domain}"), "unused").await;
        Peer::new(client, jid.to_string())
    }

    /// A login as `account`.
    pub(crate) async fn account(server: &Server, account: &str, password: &str) -> Peer {
        let (client, jid) = client::online(server.ports().c2s_addr(), account, password).await;
        Peer::new(client, jid.to_string())
    }

    fn new(client: Client, jid: String) -> Peer {
        Peer {
            client,
            vars: vec![("me".to_owned(), jid.clone())],
            jid,
        }
    }

    /// Make `{name}` stand for `value` in this peer's scripts.
    pub(crate) fn var(&mut self, name: &str, value: &str) {
        self.vars.push((name.to_owned(), value.to_owned()));
    }

    fn expand(&self, xml: &str) -> String {
        let mut s = xml.to_owned();
        for (k, v) in &self.vars {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s
    }

    /// Send one stanza written as XML (`xmlns='jabber:client'` implied).
    pub(crate) async fn send(&mut self, xml: &str) {
        let el = parse(&self.expand(xml));
        let stanza: Stanza = match el.name() {
            "presence" => Presence::try_from(el).expect("valid presence").into(),
            "message" => Message::try_from(el).expect("valid message").into(),
            "iq" => Iq::try_from(el).expect("valid iq").into(),
            other => panic!("not a stanza: {other}"),
        };
        self.client.send_stanza(stanza).await.expect("send");
    }

    /// The next stanza, whatever it is.
    pub(crate) async fn next(&mut self) -> Element {
        let deadline = tokio::time::Instant::now() + STANZA_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.client.next()).await {
                Err(_) => panic!("{}: no stanza within {STANZA_TIMEOUT:?}", self.jid),
                Ok(None) => panic!("{}: stream ended", self.jid),
                Ok(Some(Event::Stanza(s))) => return to_element(s),
                Ok(Some(Event::Disconnected(e))) => panic!("{}: disconnected: {e}", self.jid),
                Ok(Some(Event::Online { .. })) => {}
            }
        }
    }

    /// The next stanza must match `xml` (see the module comment); returns it.
    pub(crate) async fn expect(&mut self, xml: &str) -> Element {
        let want = parse(&self.expand(xml));
        let got = self.next().await;
        if let Err(why) = matches(&want, &got) {
            panic!(
                "{}: stanza differs ({why})\n  expected: {}\n  received: {}",
                self.jid,
                String::from(&want),
                String::from(&got)
            );
        }
        got
    }

    /// The next stanza if one arrives within `wait`; `None` on silence. Panics when the
    /// stream ends or disconnects.
    pub(crate) async fn try_next(&mut self, wait: std::time::Duration) -> Option<Element> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.client.next()).await {
                Err(_) => return None,
                Ok(None) => panic!("{}: stream ended", self.jid),
                Ok(Some(Event::Stanza(s))) => return Some(to_element(s)),
                Ok(Some(Event::Disconnected(e))) => panic!("{}: disconnected: {e}", self.jid),
                Ok(Some(Event::Online { .. })) => {}
            }
        }
    }

    /// Nothing arrives for a short while.
    pub(crate) async fn expect_silence(&mut self) {
        let quiet = std::time::Duration::from_millis(300);
        if let Ok(Some(Event::Stanza(s))) = tokio::time::timeout(quiet, self.client.next()).await {
            panic!(
                "{}: unexpected stanza {}",
                self.jid,
                String::from(&to_element(s))
            );
        }
    }

    /// Log out (the server sees the stream end).
    pub(crate) async fn quit(self) {
        let client = self.client;
        let _ = client.send_end().await;
    }
}

fn to_element(s: Stanza) -> Element {
    match s {
        Stanza::Iq(i) => i.into(),
        Stanza::Message(m) => m.into(),
        Stanza::Presence(p) => p.into(),
    }
}

fn parse(xml: &str) -> Element {
    // Scripts leave out the client namespace; declare it on the root.
    let xml = match xml.find(['>', ' ', '/']) {
        Some(i) if !xml[..xml.find('>').unwrap_or(i)].contains("xmlns=") => {
            format!("{} xmlns='jabber:client'{}", &xml[..i], &xml[i..])
        }
        _ => xml.to_owned(),
    };
    xml.parse()
        .unwrap_or_else(|e| panic!("bad XML in test script: {e}\n{xml}"))
}

/// `want` matches `got`: same name and namespace, the same attributes (but `id`; `*` matches
/// any value), the same trimmed text (`*` any), and matching children in order.
pub(crate) fn matches(want: &Element, got: &Element) -> Result<(), String> {
    if want.name() != got.name() || want.ns() != got.ns() {
        return Err(format!(
            "<{} xmlns={}> vs <{} xmlns={}>",
            want.name(),
            want.ns(),
            got.name(),
            got.ns()
        ));
    }
    let attrs = |e: &Element| {
        let mut v: Vec<(String, String)> = e
            .attrs()
            .into_iter()
            .map(|((ns, name), v)| {
                let ns: &str = ns.as_ref();
                let name: &str = name.as_ref();
                let key = if ns.is_empty() {
                    name.to_owned()
                } else {
                    format!("{{{ns}}}{name}")
                };
                (key, v.clone())
            })
            .filter(|(k, _)| k != "id" && !k.ends_with("}lang"))
            .collect();
        v.sort();
        v
    };
    let (wa, ga) = (attrs(want), attrs(got));
    let same = wa.len() == ga.len()
        && wa
            .iter()
            .zip(&ga)
            .all(|((wk, wv), (gk, gv))| wk == gk && (wv == "*" || wv == gv));
    if !same {
        return Err(format!("attributes of <{}>: {wa:?} vs {ga:?}", want.name()));
    }
    let (wt, gt) = (want.text(), got.text());
    if wt.trim() != "*" && wt.trim() != gt.trim() {
        return Err(format!("text of <{}>: {wt:?} vs {gt:?}", want.name()));
    }
    // tokio-xmpp writes `<priority>0</priority>` into every presence it sends; the room relays
    // it like any other child, so scripts need not spell it out.
    let implicit = |c: &&Element| c.name() == "priority" && c.text() == "0";
    let wc: Vec<_> = want.children().collect();
    let gc: Vec<_> = got
        .children()
        .filter(|c| !(implicit(c) && !wc.iter().any(|w| w.name() == "priority")))
        .collect();
    if wc.len() != gc.len() {
        return Err(format!(
            "<{}> has {} children, expected {}",
            want.name(),
            gc.len(),
            wc.len()
        ));
    }
    for (w, g) in wc.iter().zip(&gc) {
        matches(w, g)?;
    }
    Ok(())
}

/// A server whose `localhost` (anonymous) has a MUC service on `conference.localhost`.
pub(crate) fn muc_server(extra: &str) -> Server {
    let vhost =
        Vhost::anonymous("localhost").with(&format!("[vhosts.muc]\ndomain = \"{MUC}\"\n{extra}"));
    Setup::new(TestConfig::new(vec![vhost])).start()
}

/// What a Jitsi client puts in its join presence (as lib-jitsi-meet sends it).
const JITSI_PAYLOAD: &str = "<stats-id>Alice-Xy7</stats-id>\
    <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://jitsi.org/jitsi-meet' ver='abc='/>\
    <nick xmlns='http://jabber.org/protocol/nick'>Alice</nick>\
    <audiomuted>false</audiomuted><videomuted>true</videomuted><videoType>camera</videoType>\
    <SourceInfo>{\"a1-a0\":{\"muted\":false}}</SourceInfo>";

const SUBJECT: &str =
    "<message type='groupchat' from='room1@conference.localhost' to='{me}'><subject/></message>";

#[tokio::test]
async fn jitsi_style_room_join_fanout_private_iq_and_leave() {
    let server = muc_server("");
    let mut alice = Peer::anonymous(&server, "localhost").await;
    let mut bob = Peer::anonymous(&server, "localhost").await;
    for p in [&mut alice, &mut bob] {
        p.var("r", "room1@conference.localhost");
    }
    let (alice_jid, bob_jid) = (alice.jid.clone(), bob.jid.clone());
    alice.var("bob", &bob_jid);
    bob.var("alice", &alice_jid);

    // Alice creates the room: self-presence with 100, 110 and 201, owner/moderator; subject.
    alice
        .send(&format!(
            "<presence to='{{r}}/alice'><x xmlns='http://jabber.org/protocol/muc'/>{JITSI_PAYLOAD}</presence>"
        ))
        .await;
    alice
        .expect(&format!(
            "<presence from='{{r}}/alice' to='{{me}}'>{JITSI_PAYLOAD}\
             <x xmlns='http://jabber.org/protocol/muc#user'>\
             <item jid='{{me}}' affiliation='owner' role='moderator'/>\
             <status code='100'/><status code='110'/><status code='201'/></x></presence>"
        ))
        .await;
    alice.expect(SUBJECT).await;

    // Bob joins: he sees Alice first (extensions verbatim, real JID), then himself.
    bob.send("<presence to='{r}/bob'><x xmlns='http://jabber.org/protocol/muc'/><nick xmlns='http://jabber.org/protocol/nick'>Bob</nick></presence>").await;
    bob.expect(&format!(
        "<presence from='{{r}}/alice' to='{{me}}'>{JITSI_PAYLOAD}\
         <x xmlns='http://jabber.org/protocol/muc#user'>\
         <item jid='{{alice}}' affiliation='owner' role='moderator'/></x></presence>"
    ))
    .await;
    bob.expect(
        "<presence from='{r}/bob' to='{me}'><nick xmlns='http://jabber.org/protocol/nick'>Bob</nick>\
         <x xmlns='http://jabber.org/protocol/muc#user'>\
         <item jid='{me}' affiliation='none' role='participant'/>\
         <status code='100'/><status code='110'/></x></presence>",
    )
    .await;
    bob.expect(SUBJECT).await;
    alice
        .expect(
            "<presence from='{r}/bob' to='{me}'><nick xmlns='http://jabber.org/protocol/nick'>Bob</nick>\
             <x xmlns='http://jabber.org/protocol/muc#user'>\
             <item jid='{bob}' affiliation='none' role='participant'/></x></presence>",
        )
        .await;

    // Groupchat reaches everyone, the sender included, from the occupant JID.
    bob.send("<message to='{r}' type='groupchat'><body>hello room</body><json-message xmlns='http://jitsi.org/jitmeet'>{\"type\":\"x\"}</json-message></message>").await;
    for p in [&mut alice, &mut bob] {
        p.expect("<message from='{r}/bob' to='{me}' type='groupchat'><body>hello room</body><json-message xmlns='http://jitsi.org/jitmeet'>{\"type\":\"x\"}</json-message></message>").await;
    }

    // A presence update (mute) is relayed verbatim to all, with 110 for the sender.
    bob.send("<presence to='{r}/bob'><audiomuted>true</audiomuted></presence>")
        .await;
    bob.expect("<presence from='{r}/bob' to='{me}'><audiomuted>true</audiomuted><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{me}' affiliation='none' role='participant'/><status code='110'/></x></presence>").await;
    alice.expect("<presence from='{r}/bob' to='{me}'><audiomuted>true</audiomuted><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{bob}' affiliation='none' role='participant'/></x></presence>").await;

    // Private message, and an occupant-to-occupant iq and its answer.
    alice
        .send("<message to='{r}/bob' type='chat'><body>psst</body></message>")
        .await;
    bob.expect("<message from='{r}/alice' to='{me}' type='chat'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>").await;
    alice
        .send("<iq to='{r}/bob' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    bob.expect("<iq from='{r}/alice' to='{me}' type='get'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    bob.send("<iq to='{r}/alice' type='result' id='p1'/>").await;
    alice
        .expect("<iq from='{r}/bob' to='{me}' type='result'/>")
        .await;

    // Room disco#info carries the meeting id and creation time (what lib-jitsi-meet reads).
    alice.send("<iq to='{r}' type='get' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").await;
    let info = alice.expect(
        "<iq from='{r}' to='{me}' type='result'><query xmlns='http://jabber.org/protocol/disco#info'>\
         <identity category='conference' type='text' name='room1'/>\
         <feature var='http://jabber.org/protocol/muc'/><feature var='muc_unsecured'/><feature var='muc_open'/>\
         <feature var='muc_unmoderated'/><feature var='muc_temporary'/><feature var='muc_hidden'/><feature var='muc_nonanonymous'/>\
         <x xmlns='jabber:x:data' type='result'>\
         <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roominfo</value></field>\
         <field var='muc#roominfo_meetingId' type='text-single' label='*'><value>*</value></field>\
         <field var='muc#roominfo_created_timestamp' type='text-single'><value>*</value></field>\
         <field var='muc#roominfo_occupants' type='text-single' label='*'><value>2</value></field>\
         <field var='muc#roominfo_subject' type='text-single'><value/></field>\
         </x></query></iq>",
    )
    .await;
    let text = String::from(&info);
    let id = text
        .split("meetingId")
        .nth(1)
        .and_then(|t| t.split("<value>").nth(1))
        .and_then(|t| t.split('<').next())
        .unwrap_or("");
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "meeting id {id:?} is not a UUID"
    );

    // Nick conflict for a third client.
    let mut carol = Peer::anonymous(&server, "localhost").await;
    carol.var("r", "room1@conference.localhost");
    carol
        .send("<presence to='{r}/bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        .await;
    carol.expect("<presence from='{r}/bob' to='{me}' type='error'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>*</text></error></presence>").await;
    // A non-occupant may not talk to the room.
    carol
        .send("<message to='{r}' type='groupchat'><body>spam</body></message>")
        .await;
    carol.expect("<message from='{r}' to='{me}' type='error'><body>spam</body><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>*</text></error></message>").await;

    // Bob leaves: his own unavailable carries 110, Alice's does not.
    bob.send("<presence to='{r}/bob' type='unavailable'/>")
        .await;
    bob.expect("<presence from='{r}/bob' to='{me}' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{me}' affiliation='none' role='none'/><status code='110'/></x></presence>").await;
    alice.expect("<presence from='{r}/bob' to='{me}' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{bob}' affiliation='none' role='none'/></x></presence>").await;

    // Alice's connection drops: the room empties and is destroyed.
    alice.quit().await;
    let metrics = reqwest::get(server.ports().http_url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let deadline = std::time::Instant::now() + STANZA_TIMEOUT;
    loop {
        carol.send("<iq to='{r}' type='get' id='d2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").await;
        let reply = carol.next().await;
        if reply.attr("type") == Some("error") {
            let text = String::from(&reply);
            assert!(text.contains("item-not-found"), "{text}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "room not destroyed after its last occupant left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(metrics.contains("lilt_muc_rooms"), "{metrics}");
    carol.expect_silence().await;
}

/// Join `room` as `nick` and consume the join stanzas (others' presences, own, subject);
/// `others` is how many occupants are already there.
pub(crate) async fn join(p: &mut Peer, room: &str, nick: &str, others: usize) {
    p.send(&format!(
        "<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    ))
    .await;
    for _ in 0..others {
        p.expect(&format!("<presence from='*' to='{{me}}'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='*' affiliation='*' role='*'/></x></presence>")).await;
    }
    let own = p.next().await;
    assert_eq!(
        own.attr("from"),
        Some(format!("{room}/{nick}").as_str()),
        "{}",
        String::from(&own)
    );
    assert!(
        String::from(&own).contains("code='110'") || String::from(&own).contains("code=\"110\""),
        "no 110 in {}",
        String::from(&own)
    );
    p.expect(&format!(
        "<message type='groupchat' from='*' to='{{me}}'><subject>*</subject></message>"
    ))
    .await;
}

#[tokio::test]
async fn kick_grant_and_revoke_moderator() {
    let server = muc_server("");
    let room = "mod@conference.localhost";
    let mut owner = Peer::anonymous(&server, "localhost").await;
    let mut bob = Peer::anonymous(&server, "localhost").await;
    let mut carol = Peer::anonymous(&server, "localhost").await;
    join(&mut owner, room, "owner", 0).await;
    join(&mut bob, room, "bob", 1).await;
    owner.next().await; // bob's arrival
    join(&mut carol, room, "carol", 2).await;
    owner.next().await;
    bob.next().await;
    let bob_jid = bob.jid.clone();
    for p in [&mut owner, &mut bob, &mut carol] {
        p.var("r", room);
        p.var("bob", &bob_jid);
    }

    // A participant may not kick.
    carol.send("<iq to='{r}' type='set' id='k0'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='bob' role='none'/></query></iq>").await;
    let refused = carol.next().await;
    assert!(
        String::from(&refused).contains("forbidden"),
        "{}",
        String::from(&refused)
    );

    // The owner makes Bob a moderator the Jitsi way (affiliation owner by nick).
    owner.send("<iq to='{r}' type='set' id='g1'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='bob' affiliation='owner'/></query></iq>").await;
    bob.expect("<presence from='{r}/bob' to='{me}'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{me}' affiliation='owner' role='moderator'/><status code='110'/></x></presence>").await;
    carol.expect("<presence from='{r}/bob' to='{me}'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{bob}' affiliation='owner' role='moderator'/></x></presence>").await;
    owner.expect("<presence from='{r}/bob' to='{me}'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{bob}' affiliation='owner' role='moderator'/></x></presence>").await;
    owner
        .expect("<iq from='{r}' to='{me}' type='result'/>")
        .await;

    // Bob, now moderator, kicks Carol: 307 to all, 110 for Carol.
    bob.send("<iq to='{r}' type='set' id='k1'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='carol' role='none'><reason>bye</reason></item></query></iq>").await;
    carol.expect("<presence from='{r}/carol' to='{me}' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{me}' nick='carol' affiliation='none' role='none'/><status code='307'/><status code='110'/></x></presence>").await;
    for p in [&mut owner, &mut bob] {
        p.expect("<presence from='{r}/carol' to='{me}' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='*' nick='carol' affiliation='none' role='none'/><status code='307'/></x></presence>").await;
    }
    bob.expect("<iq from='{r}' to='{me}' type='result'/>").await;

    // Revoke: back to no affiliation, participant.
    owner.send("<iq to='{r}' type='set' id='g2'><query xmlns='http://jabber.org/protocol/muc#admin'><item jid='{bob}' affiliation='none'/></query></iq>").await;
    bob.expect("<presence from='{r}/bob' to='{me}'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{me}' affiliation='none' role='participant'/><status code='110'/></x></presence>").await;
    owner.expect("<presence from='{r}/bob' to='{me}'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{bob}' affiliation='none' role='participant'/></x></presence>").await;
    owner
        .expect("<iq from='{r}' to='{me}' type='result'/>")
        .await;
    // The last owner cannot step down.
    owner.send("<iq to='{r}' type='set' id='g3'><query xmlns='http://jabber.org/protocol/muc#admin'><item jid='{me}' affiliation='none'/></query></iq>").await;
    let refused = owner.next().await;
    assert!(
        String::from(&refused).contains("conflict"),
        "{}",
        String::from(&refused)
    );
    carol.expect_silence().await;
}

#[tokio::test]
async fn owner_form_password_members_only_and_max_occupants() {
    let server = muc_server("");
    let room = "locked@conference.localhost";
    let mut owner = Peer::anonymous(&server, "localhost").await;
    join(&mut owner, room, "owner", 0).await;
    owner.var("r", room);
    owner.send("<iq to='{r}' type='get' id='f1'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>").await;
    let form = String::from(&owner.next().await);
    for var in [
        "muc#roomconfig_roomsecret",
        "muc#roomconfig_membersonly",
        "muc#roomconfig_maxusers",
        "muc#roomconfig_whois",
    ] {
        assert!(form.contains(var), "{var} missing from {form}");
    }
    let submit = |fields: &str| {
        format!(
            "<iq to='{{r}}' type='set' id='f2'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>{fields}</x></query></iq>"
        )
    };
    owner.send(&submit("<field var='muc#roomconfig_passwordprotectedroom'><value>1</value></field><field var='muc#roomconfig_roomsecret'><value>s3cret</value></field><field var='muc#roomconfig_maxusers'><value>2</value></field>")).await;
    owner.expect("<message type='groupchat' from='{r}' to='{me}'><x xmlns='http://jabber.org/protocol/muc#user'><status code='104'/></x></message>").await;
    owner
        .expect("<iq from='{r}' to='{me}' type='result'/>")
        .await;

    let mut guest = Peer::anonymous(&server, "localhost").await;
    guest.var("r", room);
    guest
        .send("<presence to='{r}/guest'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        .await;
    guest.expect("<presence from='{r}/guest' to='{me}' type='error'><error type='auth'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>*</text></error></presence>").await;
    join_with_password(&mut guest, "s3cret").await;
    owner.next().await; // the guest's arrival

    // Full at two.
    let mut third = Peer::anonymous(&server, "localhost").await;
    third.var("r", room);
    third.send("<presence to='{r}/third'><x xmlns='http://jabber.org/protocol/muc'><password>s3cret</password></x></presence>").await;
    third.expect("<presence from='{r}/third' to='{me}' type='error'><error type='wait'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>*</text></error></presence>").await;

    // Members only: a stranger needs registration.
    owner.send(&submit("<field var='muc#roomconfig_membersonly'><value>1</value></field><field var='muc#roomconfig_maxusers'><value>0</value></field>")).await;
    owner.expect("<message type='groupchat' from='{r}' to='{me}'><x xmlns='http://jabber.org/protocol/muc#user'><status code='104'/></x></message>").await;
    owner
        .expect("<iq from='{r}' to='{me}' type='result'/>")
        .await;
    third.send("<presence to='{r}/third'><x xmlns='http://jabber.org/protocol/muc'><password>s3cret</password></x></presence>").await;
    third.expect("<presence from='{r}/third' to='{me}' type='error'><error type='auth'><registration-required xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>*</text></error></presence>").await;
    // Anonymous rooms are refused: Jitsi needs real JIDs.
    owner
        .send(&submit(
            "<field var='muc#roomconfig_whois'><value>moderators</value></field>",
        ))
        .await;
    let refused = String::from(&owner.next().await);
    assert!(refused.contains("not-acceptable"), "{refused}");
}

async fn join_with_password(p: &mut Peer, password: &str) {
    p.send(&format!("<presence to='{{r}}/guest'><x xmlns='http://jabber.org/protocol/muc'><password>{password}</password></x></presence>")).await;
    p.expect("<presence from='*' to='{me}'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='*' affiliation='owner' role='moderator'/></x></presence>").await;
    p.expect("<presence from='{r}/guest' to='{me}'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{me}' affiliation='none' role='participant'/><status code='100'/><status code='110'/></x></presence>").await;
    p.expect("<message type='groupchat' from='{r}' to='{me}'><subject/></message>")
        .await;
}

#[tokio::test]
async fn secure_domain_guests_join_but_do_not_create() {
    let meet = Vhost::internal("localhost").with(&format!(
        "[vhosts.muc]\ndomain = \"{MUC}\"\nroom_creators = [\"localhost\"]"
    ));
    let setup = Setup::new(TestConfig::new(vec![
        meet,
        Vhost::anonymous("guest.localhost"),
    ]));
    setup.add_user("alice@localhost", crate::login::ALICE_PW);
    let server = setup.start();
    let room = "secure@conference.localhost";
    let mut guest = Peer::anonymous(&server, "guest.localhost").await;
    guest.var("r", room);
    guest
        .send("<presence to='{r}/guest'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        .await;
    guest.expect("<presence from='{r}/guest' to='{me}' type='error'><error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>*</text></error></presence>").await;
    let mut alice = Peer::account(&server, "alice@localhost", crate::login::ALICE_PW).await;
    join(&mut alice, room, "alice", 0).await;
    join(&mut guest, room, "guest", 1).await;
    let arrival = String::from(&alice.next().await);
    assert!(arrival.contains(&guest.jid), "{arrival}");
}

#[tokio::test]
async fn nick_change_and_disconnect_leave() {
    let server = muc_server("");
    let room = "nicks@conference.localhost";
    let mut a = Peer::anonymous(&server, "localhost").await;
    let mut b = Peer::anonymous(&server, "localhost").await;
    join(&mut a, room, "a", 0).await;
    join(&mut b, room, "b", 1).await;
    a.next().await;
    let b_jid = b.jid.clone();
    for p in [&mut a, &mut b] {
        p.var("r", room);
        p.var("b", &b_jid);
    }
    b.send("<presence to='{r}/b2'/>").await;
    a.expect("<presence from='{r}/b' to='{me}' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{b}' nick='b2' affiliation='none' role='participant'/><status code='303'/></x></presence>").await;
    a.expect("<presence from='{r}/b2' to='{me}'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{b}' affiliation='none' role='participant'/></x></presence>").await;
    b.expect("<presence from='{r}/b' to='{me}' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{me}' nick='b2' affiliation='none' role='participant'/><status code='303'/><status code='110'/></x></presence>").await;
    b.expect("<presence from='{r}/b2' to='{me}'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{me}' affiliation='none' role='participant'/><status code='110'/></x></presence>").await;
    b.quit().await;
    a.expect("<presence from='{r}/b2' to='{me}' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{b}' affiliation='none' role='none'/></x></presence>").await;
    a.expect_silence().await;
}

// ---- Limits (docs/muc.md "Limits") ----

#[tokio::test]
async fn rooms_per_session_limit_refuses_the_next_join() {
    let server = muc_server("max_rooms_per_session = 2");
    let mut a = Peer::anonymous(&server, "localhost").await;
    join(&mut a, "one@conference.localhost", "a", 0).await;
    join(&mut a, "two@conference.localhost", "a", 0).await;
    a.send("<presence to='three@conference.localhost/a'><x xmlns='http://jabber.org/protocol/muc'/></presence>").await;
    let refused = a.expect("<presence from='three@conference.localhost/a' to='{me}' type='error'><error type='modify'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>*</text></error></presence>").await;
    let text = String::from(&refused);
    assert!(text.contains("at most 2"), "{text}");
    // Leaving one frees a place.
    a.send("<presence to='one@conference.localhost/a' type='unavailable'/>")
        .await;
    a.expect("<presence from='one@conference.localhost/a' to='{me}' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='{me}' affiliation='owner' role='none'/><status code='110'/></x></presence>").await;
    join(&mut a, "three@conference.localhost", "a", 0).await;
    a.expect_silence().await;
}

/// A server whose `localhost` has accounts and a MUC service whose admin is alice.
fn admin_muc_server(extra: &str) -> Server {
    let vhost = Vhost::internal("localhost").with(&format!(
        "[vhosts.muc]\ndomain = \"{MUC}\"\nadmins = [\"alice@localhost\"]\n{extra}"
    ));
    let setup = Setup::new(TestConfig::new(vec![vhost]));
    setup.add_user("alice@localhost", crate::login::ALICE_PW);
    setup.add_user("bob@localhost", crate::login::BOB_PW);
    setup.start()
}

fn config_submit(fields: &str) -> String {
    format!(
        "<iq to='{{r}}' type='set' id='cfg'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>{fields}</x></query></iq>"
    )
}

const PERSISTENT: &str = "<field var='muc#roomconfig_persistentroom'><value>1</value></field>";

const CHANGED: &str = "<message type='groupchat' from='{r}' to='{me}'><x xmlns='http://jabber.org/protocol/muc#user'><status code='104'/></x></message>";

#[tokio::test]
async fn persistent_rooms_are_for_service_admins_only() {
    let server = admin_muc_server("");
    let room = "keep@conference.localhost";
    let mut bob = Peer::account(&server, "bob@localhost", crate::login::BOB_PW).await;
    bob.var("r", room);
    join(&mut bob, room, "bob", 0).await;
    // Bob owns the room but is no service admin.
    bob.send(&config_submit(PERSISTENT)).await;
    let refused = bob.expect("<iq from='{r}' to='{me}' type='error'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>*</text></error></iq>").await;
    assert!(String::from(&refused).contains("admins"));
    // Alice, a service admin, may (from outside the room).
    let mut alice = Peer::account(&server, "alice@localhost", crate::login::ALICE_PW).await;
    alice.var("r", room);
    alice.send(&config_submit(PERSISTENT)).await;
    bob.expect(CHANGED).await;
    alice
        .expect("<iq from='{r}' to='{me}' type='result'/>")
        .await;
    // The room outlives its last occupant.
    bob.send("<presence to='{r}/bob' type='unavailable'/>")
        .await;
    bob.next().await;
    alice.send("<iq to='{r}' type='get' id='i'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").await;
    let info = String::from(&alice.next().await);
    assert!(
        info.contains("type=\"result\"") || info.contains("type='result'"),
        "{info}"
    );
    assert!(info.contains("muc_persistent"), "{info}");
}

#[tokio::test]
async fn disco_items_of_the_service_are_paged() {
    let server = muc_server("disco_items_page = 2");
    let mut owner = Peer::anonymous(&server, "localhost").await;
    for r in ["c", "a", "b"] {
        let room = format!("{r}@{MUC}");
        join(&mut owner, &room, "o", 0).await;
        owner
            .send(
                &config_submit("<field var='muc#roomconfig_publicroom'><value>1</value></field>")
                    .replace("{r}", &room),
            )
            .await;
        owner.expect(&CHANGED.replace("{r}", &room)).await;
        owner
            .expect(&format!("<iq from='{room}' to='{{me}}' type='result'/>"))
            .await;
    }
    let mut q = Peer::anonymous(&server, "localhost").await;
    q.send(&format!(
        "<iq to='{MUC}' type='get' id='p1'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
    ))
    .await;
    q.expect(&format!(
        "<iq from='{MUC}' to='{{me}}' type='result'><query xmlns='http://jabber.org/protocol/disco#items'>\
         <item jid='a@{MUC}' name='a'/><item jid='b@{MUC}' name='b'/>\
         <set xmlns='http://jabber.org/protocol/rsm'><first index='0'>a@{MUC}</first><last>b@{MUC}</last><count>3</count></set>\
         </query></iq>"
    ))
    .await;
    q.send(&format!(
        "<iq to='{MUC}' type='get' id='p2'><query xmlns='http://jabber.org/protocol/disco#items'>\
         <set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>b@{MUC}</after></set></query></iq>"
    ))
    .await;
    q.expect(&format!(
        "<iq from='{MUC}' to='{{me}}' type='result'><query xmlns='http://jabber.org/protocol/disco#items'>\
         <item jid='c@{MUC}' name='c'/>\
         <set xmlns='http://jabber.org/protocol/rsm'><first index='2'>c@{MUC}</first><last>c@{MUC}</last><count>3</count></set>\
         </query></iq>"
    ))
    .await;
    q.send(&format!(
        "<iq to='{MUC}' type='get' id='p3'><query xmlns='http://jabber.org/protocol/disco#items'>\
         <set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set></query></iq>"
    ))
    .await;
    q.expect(&format!(
        "<iq from='{MUC}' to='{{me}}' type='result'><query xmlns='http://jabber.org/protocol/disco#items'>\
         <set xmlns='http://jabber.org/protocol/rsm'><count>3</count></set></query></iq>"
    ))
    .await;
}

#[tokio::test]
async fn an_oversized_presence_is_refused_and_the_room_keeps_the_last_one() {
    let server = muc_server("max_presence_bytes = 1024");
    let room = "big@conference.localhost";
    let mut a = Peer::anonymous(&server, "localhost").await;
    let mut b = Peer::anonymous(&server, "localhost").await;
    a.var("r", room);
    b.var("r", room);
    let big = "x".repeat(1100);
    // A Jitsi join presence fits; one with a 1100-byte nick does not.
    a.send(&format!(
        "<presence to='{{r}}/a'><x xmlns='http://jabber.org/protocol/muc'/>\
         <nick xmlns='http://jabber.org/protocol/nick'>{big}</nick></presence>"
    ))
    .await;
    let refused = a.expect("<presence from='{r}/a' to='{me}' type='error'><error type='modify'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>*</text></error></presence>").await;
    assert!(String::from(&refused).contains("at most 1024"));
    a.send(&format!(
        "<presence to='{{r}}/a'><x xmlns='http://jabber.org/protocol/muc'/>{JITSI_PAYLOAD}</presence>"
    ))
    .await;
    a.expect(&format!(
        "<presence from='{{r}}/a' to='{{me}}'>{JITSI_PAYLOAD}<x xmlns='http://jabber.org/protocol/muc#user'>\
         <item jid='{{me}}' affiliation='owner' role='moderator'/>\
         <status code='100'/><status code='110'/><status code='201'/></x></presence>"
    ))
    .await;
    a.expect("<message type='groupchat' from='{r}' to='{me}'><subject/></message>")
        .await;
    // An oversized update: an error to the sender, nothing to anyone else.
    a.send(&format!(
        "<presence to='{{r}}/a'><nick xmlns='http://jabber.org/protocol/nick'>{big}</nick></presence>"
    ))
    .await;
    a.expect("<presence from='{r}/a' to='{me}' type='error'><error type='modify'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>*</text></error></presence>").await;
    // A newcomer sees the presence the room kept.
    b.send("<presence to='{r}/b'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        .await;
    b.expect(&format!(
        "<presence from='{{r}}/a' to='{{me}}'>{JITSI_PAYLOAD}<x xmlns='http://jabber.org/protocol/muc#user'>\
         <item jid='*' affiliation='owner' role='moderator'/></x></presence>"
    ))
    .await;
}
