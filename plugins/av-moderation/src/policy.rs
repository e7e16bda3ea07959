//! av-moderation's policy, as jitsi-meet's mod_av_moderation_component: a moderator turns
//! moderation on or off per media type (`audio`, `video`, `desktop`); while it is on, only
//! whitelisted occupants may unmute; moderators approve (whitelist) or reject (remove)
//! occupants. Everything is told with `json-message`s from the component's address, in the
//! shapes lib-jitsi-meet's AVModeration.js reads and Jicofo's AvModerationHandler learns from:
//!
//! - to every occupant, on a change, and to a joiner, per enabled media type:
//!   `{"type":"av_moderation","enabled":B,"room":ROOM,"actor":ROOM/NICK,"mediaType":M}`;
//! - to every moderator, on a whitelist change (and when a moderator joins):
//!   `{"type":"av_moderation","room":ROOM,"whitelists":{M:[ROOM/NICK,…]},"mediaType":M
//!   [,"removed":true]}` (empty lists left out);
//! - to the approved or rejected non-moderator only:
//!   `{"type":"av_moderation","room":ROOM,"mediaType":M,"approved":true}` or `…,"removed":true}`;
//! - an approval while moderation is off for M goes to the occupant only, as a request to
//!   unmute: `{"type":"av_moderation","room":ROOM,"approved":true,"mediaType":M,"from":ROOM/NICK}`.
//!
//! Commands arrive as `<message to=COMPONENT><av_moderation enable='true|false' mediaType=M/>`,
//! `<av_moderation jidToWhitelist=ROOM/NICK mediaType=M/>` or `jidToBlacklist=…`; they are
//! obeyed only from a moderator occupant of the room, and ignored otherwise (as Prosody does).
//!
//! Roles come from occupant events. Lilt's focus, like Jicofo, makes the longest-present
//! participant an owner (so a moderator) whenever no present participant is one, after the
//! join event; with `focus_grants_owner` (default on) the plugin applies the same rule, since
//! no event reports that grant.
//!
//! Pure (tested natively below). All state lives in `kv`, so it survives a plugin reload and
//! every call may run in a fresh instance. Keys: `occ|ROOM|NICK` → occupant (JSON),
//! `at|REALJID|ROOM` → nick, `seq|ROOM` → join counter, `on|ROOM|M` → actor (moderation on),
//! `wl|ROOM|M` → whitelist (JSON array of occupant JIDs). Invariants: a room's keys are deleted
//! when it is created or destroyed; a whitelist holds at most `max_whitelist` entries; at most
//! `max_rooms` rooms have moderation on; the focus is never whitelisted nor made owner.

use lilt_plugin_sdk::Element;
use lilt_plugin_sdk::hooks::{CLIENT, Host, LogLevel, Occupant};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Jitsi's namespace for `json-message`.
pub const JITMEET: &str = "http://jitsi.org/jitmeet";
/// The media types moderation applies to (Prosody's list).
pub const MEDIA: [&str; 3] = ["audio", "video", "desktop"];
/// The focus's nick in every room.
pub const FOCUS_NICK: &str = "focus";

/// The plugin's settings (`[vhosts.plugins.settings]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Most occupants one media type's whitelist holds.
    pub max_whitelist: usize,
    /// Most rooms with moderation on at once.
    pub max_rooms: usize,
    /// Apply the focus's owner rule (the longest-present participant is owner when none is).
    pub focus_grants_owner: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_whitelist: 1000,
            max_rooms: 10_000,
            focus_grants_owner: true,
        }
    }
}

impl Settings {
    /// Refuse limits of zero.
    ///
    /// # Errors
    /// Which setting is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.max_whitelist == 0 {
            return Err("settings: max_whitelist must be at least 1".into());
        }
        if self.max_rooms == 0 {
            return Err("settings: max_rooms must be at least 1".into());
        }
        Ok(())
    }
}

/// What every policy call needs: the component's address and the settings.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The component domain messages come from.
    pub component: &'a str,
    /// The settings.
    pub settings: &'a Settings,
}

/// An occupant as the plugin remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Occ {
    /// Real full JID.
    jid: String,
    /// Join order within the room.
    seq: u64,
    /// Moderator by role at join.
    moderator: bool,
    /// Owner by affiliation at join, or made owner since (the focus's rule).
    owner: bool,
}

impl Occ {
    fn is_moderator(&self) -> bool {
        self.moderator || self.owner
    }
}

fn text(host: &impl Host, key: &str) -> Option<String> {
    host.get(key).and_then(|v| String::from_utf8(v).ok())
}

fn set(host: &impl Host, key: &str, value: &str) {
    if let Err(e) = host.set(key, value.as_bytes()) {
        host.log(
            LogLevel::Warn,
            &format!("av-moderation: storing {key}: {e}"),
        );
    }
}

fn occ(host: &impl Host, room: &str, nick: &str) -> Option<Occ> {
    serde_json::from_str(&text(host, &format!("occ|{room}|{nick}"))?).ok()
}

fn put_occ(host: &impl Host, room: &str, nick: &str, o: &Occ) {
    if let Ok(v) = serde_json::to_string(o) {
        set(host, &format!("occ|{room}|{nick}"), &v);
    }
}

/// Everyone in the room (the focus included), by nick, in join order.
fn occupants(host: &impl Host, room: &str) -> Vec<(String, Occ)> {
    let prefix = format!("occ|{room}|");
    let mut v: Vec<(String, Occ)> = host
        .keys(&prefix)
        .into_iter()
        .filter_map(|k| {
            let nick = k.strip_prefix(&prefix)?.to_owned();
            let o: Occ = serde_json::from_str(&text(host, &k)?).ok()?;
            Some((nick, o))
        })
        .collect();
    v.sort_by_key(|(_, o)| o.seq);
    v
}

fn enabled_actor(host: &impl Host, room: &str, media: &str) -> Option<String> {
    text(host, &format!("on|{room}|{media}"))
}

fn whitelist(host: &impl Host, room: &str, media: &str) -> Vec<String> {
    text(host, &format!("wl|{room}|{media}"))
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default()
}

fn put_whitelist(host: &impl Host, room: &str, media: &str, list: &[String]) {
    if let Ok(v) = serde_json::to_string(list) {
        set(host, &format!("wl|{room}|{media}"), &v);
    }
}

fn any_enabled(host: &impl Host, room: &str) -> bool {
    !host.keys(&format!("on|{room}|")).is_empty()
}

fn send_json(host: &impl Host, ctx: &Ctx<'_>, to: &str, body: &Value) {
    let msg = Element::new("message", CLIENT)
        .with_attr("from", ctx.component)
        .with_attr("to", to)
        .with_child(Element::new("json-message", JITMEET).with_text(body.to_string()));
    if let Err(e) = host.send(&msg) {
        host.log(
            LogLevel::Warn,
            &format!("av-moderation: sending to {to}: {e}"),
        );
    }
}

/// Moderation of `media` turned on or off by `actor` (an occupant JID): to `to`, or to every
/// occupant when `None`.
fn notify_enable(
    host: &impl Host,
    ctx: &Ctx<'_>,
    room: &str,
    to: Option<&str>,
    enabled: bool,
    actor: &str,
    media: &str,
) {
    let body = json!({
        "type": "av_moderation",
        "enabled": enabled,
        "room": room,
        "actor": actor,
        "mediaType": media,
    });
    match to {
        Some(jid) => send_json(host, ctx, jid, &body),
        None => {
            for (_, o) in occupants(host, room) {
                send_json(host, ctx, &o.jid, &body);
            }
        }
    }
}

/// A whitelist of `media` changed: every moderator (when `moderators`) gets all the
/// whitelists; the occupant whose real JID is `jid` gets them too when a moderator, otherwise
/// only `approved` (or `removed`).
fn notify_whitelist(
    host: &impl Host,
    ctx: &Ctx<'_>,
    room: &str,
    jid: Option<&str>,
    moderators: bool,
    media: &str,
    removed: bool,
) {
    let mut lists = Map::new();
    for m in MEDIA {
        let list = whitelist(host, room, m);
        if !list.is_empty() {
            lists.insert(m.to_owned(), json!(list));
        }
    }
    let mut body = json!({
        "type": "av_moderation",
        "room": room,
        "whitelists": lists,
        "mediaType": media,
    });
    if removed {
        body["removed"] = json!(true);
    }
    let for_moderators = body.clone();
    if let Some(o) = body.as_object_mut() {
        o.remove("whitelists");
        if !removed {
            o.insert("approved".into(), json!(true));
        }
    }
    for (_, o) in occupants(host, room) {
        if moderators && o.is_moderator() {
            send_json(host, ctx, &o.jid, &for_moderators);
        } else if Some(o.jid.as_str()) == jid {
            let b = if o.is_moderator() {
                &for_moderators
            } else {
                &body
            };
            send_json(host, ctx, &o.jid, b);
        }
    }
}

/// Add `occupant_jid` to every enabled whitelist it is not on; the media types changed.
fn whitelist_everywhere(
    host: &impl Host,
    ctx: &Ctx<'_>,
    room: &str,
    occupant_jid: &str,
) -> Vec<&'static str> {
    let mut changed = Vec::new();
    for m in MEDIA {
        if enabled_actor(host, room, m).is_none() {
            continue;
        }
        let mut list = whitelist(host, room, m);
        if list.iter().any(|j| j == occupant_jid) {
            continue;
        }
        if push_bounded(host, ctx, room, &mut list, occupant_jid) {
            put_whitelist(host, room, m, &list);
            changed.push(m);
        }
    }
    changed
}

/// Append to a whitelist within `max_whitelist`, first dropping occupants no longer present
/// when it is full. False when there is still no room.
fn push_bounded(
    host: &impl Host,
    ctx: &Ctx<'_>,
    room: &str,
    list: &mut Vec<String>,
    jid: &str,
) -> bool {
    if list.len() >= ctx.settings.max_whitelist {
        let present: Vec<String> = occupants(host, room)
            .into_iter()
            .map(|(nick, _)| format!("{room}/{nick}"))
            .collect();
        list.retain(|j| present.contains(j));
    }
    if list.len() >= ctx.settings.max_whitelist {
        host.log(
            LogLevel::Warn,
            &format!("av-moderation: the whitelist of {room} is full; {jid} not added"),
        );
        return false;
    }
    list.push(jid.to_owned());
    true
}

/// The focus's rule: when no present participant is an owner, the longest-present one becomes
/// one (and so a moderator, whitelisted wherever moderation is on).
fn ensure_owner(host: &impl Host, ctx: &Ctx<'_>, room: &str) {
    if !ctx.settings.focus_grants_owner {
        return;
    }
    let people: Vec<(String, Occ)> = occupants(host, room)
        .into_iter()
        .filter(|(nick, _)| nick != FOCUS_NICK)
        .collect();
    if people.iter().any(|(_, o)| o.owner) {
        return;
    }
    let Some((nick, mut o)) = people.into_iter().next() else {
        return;
    };
    o.owner = true;
    put_occ(host, room, &nick, &o);
    for m in whitelist_everywhere(host, ctx, room, &format!("{room}/{nick}")) {
        notify_whitelist(host, ctx, room, None, true, m, false);
    }
}

/// Someone joined: remember them, tell them what is moderated, and if they are a moderator
/// whitelist them and update every moderator.
pub fn joined(host: &impl Host, ctx: &Ctx<'_>, room: &str, occupant: &Occupant) {
    let seq_key = format!("seq|{room}");
    let seq = text(host, &seq_key)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    set(host, &seq_key, &seq.to_string());
    let nick = occupant.nick.as_str();
    let o = Occ {
        jid: occupant.jid.clone(),
        seq,
        moderator: occupant.role == "moderator",
        owner: matches!(occupant.affiliation.as_str(), "owner"),
    };
    put_occ(host, room, nick, &o);
    set(host, &format!("at|{}|{room}", occupant.jid), nick);
    for m in MEDIA {
        if let Some(actor) = enabled_actor(host, room, m) {
            notify_enable(host, ctx, room, Some(&o.jid), true, &actor, m);
        }
    }
    if nick != FOCUS_NICK && o.is_moderator() {
        whitelist_everywhere(host, ctx, room, &format!("{room}/{nick}"));
        for m in MEDIA {
            if enabled_actor(host, room, m).is_some() {
                notify_whitelist(host, ctx, room, None, true, m, false);
            }
        }
    }
    if nick != FOCUS_NICK {
        ensure_owner(host, ctx, room);
    }
}

/// Someone left: forget them (their whitelist entries stay, as in Prosody, within the bound);
/// the focus's rule may make someone else owner.
pub fn left(host: &impl Host, ctx: &Ctx<'_>, room: &str, occupant: &Occupant) {
    host.delete(&format!("occ|{room}|{}", occupant.nick));
    host.delete(&format!("at|{}|{room}", occupant.jid));
    if occupant.nick != FOCUS_NICK {
        ensure_owner(host, ctx, room);
    }
}

/// The room is new or gone: forget everything about it.
pub fn forget_room(host: &impl Host, room: &str) {
    for (_, o) in occupants(host, room) {
        host.delete(&format!("at|{}|{room}", o.jid));
    }
    host.delete(&format!("seq|{room}"));
    for kind in ["occ", "on", "wl"] {
        for key in host.keys(&format!("{kind}|{room}|")) {
            host.delete(&key);
        }
    }
}

/// The rooms the real JID `from` is in, with its nick there.
fn rooms_of(host: &impl Host, from: &str) -> Vec<(String, String)> {
    let prefix = format!("at|{from}|");
    host.keys(&prefix)
        .into_iter()
        .filter_map(|k| {
            let room = k.strip_prefix(&prefix)?.to_owned();
            let nick = text(host, &k)?;
            Some((room, nick))
        })
        .collect()
}

fn warn(host: &impl Host, what: &str) {
    host.log(LogLevel::Warn, &format!("av-moderation: {what}"));
}

/// A message to the component: an `av_moderation` command, or anything else (ignored).
pub fn command(host: &impl Host, ctx: &Ctx<'_>, stanza: &Element) {
    if stanza.attr("type") == Some("error") {
        return;
    }
    // lib-jitsi-meet builds it with Strophe's `c()`, so it is in the message's namespace.
    let Some(cmd) = stanza.children().find(|c| c.name == "av_moderation") else {
        return;
    };
    let Some(from) = stanza.attr("from") else {
        return;
    };
    let target = cmd
        .attr("jidToWhitelist")
        .or_else(|| cmd.attr("jidToBlacklist"))
        .and_then(|j| j.split_once('/'));
    // The room: the target's when there is one, else the only room the sender is in.
    let mine = rooms_of(host, from);
    let found = match target {
        Some((room, _)) => mine.into_iter().find(|(r, _)| r == room),
        None if mine.len() == 1 => mine.into_iter().next(),
        None => None,
    };
    let Some((room, nick)) = found else {
        warn(
            host,
            &format!("{from} is in no room this command could be about"),
        );
        return;
    };
    let Some(sender) = occ(host, &room, &nick) else {
        return;
    };
    if !sender.is_moderator() {
        warn(host, &format!("{from} is not a moderator of {room}"));
        return;
    }
    let Some(media) = cmd.attr("mediaType").filter(|m| MEDIA.contains(m)) else {
        warn(host, &format!("missing or unknown mediaType from {from}"));
        return;
    };
    let actor = format!("{room}/{nick}");
    if let Some(enable) = cmd.attr("enable") {
        set_enabled(host, ctx, &room, &actor, media, enable == "true");
    } else if let Some((_, target_nick)) = target {
        let Some(t) = occ(host, &room, target_nick) else {
            warn(host, &format!("no occupant {target_nick} in {room}"));
            return;
        };
        let target_jid = format!("{room}/{target_nick}");
        if cmd.attr("jidToWhitelist").is_some() {
            approve(host, ctx, &room, &actor, media, &target_jid, &t.jid);
        } else {
            reject(host, ctx, &room, media, &target_jid, &t.jid);
        }
    }
}

fn set_enabled(host: &impl Host, ctx: &Ctx<'_>, room: &str, actor: &str, media: &str, on: bool) {
    let key = format!("on|{room}|{media}");
    let is_on = host.get(&key).is_some();
    if on == is_on {
        // Prosody: a concurrent request, or out of sync; nothing changes.
        return;
    }
    if on {
        if !any_enabled(host, room) {
            let mut rooms: Vec<String> = host
                .keys("on|")
                .into_iter()
                .filter_map(|k| {
                    k.strip_prefix("on|")?
                        .rsplit_once('|')
                        .map(|(r, _)| r.to_owned())
                })
                .collect();
            rooms.dedup();
            if rooms.len() >= ctx.settings.max_rooms {
                warn(
                    host,
                    &format!("moderation is on in {} rooms; not in {room}", rooms.len()),
                );
                return;
            }
        }
        set(host, &key, actor);
        // Every moderator present (never the focus) starts on the whitelist.
        let mut list = Vec::new();
        for (nick, o) in occupants(host, room) {
            if nick != FOCUS_NICK && o.is_moderator() && list.len() < ctx.settings.max_whitelist {
                list.push(format!("{room}/{nick}"));
            }
        }
        put_whitelist(host, room, media, &list);
        notify_enable(host, ctx, room, None, true, actor, media);
        notify_whitelist(host, ctx, room, None, true, media, false);
    } else {
        host.delete(&key);
        host.delete(&format!("wl|{room}|{media}"));
        notify_enable(host, ctx, room, None, false, actor, media);
    }
}

fn approve(
    host: &impl Host,
    ctx: &Ctx<'_>,
    room: &str,
    actor: &str,
    media: &str,
    target_jid: &str,
    target_real: &str,
) {
    if enabled_actor(host, room, media).is_none() {
        // A moderator asking someone to unmute without moderation: only they hear of it.
        let body = json!({
            "type": "av_moderation",
            "room": room,
            "approved": true,
            "mediaType": media,
            "from": actor,
        });
        send_json(host, ctx, target_real, &body);
        return;
    }
    let mut list = whitelist(host, room, media);
    if !list.iter().any(|j| j == target_jid) {
        if !push_bounded(host, ctx, room, &mut list, target_jid) {
            return;
        }
        put_whitelist(host, room, media, &list);
    }
    notify_whitelist(host, ctx, room, Some(target_real), true, media, false);
}

fn reject(
    host: &impl Host,
    ctx: &Ctx<'_>,
    room: &str,
    media: &str,
    target_jid: &str,
    target_real: &str,
) {
    if enabled_actor(host, room, media).is_none() {
        return;
    }
    let mut list = whitelist(host, room, media);
    let before = list.len();
    list.retain(|j| j != target_jid);
    if list.len() == before {
        return;
    }
    put_whitelist(host, room, media, &list);
    notify_whitelist(host, ctx, room, Some(target_real), true, media, true);
}

#[cfg(test)]
mod tests {
    use lilt_plugin_sdk::hooks::MemoryHost;

    use super::*;

    const ROOM: &str = "r@conference.x";

    fn occupant(nick: &str, role: &str, affiliation: &str) -> Occupant {
        Occupant {
            nick: nick.into(),
            jid: format!("{nick}@x/res"),
            role: role.into(),
            affiliation: affiliation.into(),
        }
    }

    fn member(nick: &str) -> Occupant {
        occupant(nick, "participant", "none")
    }

    /// Every json-message sent, as (to, body).
    fn sent(host: &MemoryHost) -> Vec<(String, Value)> {
        host.take_sent()
            .iter()
            .map(|x| {
                let m = Element::parse(x).expect("xml");
                assert_eq!(m.attr("from"), Some("avmoderation.x"), "{x}");
                let body = m
                    .child("json-message", JITMEET)
                    .expect("json-message")
                    .text();
                (
                    m.attr("to").expect("to").to_owned(),
                    serde_json::from_str(&body).expect("json"),
                )
            })
            .collect()
    }

    fn to<'a>(msgs: &'a [(String, Value)], nick: &str) -> Vec<&'a Value> {
        let jid = format!("{nick}@x/res");
        msgs.iter()
            .filter(|(t, _)| *t == jid)
            .map(|(_, b)| b)
            .collect()
    }

    fn cmd(host: &MemoryHost, ctx: &Ctx<'_>, from: &str, attrs: &str) {
        let s = Element::parse(&format!(
            "<message xmlns='jabber:client' from='{from}@x/res' to='avmoderation.x'><av_moderation {attrs}/></message>"
        ))
        .expect("command");
        command(host, ctx, &s);
    }

    /// The focus (an owner) and alice join, then bob: alice is made owner by the focus's rule.
    fn room_of_three(host: &MemoryHost, ctx: &Ctx<'_>) {
        joined(host, ctx, ROOM, &occupant("focus", "moderator", "owner"));
        joined(host, ctx, ROOM, &member("alice"));
        joined(host, ctx, ROOM, &member("bob"));
        assert!(
            sent(host).is_empty(),
            "nothing to tell while moderation is off"
        );
    }

    #[test]
    fn enable_approve_reject_disable() {
        let host = MemoryHost::default();
        let settings = Settings::default();
        let ctx = Ctx {
            component: "avmoderation.x",
            settings: &settings,
        };
        room_of_three(&host, &ctx);

        // Bob is no moderator: refused, nothing sent, nothing stored.
        cmd(&host, &ctx, "bob", "enable='true' mediaType='audio'");
        assert!(sent(&host).is_empty());
        assert!(host.get(&format!("on|{ROOM}|audio")).is_none());

        // Alice (owner by the focus's rule) turns audio moderation on: every occupant (the
        // focus too) hears it with her as actor; moderators get the whitelist she is on.
        cmd(&host, &ctx, "alice", "enable='true' mediaType='audio'");
        let m = sent(&host);
        let on = json!({"type":"av_moderation","enabled":true,"room":ROOM,
            "actor":format!("{ROOM}/alice"),"mediaType":"audio"});
        for nick in ["focus", "alice", "bob"] {
            assert_eq!(to(&m, nick)[0], &on, "{nick}: {m:?}");
        }
        let lists = json!({"type":"av_moderation","room":ROOM,"mediaType":"audio",
            "whitelists":{"audio":[format!("{ROOM}/alice")]}});
        assert_eq!(to(&m, "alice")[1], &lists);
        assert_eq!(to(&m, "focus")[1], &lists);
        assert_eq!(to(&m, "bob").len(), 1, "bob gets no whitelist");
        assert_eq!(m.len(), 5);

        // Enabling again changes nothing.
        cmd(&host, &ctx, "alice", "enable='true' mediaType='audio'");
        assert!(sent(&host).is_empty());

        // Bob may not approve himself; a bad media type is refused.
        cmd(
            &host,
            &ctx,
            "bob",
            &format!("jidToWhitelist='{ROOM}/bob' mediaType='audio'"),
        );
        cmd(
            &host,
            &ctx,
            "alice",
            &format!("jidToWhitelist='{ROOM}/bob' mediaType='screen'"),
        );
        assert!(sent(&host).is_empty());

        // Alice approves Bob: moderators get the lists, Bob only `approved`.
        cmd(
            &host,
            &ctx,
            "alice",
            &format!("jidToWhitelist='{ROOM}/bob' mediaType='audio'"),
        );
        let m = sent(&host);
        assert_eq!(
            to(&m, "bob"),
            [&json!({"type":"av_moderation","room":ROOM,"mediaType":"audio","approved":true})]
        );
        let lists = json!({"type":"av_moderation","room":ROOM,"mediaType":"audio",
            "whitelists":{"audio":[format!("{ROOM}/alice"), format!("{ROOM}/bob")]}});
        assert_eq!(to(&m, "alice"), [&lists]);
        assert_eq!(to(&m, "focus"), [&lists]);

        // Alice rejects him: `removed`.
        cmd(
            &host,
            &ctx,
            "alice",
            &format!("jidToBlacklist='{ROOM}/bob' mediaType='audio'"),
        );
        let m = sent(&host);
        assert_eq!(
            to(&m, "bob"),
            [&json!({"type":"av_moderation","room":ROOM,"mediaType":"audio","removed":true})]
        );
        assert_eq!(
            to(&m, "alice"),
            [
                &json!({"type":"av_moderation","room":ROOM,"mediaType":"audio","removed":true,
                "whitelists":{"audio":[format!("{ROOM}/alice")]}})
            ]
        );
        // Rejecting someone not on the list says nothing.
        cmd(
            &host,
            &ctx,
            "alice",
            &format!("jidToBlacklist='{ROOM}/bob' mediaType='audio'"),
        );
        assert!(sent(&host).is_empty());

        // Video is not moderated: an approval is a request to unmute, to Bob only.
        cmd(
            &host,
            &ctx,
            "alice",
            &format!("jidToWhitelist='{ROOM}/bob' mediaType='video'"),
        );
        assert_eq!(
            sent(&host),
            [(
                "bob@x/res".to_owned(),
                json!({"type":"av_moderation","room":ROOM,"approved":true,"mediaType":"video",
                    "from":format!("{ROOM}/alice")})
            )]
        );

        // Off again: everyone hears it; the whitelist is gone.
        cmd(&host, &ctx, "alice", "enable='false' mediaType='audio'");
        let m = sent(&host);
        assert_eq!(m.len(), 3);
        assert_eq!(to(&m, "bob")[0]["enabled"], false);
        assert_eq!(to(&m, "bob")[0]["actor"], format!("{ROOM}/alice"));
        assert!(host.get(&format!("wl|{ROOM}|audio")).is_none());
        cmd(&host, &ctx, "alice", "enable='false' mediaType='audio'");
        assert!(sent(&host).is_empty(), "already off");
    }

    #[test]
    fn late_joiners_learn_the_state_and_moderators_the_lists() {
        let host = MemoryHost::default();
        let settings = Settings::default();
        let ctx = Ctx {
            component: "avmoderation.x",
            settings: &settings,
        };
        room_of_three(&host, &ctx);
        cmd(&host, &ctx, "alice", "enable='true' mediaType='video'");
        cmd(
            &host,
            &ctx,
            "alice",
            &format!("jidToWhitelist='{ROOM}/bob' mediaType='video'"),
        );
        sent(&host);

        // A participant joining learns what is on, and who turned it on; nothing else.
        joined(&host, &ctx, ROOM, &member("carol"));
        let m = sent(&host);
        assert_eq!(
            m,
            [(
                "carol@x/res".to_owned(),
                json!({"type":"av_moderation","enabled":true,"room":ROOM,
                    "actor":format!("{ROOM}/alice"),"mediaType":"video"})
            )]
        );

        // A moderator joining (an owner by affiliation) is whitelisted, and every moderator
        // gets the lists.
        joined(&host, &ctx, ROOM, &occupant("dave", "moderator", "owner"));
        let m = sent(&host);
        assert_eq!(to(&m, "dave")[0]["enabled"], true);
        let lists = json!({"type":"av_moderation","room":ROOM,"mediaType":"video",
            "whitelists":{"video":[format!("{ROOM}/alice"), format!("{ROOM}/bob"), format!("{ROOM}/dave")]}});
        assert_eq!(to(&m, "dave")[1], &lists);
        assert_eq!(to(&m, "alice"), [&lists]);
        assert!(to(&m, "carol").is_empty() && to(&m, "bob").is_empty());
    }

    #[test]
    fn the_next_participant_becomes_owner_when_the_owner_leaves() {
        let host = MemoryHost::default();
        let settings = Settings::default();
        let ctx = Ctx {
            component: "avmoderation.x",
            settings: &settings,
        };
        room_of_three(&host, &ctx);
        cmd(&host, &ctx, "alice", "enable='true' mediaType='audio'");
        sent(&host);
        left(&host, &ctx, ROOM, &member("alice"));
        // Bob is owner now (the focus's rule): whitelisted, and told as a moderator.
        let m = sent(&host);
        assert_eq!(
            to(&m, "bob"),
            [
                &json!({"type":"av_moderation","room":ROOM,"mediaType":"audio",
                "whitelists":{"audio":[format!("{ROOM}/alice"), format!("{ROOM}/bob")]}})
            ]
        );
        cmd(&host, &ctx, "bob", "enable='false' mediaType='audio'");
        assert_eq!(sent(&host).len(), 2, "focus and bob hear it off");
        // Alice, gone, may command nothing.
        cmd(&host, &ctx, "alice", "enable='true' mediaType='audio'");
        assert!(sent(&host).is_empty());
    }

    #[test]
    fn without_the_focus_rule_only_roles_count() {
        let host = MemoryHost::default();
        let settings = Settings {
            focus_grants_owner: false,
            ..Settings::default()
        };
        let ctx = Ctx {
            component: "avmoderation.x",
            settings: &settings,
        };
        room_of_three(&host, &ctx);
        cmd(&host, &ctx, "alice", "enable='true' mediaType='audio'");
        assert!(sent(&host).is_empty(), "alice is no moderator by role");
    }

    #[test]
    fn bounds_and_forgetting() {
        let host = MemoryHost::default();
        let settings = Settings {
            max_whitelist: 2,
            max_rooms: 1,
            ..Settings::default()
        };
        let ctx = Ctx {
            component: "avmoderation.x",
            settings: &settings,
        };
        room_of_three(&host, &ctx);
        joined(&host, &ctx, ROOM, &member("carol"));
        cmd(&host, &ctx, "alice", "enable='true' mediaType='audio'");
        cmd(
            &host,
            &ctx,
            "alice",
            &format!("jidToWhitelist='{ROOM}/bob' mediaType='audio'"),
        );
        sent(&host);
        // Full (alice, bob): carol is not added.
        cmd(
            &host,
            &ctx,
            "alice",
            &format!("jidToWhitelist='{ROOM}/carol' mediaType='audio'"),
        );
        assert!(sent(&host).is_empty());
        // Bob leaves: his entry gives way when the list is full.
        left(&host, &ctx, ROOM, &member("bob"));
        cmd(
            &host,
            &ctx,
            "alice",
            &format!("jidToWhitelist='{ROOM}/carol' mediaType='audio'"),
        );
        assert_eq!(
            whitelist(&host, ROOM, "audio"),
            [format!("{ROOM}/alice"), format!("{ROOM}/carol")]
        );
        sent(&host);

        // One room with moderation at most.
        let other = "s@conference.x";
        joined(&host, &ctx, other, &occupant("erin", "moderator", "owner"));
        cmd(&host, &ctx, "erin", "enable='true' mediaType='audio'");
        assert!(host.get(&format!("on|{other}|audio")).is_none());
        forget_room(&host, other);

        // A second media type in the same room is fine.
        cmd(&host, &ctx, "alice", "enable='true' mediaType='desktop'");
        assert!(host.get(&format!("on|{ROOM}|desktop")).is_some());

        // Settings are checked.
        assert!(
            Settings {
                max_whitelist: 0,
                ..Settings::default()
            }
            .check()
            .is_err()
        );
        assert!(lilt_plugin_sdk::parse_settings::<Settings>("{\"max_whitlist\":3}").is_err());

        // The room ends: nothing is left.
        forget_room(&host, ROOM);
        assert!(host.is_empty(), "{:?}", host.keys(""));
    }
}
