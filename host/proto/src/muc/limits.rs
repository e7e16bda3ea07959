//! What bounds a MUC service's memory and work: the configured limits (`MucLimits`), the
//! membership index (which rooms each session is in, how many each user is in) that the
//! join limits read and that lets a session's end touch only its own rooms, and XEP-0059
//! result set paging of the service's public room list.
//!
//! Core (sans-IO), part of the `muc` module. Invariants: `Membership` holds `(session, room)`
//! exactly when that session is an occupant of that room, and a user's count is the number of
//! such pairs of its sessions; empty entries are removed. A page never holds more than the
//! configured page size. Tests: muc/tests.rs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::err;
use super::shared::ServiceView;
use crate::stanza::{Condition, ErrorType, Jid, StanzaError};
use crate::xml::{Element, ns};

/// XEP-0059: result set management.
pub(super) const RSM: &str = "http://jabber.org/protocol/rsm";

/// The bounds of one MUC service (`[vhosts.muc]`). Service admins (and the focus) are not
/// held to the per-session and per-user room counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MucLimits {
    /// Rooms one session (full JID) may be in at once, parked joins included.
    pub max_rooms_per_session: u32,
    /// Room occupancies one user (bare JID) may hold across all its sessions.
    pub max_rooms_per_user: u32,
    /// Rooms the service holds at once; creating one more is refused.
    pub max_rooms: u32,
    /// Bytes of the serialized presence a room keeps for one occupant.
    pub max_presence_bytes: u32,
    /// Public rooms per disco#items answer when the client asks no `max` (and the most it
    /// gets when it asks more).
    pub disco_items_page: u32,
}

impl Default for MucLimits {
    fn default() -> Self {
        MucLimits {
            max_rooms_per_session: 32,
            max_rooms_per_user: 64,
            max_rooms: 10_000,
            max_presence_bytes: 16 * 1024,
            disco_items_page: 100,
        }
    }
}

/// Which rooms of this shard each session is in, and how many occupancies each user holds
/// here; the counts across every shard (what the limits read) are kept in the service's
/// `ServiceView` alongside.
#[derive(Debug)]
pub(super) struct Membership {
    by_session: HashMap<Jid, HashSet<String>>,
    by_user: HashMap<Jid, u32>,
    view: Arc<ServiceView>,
}

impl Membership {
    pub(super) fn new(view: Arc<ServiceView>) -> Membership {
        Membership {
            by_session: HashMap::new(),
            by_user: HashMap::new(),
            view,
        }
    }

    /// `real` became an occupant of room `key`.
    pub(super) fn add(&mut self, real: &Jid, key: &str) {
        if self
            .by_session
            .entry(real.clone())
            .or_default()
            .insert(key.to_owned())
        {
            *self.by_user.entry(real.bare()).or_default() += 1;
            self.view.occupancy(real, true);
        }
    }

    /// `real` is no longer an occupant of room `key`.
    pub(super) fn remove(&mut self, real: &Jid, key: &str) {
        let Some(rooms) = self.by_session.get_mut(real) else {
            return;
        };
        if !rooms.remove(key) {
            return;
        }
        self.view.occupancy(real, false);
        if rooms.is_empty() {
            self.by_session.remove(real);
        }
        let bare = real.bare();
        if let Some(n) = self.by_user.get_mut(&bare) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_user.remove(&bare);
            }
        }
    }

    /// The rooms `real` is in.
    pub(super) fn rooms_of(&self, real: &Jid) -> Vec<String> {
        self.by_session
            .get(real)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many rooms the session `real` is in, over every shard.
    pub(super) fn session_count(&self, real: &Jid) -> usize {
        self.view.session_count(real)
    }

    /// How many occupancies the user `bare` holds, over every shard.
    pub(super) fn user_count(&self, bare: &Jid) -> usize {
        self.view.user_count(bare)
    }

    /// Every `(session, room)` pair, for consistency checks.
    #[cfg(test)]
    pub(super) fn pairs(&self) -> std::collections::BTreeSet<(String, String)> {
        self.by_session
            .iter()
            .flat_map(|(j, rooms)| rooms.iter().map(move |k| (j.to_string(), k.clone())))
            .collect()
    }

    /// Every user's count, for consistency checks.
    #[cfg(test)]
    pub(super) fn users(&self) -> std::collections::BTreeMap<String, u32> {
        self.by_user
            .iter()
            .map(|(j, n)| (j.to_string(), *n))
            .collect()
    }
}

/// Refuse a join when `real` (not a service admin) would be in more rooms than allowed;
/// `parked` is how many of its joins wait for a plugin's verdict.
pub(super) fn check_join(
    limits: &MucLimits,
    members: &Membership,
    real: &Jid,
    parked: usize,
) -> Result<(), StanzaError> {
    let session = members.session_count(real) + parked;
    if session >= limits.max_rooms_per_session as usize {
        return Err(
            err(ErrorType::Modify, Condition::PolicyViolation).with_text(format!(
                "This session is in too many rooms (at most {}); leave one first.",
                limits.max_rooms_per_session
            )),
        );
    }
    if members.user_count(&real.bare()) + parked >= limits.max_rooms_per_user as usize {
        return Err(err(ErrorType::Modify, Condition::PolicyViolation).with_text(format!(
            "This account is in too many rooms (at most {} across its sessions); leave one first.",
            limits.max_rooms_per_user
        )));
    }
    Ok(())
}

/// Refuse a new room when the service holds `rooms` already.
pub(super) fn check_create(limits: &MucLimits, rooms: usize) -> Result<(), StanzaError> {
    if rooms >= limits.max_rooms as usize {
        return Err(
            err(ErrorType::Wait, Condition::ResourceConstraint).with_text(format!(
                "This service holds as many rooms as it may ({}); try again later.",
                limits.max_rooms
            )),
        );
    }
    Ok(())
}

/// Refuse a presence whose stored payload would exceed the limit.
pub(super) fn check_presence(limits: &MucLimits, payload: &Element) -> Result<(), StanzaError> {
    let mut bytes = Vec::new();
    payload.write_to(&mut bytes, ns::CLIENT);
    if bytes.len() > limits.max_presence_bytes as usize {
        return Err(
            err(ErrorType::Modify, Condition::PolicyViolation).with_text(format!(
                "The presence is too large for the room ({} bytes; at most {}).",
                bytes.len(),
                limits.max_presence_bytes
            )),
        );
    }
    Ok(())
}

/// One page of `public` (room nodes in order) as the XEP-0059 `<set/>` in `query` asks.
/// Returns the page's nodes, the index of its first in the whole list, and whether the
/// answer must carry a `<set/>` (the client asked for paging, or the list did not fit).
pub(super) fn page<'a>(
    public: &'a BTreeMap<String, String>,
    query: &Element,
    domain: &str,
    page_size: u32,
) -> Result<(Vec<&'a String>, usize, bool), StanzaError> {
    let set = query.get_child("set", RSM);
    let bad = |text: &str| err(ErrorType::Modify, Condition::BadRequest).with_text(text.to_owned());
    let page_size = page_size.max(1) as usize;
    let max = match set.and_then(|s| s.get_child("max", RSM)) {
        Some(m) => m
            .text()
            .trim()
            .parse::<usize>()
            .map_err(|_| bad("<max/> must be a number."))?
            .min(page_size),
        None => page_size,
    };
    // An item id is a room JID of this service; paging continues from where it would be
    // in the order even when that room is gone meanwhile.
    let node_of = |id: &str| -> Result<String, StanzaError> {
        Jid::parse(id.trim())
            .ok()
            .filter(|j| j.domain() == domain && j.resource().is_none())
            .and_then(|j| j.node().map(str::to_owned))
            .ok_or_else(|| {
                err(ErrorType::Cancel, Condition::ItemNotFound)
                    .with_text("That is not a room of this service.")
            })
    };
    let after = set.and_then(|s| s.get_child("after", RSM));
    let before = set.and_then(|s| s.get_child("before", RSM));
    let index = set.and_then(|s| s.get_child("index", RSM));
    let (items, first): (Vec<&String>, usize) = match (after, before, index) {
        (Some(a), _, _) => {
            let from = node_of(&a.text())?;
            let skipped = public.range(..=from.clone()).count();
            let items = public
                .range::<String, _>((std::ops::Bound::Excluded(from), std::ops::Bound::Unbounded))
                .map(|(k, _)| k)
                .take(max)
                .collect();
            (items, skipped)
        }
        (None, Some(b), _) => {
            let text = b.text();
            let mut items: Vec<&String> = if text.trim().is_empty() {
                public.keys().rev().take(max).collect()
            } else {
                let to = node_of(&text)?;
                public.range(..to).map(|(k, _)| k).rev().take(max).collect()
            };
            items.reverse();
            let first = match items.first() {
                Some(k) => public.range(..(*k).clone()).count(),
                None => 0,
            };
            (items, first)
        }
        (None, None, Some(i)) => {
            let skip = i
                .text()
                .trim()
                .parse::<usize>()
                .map_err(|_| bad("<index/> must be a number."))?;
            (public.keys().skip(skip).take(max).collect(), skip)
        }
        (None, None, None) => (public.keys().take(max).collect(), 0),
    };
    let paged = set.is_some() || items.len() < public.len();
    Ok((items, first, paged))
}

/// The `<set/>` of an answer: first (with its index) and last of the page, and the count.
pub(super) fn set_element(items: &[String], first: usize, count: usize) -> Element {
    let mut set = Element::new("set", RSM);
    if let (Some(f), Some(l)) = (items.first(), items.last()) {
        let mut el = Element::builder("first", RSM)
            .attr("index", first.to_string())
            .build();
        el.append_text(f);
        set.append_child(el);
        let mut el = Element::new("last", RSM);
        el.append_text(l);
        set.append_child(el);
    }
    let mut c = Element::new("count", RSM);
    c.append_text(&count.to_string());
    set.append_child(c);
    set
}
