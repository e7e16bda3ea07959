//! A session's identity as its vhost's auth plugin decided it at login: which rooms it may
//! join and create, whether it moderates, and the user card relayed to rooms (Jitsi's token
//! `context`). The router keeps it on the session; the MUC enforces it at every join.
//!
//! Core (pure). Invariants: room names are compared lowercase; the presence element is
//! rebuilt by the server from this identity, never taken from the client (an `<identity/>` a
//! client sends itself is removed, so nobody can claim someone else's card).
//! Tests: `mod tests` below; muc/tests.rs for enforcement.

use crate::xml::{Element, ns};

/// The rooms a session may join.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RoomAccess {
    /// Any room.
    #[default]
    Any,
    /// Only these room names (local parts), lowercase.
    Only(Vec<String>),
}

/// Who the user is (Jitsi's `context.user`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserCard {
    /// A stable id.
    pub id: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Avatar URL.
    pub avatar: Option<String>,
}

/// A session's identity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// Which rooms it may join.
    pub rooms: RoomAccess,
    /// Whether its joins may create rooms.
    pub may_create_rooms: bool,
    /// Whether its joins get the `owner` affiliation.
    pub moderator: bool,
    /// The user card.
    pub user: Option<UserCard>,
    /// Its group (Jitsi's `context.group`).
    pub group: Option<String>,
    /// Anything else the plugin kept, as JSON (Jitsi's `context.features`).
    pub context_json: Option<String>,
}

/// The element name of the identity a room relays in presence (no namespace of its own: the
/// client looks it up by name).
pub const IDENTITY_ELEMENT: &str = "identity";

impl Identity {
    /// Whether it may join the room whose local part is `room`.
    pub fn may_join(&self, room: &str) -> bool {
        match &self.rooms {
            RoomAccess::Any => true,
            RoomAccess::Only(rooms) => {
                let room = room.to_lowercase();
                rooms.iter().any(|r| r == "*" || *r == room)
            }
        }
    }

    /// `<identity><user><id/><name/><email/><avatar/></user><group/></identity>`, as
    /// jitsi-meet's `mod_presence_identity` relays it; `None` without a card or group.
    pub fn presence_element(&self) -> Option<Element> {
        if self.user.is_none() && self.group.is_none() {
            return None;
        }
        let mut identity = Element::new(IDENTITY_ELEMENT, ns::CLIENT);
        if let Some(u) = &self.user {
            let mut user = Element::new("user", ns::CLIENT);
            for (name, value) in [
                ("id", &u.id),
                ("name", &u.name),
                ("email", &u.email),
                ("avatar", &u.avatar),
            ] {
                if let Some(v) = value {
                    let mut child = Element::new(name, ns::CLIENT);
                    child.append_text(v);
                    user.append_child(child);
                }
            }
            identity.append_child(user);
        }
        if let Some(g) = &self.group {
            let mut group = Element::new("group", ns::CLIENT);
            group.append_text(g);
            identity.append_child(group);
        }
        Some(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_access() {
        let any = Identity::default();
        assert!(any.may_join("anything"));
        let only = Identity {
            rooms: RoomAccess::Only(vec!["standup".into()]),
            ..Identity::default()
        };
        assert!(only.may_join("standup") && only.may_join("StandUp"));
        assert!(!only.may_join("standup2") && !only.may_join(""));
        let star = Identity {
            rooms: RoomAccess::Only(vec!["*".into()]),
            ..Identity::default()
        };
        assert!(star.may_join("x"));
        let none = Identity {
            rooms: RoomAccess::Only(Vec::new()),
            ..Identity::default()
        };
        assert!(!none.may_join("x"));
    }

    #[test]
    fn presence_element_is_jitsis_shape() {
        assert_eq!(Identity::default().presence_element(), None);
        let i = Identity {
            user: Some(UserCard {
                id: Some("u1".into()),
                name: Some("Ada <L>".into()),
                email: None,
                avatar: Some("https://a.example/a.png".into()),
            }),
            group: Some("g1".into()),
            ..Identity::default()
        };
        let el = i.presence_element().expect("element");
        let xml = el.to_string();
        assert!(
            xml.contains("<user><id>u1</id><name>Ada &lt;L&gt;</name><avatar>https://a.example/a.png</avatar></user><group>g1</group>"),
            "{xml}"
        );
    }
}
