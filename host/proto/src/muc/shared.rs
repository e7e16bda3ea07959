//! What the routing shards serving one MUC service share: how many rooms the service holds,
//! how many rooms each session and each user is in (the limits of muc/limits.rs count across
//! every shard), and the public room list that disco#items pages through.
//!
//! Core (no IO), part of the `muc` module. Each shard owns its rooms; this view is derived
//! from them and updated under one short lock at room creation and removal, join and leave,
//! and configuration — never per message. One service (one `MucConfig` as parsed) has one
//! view; every shard's copy of the config points at it. Invariants: the counts are the sums of
//! what the shards' rooms hold; empty entries are removed. Tests: muc/tests.rs,
//! router/tests.rs (two shards).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::stanza::Jid;

/// The service-wide view (see the module docs).
#[derive(Default)]
pub struct ServiceView {
    inner: Mutex<View>,
}

#[derive(Default)]
struct View {
    rooms: usize,
    sessions: HashMap<Jid, u32>,
    users: HashMap<Jid, u32>,
    /// Public rooms by node, with their names.
    public: BTreeMap<String, String>,
}

impl std::fmt::Debug for ServiceView {
    // Runtime state: a config's Debug form (compared on reload) must not show it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceView")
    }
}

fn bump(map: &mut HashMap<Jid, u32>, key: Jid, up: bool) {
    if up {
        *map.entry(key).or_default() += 1;
    } else if let Some(n) = map.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&key);
        }
    }
}

impl ServiceView {
    fn lock(&self) -> MutexGuard<'_, View> {
        // The view holds plain counts: a shard that panicked mid-update leaves them usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rooms the service holds, over every shard.
    pub(super) fn rooms(&self) -> usize {
        self.lock().rooms
    }

    /// A room was created (`true`) or removed.
    pub(super) fn room(&self, created: bool) {
        let mut v = self.lock();
        v.rooms = if created {
            v.rooms + 1
        } else {
            v.rooms.saturating_sub(1)
        };
    }

    /// `real` became (`true`) or stopped being an occupant of one room.
    pub(super) fn occupancy(&self, real: &Jid, joined: bool) {
        let mut v = self.lock();
        bump(&mut v.sessions, real.clone(), joined);
        bump(&mut v.users, real.bare(), joined);
    }

    /// Rooms the session `real` is in.
    pub(super) fn session_count(&self, real: &Jid) -> usize {
        self.lock().sessions.get(real).map_or(0, |n| *n as usize)
    }

    /// Occupancies the user `bare` holds.
    pub(super) fn user_count(&self, bare: &Jid) -> usize {
        self.lock().users.get(bare).map_or(0, |n| *n as usize)
    }

    /// Room `key` is public under `name`, or (`None`) not listed.
    pub(super) fn set_public(&self, key: &str, name: Option<&str>) {
        let mut v = self.lock();
        match name {
            Some(name) => {
                v.public.insert(key.to_owned(), name.to_owned());
            }
            None => {
                v.public.remove(key);
            }
        }
    }

    /// The public rooms, by node, with their names.
    pub(super) fn public(&self) -> BTreeMap<String, String> {
        self.lock().public.clone()
    }
}
