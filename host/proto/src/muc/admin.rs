//! The MUC iqs that are not routing: service and room disco (XEP-0030, with Jitsi's meeting id
//! and creation timestamp), the owner's configuration form and room destruction (muc#owner),
//! and role and affiliation changes (muc#admin: kick, grant/revoke moderator, ban).
//!
//! Core (sans-IO), part of the `muc` module. Invariants: only owners configure or destroy,
//! and only service admins change whether a room is persistent; only moderators change roles,
//! and nobody below admin touches an admin's or owner's role; the last owner cannot be
//! demoted; the service's disco#items answers one page (muc/limits.rs). Tests: muc/tests.rs.

use super::{Affiliation, MucService, Occupant, Role, Room, Routed, err};
use super::{limits, notify};
use crate::hooks::{Extensions, HookKind, MucEvent};
use crate::stanza::{self, Condition, ErrorType, Jid, Shared, StanzaError};
use crate::xml::{Element, ns};

fn feature(var: &str) -> Element {
    Element::builder("feature", ns::DISCO_INFO)
        .attr("var", var)
        .build()
}

fn field(var: &str, kind: &str, label: Option<&str>, values: &[&str]) -> Element {
    let mut f = Element::builder("field", ns::DATA)
        .attr("var", var)
        .attr("type", kind)
        .build();
    if let Some(label) = label {
        f.set_attr("label", label);
    }
    for v in values {
        let mut value = Element::new("value", ns::DATA);
        value.append_text(v);
        f.append_child(value);
    }
    f
}

fn bool_str(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

/// Iqs to the service's own domain: disco#info/#items and ping.
pub(super) fn service_iq(service: &MucService, iq: &Element) -> Result<Element, StanzaError> {
    let payload = iq
        .children()
        .next()
        .ok_or_else(|| err(ErrorType::Modify, Condition::BadRequest))?;
    let mut reply = stanza::iq_result(iq);
    match (iq.attr("type"), payload.name(), payload.ns()) {
        (Some("get"), "query", ns::DISCO_INFO) => {
            let mut q = Element::new("query", ns::DISCO_INFO);
            q.append_child(
                Element::builder("identity", ns::DISCO_INFO)
                    .attr("category", "conference")
                    .attr("type", "text")
                    .attr("name", "Chatrooms")
                    .build(),
            );
            for f in [ns::DISCO_INFO, ns::DISCO_ITEMS, ns::MUC, ns::PING] {
                q.append_child(feature(f));
            }
            reply.append_child(q);
        }
        (Some("get"), "query", ns::DISCO_ITEMS) => {
            // XEP-0059 paging over the public rooms in node order; never the whole list at
            // once.
            let public = service.config.view.public();
            let (keys, first, paged) = limits::page(
                &public,
                payload,
                &service.config.domain,
                service.config.limits.disco_items_page,
            )?;
            let mut q = Element::new("query", ns::DISCO_ITEMS);
            let mut ids = Vec::with_capacity(keys.len());
            for key in keys {
                let jid = format!("{key}@{}", service.config.domain);
                let name = public.get(key).cloned().unwrap_or_default();
                q.append_child(
                    Element::builder("item", ns::DISCO_ITEMS)
                        .attr("jid", jid.clone())
                        .attr("name", name)
                        .build(),
                );
                ids.push(jid);
            }
            if paged {
                q.append_child(limits::set_element(&ids, first, public.len()));
            }
            reply.append_child(q);
        }
        (Some("get"), "ping", ns::PING) => {}
        _ => return Err(StanzaError::service_unavailable()),
    }
    Ok(reply)
}

/// Iqs to a room's bare JID.
pub(super) fn room_iq(
    service: &mut MucService,
    key: &str,
    iq: &Element,
    from: &Jid,
    ext: &dyn Extensions,
    out: &mut Vec<Routed>,
) -> Result<(), StanzaError> {
    let Some(payload) = iq.children().next().cloned() else {
        return Err(err(ErrorType::Modify, Condition::BadRequest));
    };
    let set = iq.attr("type") == Some("set");
    let is_admin = service.config.admins.contains(&from.bare());
    let Some(room) = service.rooms.get_mut(key) else {
        return Ok(());
    };
    let affiliation = if is_admin {
        Affiliation::Owner
    } else {
        room.affiliation(from)
    };
    let mut reply = stanza::iq_result(iq);
    match (set, payload.name(), payload.ns()) {
        (false, "query", ns::DISCO_INFO) => reply.append_child(disco_info(room)),
        (false, "query", ns::DISCO_ITEMS) => {
            reply.append_child(Element::new("query", ns::DISCO_ITEMS))
        }
        (false, "ping", ns::PING) => &mut reply,
        (_, "query", ns::MUC_OWNER) => {
            if affiliation != Affiliation::Owner {
                return Err(err(ErrorType::Auth, Condition::Forbidden)
                    .with_text("Only owners configure the room."));
            }
            if !set {
                reply.append_child(owner_form(room));
            } else if let Some(destroy) = payload.get_child("destroy", ns::MUC_OWNER) {
                let destroy = destroy.clone();
                let info = room.info();
                destroy_room(room, &destroy, out);
                let vhost = service.config.vhost.clone();
                service.drop_room(key);
                tracing::info!(target: "audit", event = "room_destroyed", vhost = %vhost, room = %info.jid, meeting_id = %info.meeting_id);
                notify(ext, &vhost, out, HookKind::RoomDestroyed, || {
                    MucEvent::RoomDestroyed(info)
                });
            } else if let Some(x) = payload.get_child("x", ns::DATA) {
                if x.attr("type") == Some("submit") {
                    apply_form(room, x, is_admin)?;
                    let listed = room.config.public.then_some(room.config.name.as_str());
                    service.config.view.set_public(key, listed);
                    announce_config_change(room, out);
                }
                room.locked = false;
            } else {
                return Err(err(ErrorType::Modify, Condition::BadRequest));
            }
            &mut reply
        }
        (false, "query", ns::MUC_ADMIN) => {
            if room.occupant_role(from) < Role::Moderator && affiliation < Affiliation::Admin {
                return Err(err(ErrorType::Auth, Condition::Forbidden));
            }
            reply.append_child(admin_list(room, &payload)?)
        }
        (true, "query", ns::MUC_ADMIN) => {
            let mut removed = Vec::new();
            let mut result = Ok(());
            for item in payload.children().filter(|c| c.is("item", ns::MUC_ADMIN)) {
                result = admin_item(room, from, affiliation, item, &mut removed, out);
                if result.is_err() {
                    break;
                }
            }
            let vhost = service.config.vhost.clone();
            let any_removed = !removed.is_empty();
            for o in removed {
                service.members.remove(&o.real, key);
                notify(ext, &vhost, out, HookKind::OccupantLeft, || {
                    MucEvent::OccupantLeft {
                        room: room.info(),
                        occupant: room.occupant_info(&o),
                        presence: o.presence,
                    }
                });
            }
            if any_removed
                && room.occupants.is_empty()
                && service.config.destroy_when_empty
                && !room.config.persistent
            {
                let info = room.info();
                service.drop_room(key);
                tracing::info!(target: "audit", event = "room_destroyed", vhost = %vhost, room = %info.jid, meeting_id = %info.meeting_id);
                notify(ext, &vhost, out, HookKind::RoomDestroyed, || {
                    MucEvent::RoomDestroyed(info)
                });
            }
            result?;
            &mut reply
        }
        _ => return Err(StanzaError::service_unavailable()),
    };
    out.push(Routed::Stanza(reply));
    Ok(())
}

fn disco_info(room: &Room) -> Element {
    let mut q = Element::new("query", ns::DISCO_INFO);
    q.append_child(
        Element::builder("identity", ns::DISCO_INFO)
            .attr("category", "conference")
            .attr("type", "text")
            .attr("name", room.config.name.clone())
            .build(),
    );
    let c = &room.config;
    for f in [
        ns::MUC,
        if c.password.is_some() {
            "muc_passwordprotected"
        } else {
            "muc_unsecured"
        },
        if c.members_only {
            "muc_membersonly"
        } else {
            "muc_open"
        },
        if c.moderated {
            "muc_moderated"
        } else {
            "muc_unmoderated"
        },
        if c.persistent {
            "muc_persistent"
        } else {
            "muc_temporary"
        },
        if c.public { "muc_public" } else { "muc_hidden" },
        "muc_nonanonymous",
    ] {
        q.append_child(feature(f));
    }
    let mut x = Element::builder("x", ns::DATA)
        .attr("type", "result")
        .build();
    let occupants = room.occupants.len().to_string();
    let created = room.created_ms.to_string();
    x.append_child(field(
        "FORM_TYPE",
        "hidden",
        None,
        &["http://jabber.org/protocol/muc#roominfo"],
    ));
    x.append_child(field(
        "muc#roominfo_meetingId",
        "text-single",
        Some("The meeting unique id."),
        &[&room.meeting_id],
    ));
    x.append_child(field(
        "muc#roominfo_created_timestamp",
        "text-single",
        None,
        &[&created],
    ));
    x.append_child(field(
        "muc#roominfo_occupants",
        "text-single",
        Some("Number of occupants"),
        &[&occupants],
    ));
    x.append_child(field(
        "muc#roominfo_subject",
        "text-single",
        None,
        &[room.subject.as_ref().map(|(_, s)| s.as_str()).unwrap_or("")],
    ));
    q.append_child(x);
    q
}

fn owner_form(room: &Room) -> Element {
    let c = &room.config;
    let mut x = Element::builder("x", ns::DATA).attr("type", "form").build();
    let max = c.max_occupants.to_string();
    for f in [
        field(
            "FORM_TYPE",
            "hidden",
            None,
            &["http://jabber.org/protocol/muc#roomconfig"],
        ),
        field(
            "muc#roomconfig_roomname",
            "text-single",
            Some("Name"),
            &[&c.name],
        ),
        field(
            "muc#roomconfig_persistentroom",
            "boolean",
            Some("Persistent"),
            &[bool_str(c.persistent)],
        ),
        field(
            "muc#roomconfig_publicroom",
            "boolean",
            Some("Listed"),
            &[bool_str(c.public)],
        ),
        field(
            "muc#roomconfig_membersonly",
            "boolean",
            Some("Members only"),
            &[bool_str(c.members_only)],
        ),
        field(
            "muc#roomconfig_moderatedroom",
            "boolean",
            Some("Moderated"),
            &[bool_str(c.moderated)],
        ),
        field(
            "muc#roomconfig_passwordprotectedroom",
            "boolean",
            Some("Password protected"),
            &[bool_str(c.password.is_some())],
        ),
        field(
            "muc#roomconfig_roomsecret",
            "text-private",
            Some("Password"),
            &[c.password.as_deref().unwrap_or("")],
        ),
        field(
            "muc#roomconfig_maxusers",
            "text-single",
            Some("Maximum occupants (0: no limit)"),
            &[&max],
        ),
        field(
            "muc#roomconfig_whois",
            "list-single",
            Some("Who may see real JIDs"),
            &["anyone"],
        ),
        field(
            "muc#roomconfig_changesubject",
            "boolean",
            Some("Occupants may change the subject"),
            &[bool_str(c.change_subject)],
        ),
    ] {
        x.append_child(f);
    }
    let mut q = Element::new("query", ns::MUC_OWNER);
    q.append_child(x);
    q
}

fn parse_bool(v: &str) -> Result<bool, StanzaError> {
    match v {
        "1" | "true" => Ok(true),
        "0" | "false" | "" => Ok(false),
        _ => Err(err(ErrorType::Modify, Condition::NotAcceptable)
            .with_text(format!("{v:?} is not a boolean."))),
    }
}

/// Apply a submitted muc#roomconfig form; nothing changes unless every field is valid.
/// Only service admins change whether a room is persistent (a persistent room outlives its
/// occupants, so it is the service's memory the owner would be spending).
fn apply_form(room: &mut Room, x: &Element, service_admin: bool) -> Result<(), StanzaError> {
    let mut c = room.config.clone();
    let mut protect = None;
    for f in x.children().filter(|f| f.is("field", ns::DATA)) {
        let value = f
            .get_child("value", ns::DATA)
            .map(Element::text)
            .unwrap_or_default();
        match f.attr("var").unwrap_or("") {
            "muc#roomconfig_roomname" => c.name = value,
            "muc#roomconfig_persistentroom" => c.persistent = parse_bool(&value)?,
            "muc#roomconfig_publicroom" => c.public = parse_bool(&value)?,
            "muc#roomconfig_membersonly" => c.members_only = parse_bool(&value)?,
            "muc#roomconfig_moderatedroom" => c.moderated = parse_bool(&value)?,
            "muc#roomconfig_changesubject" => c.change_subject = parse_bool(&value)?,
            "muc#roomconfig_passwordprotectedroom" => protect = Some(parse_bool(&value)?),
            "muc#roomconfig_roomsecret" => {
                c.password = Some(value).filter(|v| !v.is_empty());
            }
            "muc#roomconfig_maxusers" => {
                c.max_occupants = match value.as_str() {
                    "" | "none" => 0,
                    v => v.parse().map_err(|_| {
                        err(ErrorType::Modify, Condition::NotAcceptable)
                            .with_text("muc#roomconfig_maxusers must be a number.")
                    })?,
                };
            }
            "muc#roomconfig_whois" if value != "anyone" => {
                return Err(err(ErrorType::Modify, Condition::NotAcceptable)
                    .with_text("Rooms here are non-anonymous (whois=anyone), as Jitsi requires."));
            }
            _ => {}
        }
    }
    if c.persistent != room.config.persistent && !service_admin {
        return Err(err(ErrorType::Auth, Condition::Forbidden)
            .with_text("Only the service's admins make a room persistent or temporary."));
    }
    match protect {
        Some(true) if c.password.is_none() => {
            return Err(err(ErrorType::Modify, Condition::NotAcceptable)
                .with_text("A password-protected room needs muc#roomconfig_roomsecret."));
        }
        Some(false) => c.password = None,
        _ => {}
    }
    let moderated_changed = c.moderated != room.config.moderated;
    room.config = c;
    if moderated_changed {
        // Roles follow the new setting for occupants without an affiliation of their own.
        for i in 0..room.occupants.len() {
            let aff = room.affiliation(&room.occupants[i].real);
            if aff < Affiliation::Admin && room.occupants[i].role != Role::Moderator {
                room.occupants[i].role = room.default_role(aff);
            }
        }
    }
    Ok(())
}

/// Status 104: the configuration changed (lib-jitsi-meet re-reads disco#info on it).
fn announce_config_change(room: &Room, out: &mut Vec<Routed>) {
    let mut msg = Element::builder("message", ns::CLIENT)
        .attr("type", "groupchat")
        .attr("from", room.jid.to_string())
        .build();
    let mut x = Element::new("x", ns::MUC_USER);
    x.append_child(
        Element::builder("status", ns::MUC_USER)
            .attr("code", "104")
            .build(),
    );
    msg.append_child(x);
    let all: Vec<Jid> = room.occupants.iter().map(|o| o.real.clone()).collect();
    if !all.is_empty() {
        out.push(Routed::Fanout(Shared::new(msg), all));
    }
}

fn destroy_room(room: &Room, destroy: &Element, out: &mut Vec<Routed>) {
    for o in &room.occupants {
        let mut p = Element::builder("presence", ns::CLIENT)
            .attr("type", "unavailable")
            .attr("from", room.occupant_jid(&o.nick))
            .attr("to", o.real.to_string())
            .build();
        let mut x = Element::new("x", ns::MUC_USER);
        x.append_child(
            Element::builder("item", ns::MUC_USER)
                .attr("affiliation", "none")
                .attr("role", "none")
                .build(),
        );
        let mut d = destroy.clone();
        d.set_ns_recursive(ns::MUC_OWNER, ns::MUC_USER);
        x.append_child(d);
        x.append_child(
            Element::builder("status", ns::MUC_USER)
                .attr("code", "110")
                .build(),
        );
        p.append_child(x);
        out.push(Routed::Stanza(p));
    }
}

fn admin_list(room: &Room, query: &Element) -> Result<Element, StanzaError> {
    let item = query
        .get_child("item", ns::MUC_ADMIN)
        .ok_or_else(|| err(ErrorType::Modify, Condition::BadRequest))?;
    let mut q = Element::new("query", ns::MUC_ADMIN);
    if let Some(a) = item.attr("affiliation") {
        let a =
            Affiliation::parse(a).ok_or_else(|| err(ErrorType::Modify, Condition::BadRequest))?;
        let mut jids: Vec<String> = room
            .affiliations
            .iter()
            .filter(|(_, x)| **x == a)
            .map(|(j, _)| j.to_string())
            .collect();
        jids.sort();
        for j in jids {
            q.append_child(
                Element::builder("item", ns::MUC_ADMIN)
                    .attr("jid", j)
                    .attr("affiliation", a.as_str())
                    .build(),
            );
        }
    } else if let Some(r) = item.attr("role") {
        let r = Role::parse(r).ok_or_else(|| err(ErrorType::Modify, Condition::BadRequest))?;
        for o in room.occupants.iter().filter(|o| o.role == r) {
            q.append_child(
                Element::builder("item", ns::MUC_ADMIN)
                    .attr("nick", o.nick.clone())
                    .attr("jid", o.real.to_string())
                    .attr("role", r.as_str())
                    .attr("affiliation", room.affiliation(&o.real).as_str())
                    .build(),
            );
        }
    } else {
        return Err(err(ErrorType::Modify, Condition::BadRequest));
    }
    Ok(q)
}

impl Room {
    fn occupant_role(&self, real: &Jid) -> Role {
        self.occupants
            .iter()
            .find(|o| &o.real == real)
            .map_or(Role::None, |o| o.role)
    }
}

/// One `<item/>` of a muc#admin set.
fn admin_item(
    room: &mut Room,
    actor: &Jid,
    actor_aff: Affiliation,
    item: &Element,
    removed: &mut Vec<Occupant>,
    out: &mut Vec<Routed>,
) -> Result<(), StanzaError> {
    let actor_role = room.occupant_role(actor);
    let forbidden =
        |text: &str| err(ErrorType::Auth, Condition::Forbidden).with_text(text.to_owned());
    let by_nick = item
        .attr("nick")
        .and_then(|n| room.occupants.iter().position(|o| o.nick == n));
    if let Some(aff) = item.attr("affiliation") {
        let new =
            Affiliation::parse(aff).ok_or_else(|| err(ErrorType::Modify, Condition::BadRequest))?;
        let target: Jid = match (item.attr("jid"), by_nick) {
            (Some(j), _) => Jid::parse(j)
                .map_err(|_| err(ErrorType::Modify, Condition::JidMalformed))?
                .bare(),
            (None, Some(i)) => room.occupants[i].real.bare(),
            (None, None) => {
                return Err(
                    err(ErrorType::Cancel, Condition::ItemNotFound).with_text("No such occupant.")
                );
            }
        };
        let current = room
            .affiliations
            .get(&target)
            .copied()
            .unwrap_or(Affiliation::None);
        let needs_owner = new >= Affiliation::Admin || current >= Affiliation::Admin;
        if actor_aff < Affiliation::Admin || (needs_owner && actor_aff != Affiliation::Owner) {
            return Err(forbidden("Your affiliation does not allow this change."));
        }
        let owners = room
            .affiliations
            .values()
            .filter(|a| **a == Affiliation::Owner)
            .count();
        if current == Affiliation::Owner && new != Affiliation::Owner && owners == 1 {
            return Err(err(ErrorType::Cancel, Condition::Conflict)
                .with_text("A room keeps at least one owner."));
        }
        if new == Affiliation::None {
            room.affiliations.remove(&target);
        } else {
            room.affiliations.insert(target.clone(), new);
        }
        // Occupants of that account: re-announce with their new role, or remove if banned.
        let mut i = 0;
        while i < room.occupants.len() {
            if room.occupants[i].real.bare() != target {
                i += 1;
                continue;
            }
            if new == Affiliation::Outcast {
                removed.push(remove_occupant(room, i, "301", out));
                continue;
            }
            room.occupants[i].role = room.default_role(new);
            room.broadcast_presence(i, &[], out);
            i += 1;
        }
        return Ok(());
    }
    let role = item
        .attr("role")
        .and_then(Role::parse)
        .ok_or_else(|| err(ErrorType::Modify, Condition::BadRequest))?;
    let Some(i) = by_nick else {
        return Err(err(ErrorType::Cancel, Condition::ItemNotFound).with_text("No such occupant."));
    };
    if actor_role < Role::Moderator && actor_aff < Affiliation::Admin {
        return Err(forbidden("Only moderators change roles."));
    }
    let target_aff = room.affiliation(&room.occupants[i].real);
    let current = room.occupants[i].role;
    if target_aff >= Affiliation::Admin && role < Role::Moderator {
        return Err(err(ErrorType::Cancel, Condition::NotAllowed)
            .with_text("Admins and owners keep their moderator role."));
    }
    let touches_moderator = role == Role::Moderator || current == Role::Moderator;
    if touches_moderator && actor_aff < Affiliation::Admin {
        return Err(forbidden(
            "Only admins and owners grant or revoke moderator.",
        ));
    }
    if role == Role::None {
        removed.push(remove_occupant(room, i, "307", out));
    } else {
        room.occupants[i].role = role;
        room.broadcast_presence(i, &[], out);
    }
    Ok(())
}

/// Remove occupant `i` with status `code` (307 kicked, 301 banned).
fn remove_occupant(room: &mut Room, i: usize, code: &str, out: &mut Vec<Routed>) -> Occupant {
    let mut occupant = room.occupants[i].clone();
    occupant.role = Role::None;
    let unavailable = Element::builder("presence", ns::CLIENT)
        .attr("type", "unavailable")
        .build();
    let mut p = room.presence_with(&occupant, unavailable, &[code]);
    if let Some(item) = p
        .get_child_mut("x", ns::MUC_USER)
        .and_then(|x| x.get_child_mut("item", ns::MUC_USER))
    {
        item.set_attr("nick", occupant.nick.clone());
    }
    room.fanout_with_self(&p, i, &["110"], out);
    room.occupants.remove(i)
}
