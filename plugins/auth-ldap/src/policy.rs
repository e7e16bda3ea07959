//! The policy of auth-ldap, over any [`Directory`] (the host's `ldap` import in the plugin, a
//! fake in the tests): settings, finding a user's DN, checking a password by binding as it,
//! and the identity (moderator and room-creator group membership, display name).
//!
//! Pure (all I/O through `Directory`). Invariants: a username reaches a DN only through
//! `escape_dn_value` and a filter only through `escape_filter_value`; a username that is
//! empty, too long or has control characters never reaches the directory; a directory that is
//! unreachable or refuses a request is an error (the login fails closed with
//! `temporary-auth-failure`), never a "no"/"not a member" that would change who gets in or
//! who moderates.
//! Tests: `mod tests` below (fake directory); tests/all/ldap.rs against a real slapd.

use lilt_plugin_sdk::ldap::{escape_dn_value, escape_filter_value};
use lilt_plugin_sdk::{Directory, Identity, LdapError, RoomAccess, Scope, UserCard};
use serde::Deserialize;

/// Longest username looked up.
const MAX_USERNAME: usize = 256;

/// The plugin's settings (`[vhosts.auth] settings`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// A user's DN, with `{user}` standing for the (DN-escaped) username: direct bind.
    pub user_dn_template: Option<String>,
    /// Where and how to find a user's entry with the service account: search, then bind.
    pub user_search: Option<UserSearch>,
    /// Members of this group (`member` or `uniqueMember` holds their DN) moderate: their
    /// joins get the `owner` affiliation.
    pub moderator_group: Option<String>,
    /// Only members of this group may create rooms; without it everyone may.
    pub creator_group: Option<String>,
}

/// `user_search = { base = "...", filter = "(uid={user})" }`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserSearch {
    /// Search base (the whole subtree is searched).
    pub base: String,
    /// RFC 4515 filter, with `{user}` standing for the (filter-escaped) username.
    pub filter: String,
}

/// Parse and check the settings.
///
/// # Errors
/// Unknown keys, neither or both of `user_dn_template` and `user_search`, a template or
/// filter without `{user}`.
pub fn configure(json: &str) -> Result<Settings, String> {
    let s: Settings = lilt_plugin_sdk::parse_settings(json)?;
    match (&s.user_dn_template, &s.user_search) {
        (None, None) => {
            return Err("settings: set user_dn_template or user_search".into());
        }
        (Some(_), Some(_)) => {
            return Err("settings: set user_dn_template or user_search, not both".into());
        }
        (Some(t), None) if !t.contains("{user}") => {
            return Err("settings: user_dn_template must contain {user}".into());
        }
        (None, Some(us)) if !us.filter.contains("{user}") => {
            return Err("settings: user_search.filter must contain {user}".into());
        }
        (None, Some(us)) if !(us.filter.starts_with('(') && us.filter.ends_with(')')) => {
            return Err("settings: user_search.filter must be a parenthesised filter".into());
        }
        _ => {}
    }
    for (key, g) in [
        ("moderator_group", &s.moderator_group),
        ("creator_group", &s.creator_group),
    ] {
        if g.as_deref()
            .is_some_and(|g| g.trim().is_empty() || !g.contains('='))
        {
            return Err(format!("settings: {key} must be a group's DN"));
        }
    }
    Ok(s)
}

/// Why the policy could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The directory is unreachable, or refused a request the settings made (a base outside
    /// the granted profile, a bad filter): the login fails with `temporary-auth-failure`.
    Directory(String),
}

fn directory(e: LdapError) -> Failure {
    match e {
        LdapError::Unavailable(why) => Failure::Directory(why),
        LdapError::Refused(why) => Failure::Directory(format!("request refused: {why}")),
    }
}

/// Whether `username` may be looked up at all.
fn acceptable(username: &str) -> bool {
    !username.is_empty()
        && username.len() <= MAX_USERNAME
        && !username.chars().any(char::is_control)
}

/// The user's entry DN: `Ok(None)` when there is no such (unique) user.
///
/// # Errors
/// The directory failed.
pub fn user_dn(
    dir: &impl Directory,
    s: &Settings,
    username: &str,
) -> Result<Option<String>, Failure> {
    if !acceptable(username) {
        return Ok(None);
    }
    if let Some(t) = &s.user_dn_template {
        return Ok(Some(t.replace("{user}", &escape_dn_value(username))));
    }
    let Some(us) = &s.user_search else {
        return Ok(None);
    };
    let filter = us.filter.replace("{user}", &escape_filter_value(username));
    let found = dir
        .search(&us.base, Scope::Sub, &filter, &["1.1"])
        .map_err(directory)?;
    // Two entries for one username: refuse rather than guess.
    Ok(match found.as_slice() {
        [one] => Some(one.dn.clone()),
        _ => None,
    })
}

/// Whether `password` is `username`'s (a bind as the user's DN).
///
/// # Errors
/// The directory failed.
pub fn test_password(
    dir: &impl Directory,
    s: &Settings,
    username: &str,
    password: &str,
) -> Result<bool, Failure> {
    if password.is_empty() {
        return Ok(false);
    }
    let Some(dn) = user_dn(dir, s, username)? else {
        return Ok(false);
    };
    dir.bind(&dn, password).map_err(directory)
}

/// Whether the account exists.
///
/// # Errors
/// The directory failed.
pub fn user_exists(dir: &impl Directory, s: &Settings, username: &str) -> Result<bool, Failure> {
    let Some(dn) = user_dn(dir, s, username)? else {
        return Ok(false);
    };
    if s.user_search.is_some() {
        return Ok(true);
    }
    Ok(!dir
        .search(&dn, Scope::Base, "(objectClass=*)", &["1.1"])
        .map_err(directory)?
        .is_empty())
}

/// Whether the entry `user_dn` is a member of the group `group` (its `member` or
/// `uniqueMember` holds the DN; the directory compares DNs by their meaning).
fn is_member(dir: &impl Directory, group: &str, user_dn: &str) -> Result<bool, Failure> {
    let dn = escape_filter_value(user_dn);
    let filter = format!("(|(member={dn})(uniqueMember={dn}))");
    Ok(!dir
        .search(group, Scope::Base, &filter, &["1.1"])
        .map_err(directory)?
        .is_empty())
}

/// Who `username` (who has just logged in) is.
///
/// # Errors
/// The directory failed, or the user is gone.
pub fn identify(dir: &impl Directory, s: &Settings, username: &str) -> Result<Identity, Refused> {
    let dn = user_dn(dir, s, username)
        .map_err(|Failure::Directory(e)| Refused::Unavailable(e))?
        .ok_or_else(|| Refused::Denied("no such user in the directory".into()))?;
    let fail = |Failure::Directory(e)| Refused::Unavailable(e);
    let name = dir
        .search(&dn, Scope::Base, "(objectClass=*)", &["displayName", "cn"])
        .map_err(directory)
        .map_err(fail)?
        .first()
        .and_then(|e| {
            e.values("displayName")
                .first()
                .or_else(|| e.values("cn").first())
                .cloned()
        });
    let moderator = match &s.moderator_group {
        Some(g) => is_member(dir, g, &dn).map_err(fail)?,
        None => false,
    };
    let may_create_rooms = match &s.creator_group {
        Some(g) => is_member(dir, g, &dn).map_err(fail)?,
        None => true,
    };
    Ok(Identity {
        rooms: RoomAccess::Any,
        may_create_rooms,
        moderator,
        user: Some(UserCard {
            id: Some(username.to_owned()),
            name,
            email: None,
            avatar: None,
        }),
        group: None,
        context_json: None,
    })
}

/// Why `identify` refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// `not-authorized`.
    Denied(String),
    /// `temporary-auth-failure`.
    Unavailable(String),
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use lilt_plugin_sdk::Entry;

    use super::*;

    /// A directory of users (DN, password, displayName) and groups (DN, member DNs), with the
    /// filters the policy sends matched literally; it records every request.
    #[derive(Default)]
    struct Fake {
        users: Vec<(&'static str, &'static str, Option<&'static str>)>,
        groups: Vec<(&'static str, Vec<&'static str>)>,
        down: bool,
        log: RefCell<Vec<String>>,
    }

    const ALICE: &str = "uid=alice,ou=people,dc=example,dc=org";
    const BOB: &str = "uid=bob,ou=people,dc=example,dc=org";
    const MODS: &str = "cn=moderators,ou=groups,dc=example,dc=org";
    const CREATORS: &str = "cn=creators,ou=groups,dc=example,dc=org";

    fn fake() -> Fake {
        Fake {
            users: vec![(ALICE, "alicepw", Some("Alice A.")), (BOB, "bobpw", None)],
            groups: vec![(MODS, vec![ALICE]), (CREATORS, vec![ALICE])],
            ..Fake::default()
        }
    }

    impl Directory for Fake {
        fn bind(&self, dn: &str, password: &str) -> Result<bool, LdapError> {
            self.log.borrow_mut().push(format!("bind {dn}"));
            if self.down {
                return Err(LdapError::Unavailable("down".into()));
            }
            Ok(!password.is_empty()
                && self
                    .users
                    .iter()
                    .any(|(d, p, _)| *d == dn && *p == password))
        }

        fn search(
            &self,
            base: &str,
            scope: Scope,
            filter: &str,
            _attributes: &[&str],
        ) -> Result<Vec<Entry>, LdapError> {
            self.log
                .borrow_mut()
                .push(format!("search {base} {scope:?} {filter}"));
            if self.down {
                return Err(LdapError::Unavailable("down".into()));
            }
            let entry = |dn: &str, name: Option<&str>| Entry {
                dn: dn.to_owned(),
                attributes: name
                    .map(|n| vec![("displayName".to_owned(), vec![n.to_owned()])])
                    .unwrap_or_default(),
            };
            Ok(match scope {
                Scope::Sub => self
                    .users
                    .iter()
                    .filter(|(dn, _, _)| {
                        let uid = dn.split(',').next().unwrap_or("");
                        filter == format!("({uid})")
                    })
                    .map(|(dn, _, n)| entry(dn, *n))
                    .collect(),
                Scope::Base => {
                    if let Some((_, members)) = self.groups.iter().find(|(g, _)| *g == base) {
                        members
                            .iter()
                            .filter(|m| {
                                let m = escape_filter_value(m);
                                filter == format!("(|(member={m})(uniqueMember={m}))")
                            })
                            .map(|_| entry(base, None))
                            .collect()
                    } else {
                        self.users
                            .iter()
                            .filter(|(dn, _, _)| *dn == base)
                            .map(|(dn, _, n)| entry(dn, *n))
                            .collect()
                    }
                }
                Scope::One => Vec::new(),
            })
        }
    }

    fn template() -> Settings {
        configure(
            r#"{"user_dn_template": "uid={user},ou=people,dc=example,dc=org",
                "moderator_group": "cn=moderators,ou=groups,dc=example,dc=org"}"#,
        )
        .expect("settings")
    }

    fn search() -> Settings {
        configure(
            r#"{"user_search": {"base": "ou=people,dc=example,dc=org", "filter": "(uid={user})"},
                "moderator_group": "cn=moderators,ou=groups,dc=example,dc=org",
                "creator_group": "cn=creators,ou=groups,dc=example,dc=org"}"#,
        )
        .expect("settings")
    }

    #[test]
    fn settings_are_strict() {
        assert!(configure("{}").is_err());
        assert!(configure("null").is_err());
        assert!(configure(r#"{"user_dn_template": "uid=x,dc=org"}"#).is_err());
        assert!(configure(r#"{"user_search": {"base": "dc=org", "filter": "(uid=x)"}}"#).is_err());
        assert!(
            configure(r#"{"user_search": {"base": "dc=org", "filter": "uid={user}"}}"#).is_err()
        );
        assert!(
            configure(r#"{"user_dn_template": "uid={user},dc=org", "user_search": {"base": "dc=org", "filter": "(uid={user})"}}"#)
                .is_err()
        );
        assert!(configure(r#"{"user_dn_template": "uid={user},dc=org", "extra": 1}"#).is_err());
        assert!(
            configure(
                r#"{"user_search": {"base": "dc=org", "filter": "(uid={user})", "scope": "one"}}"#
            )
            .is_err()
        );
        assert!(
            configure(r#"{"user_dn_template": "uid={user},dc=org", "moderator_group": ""}"#)
                .is_err()
        );
        assert!(configure(r#"{"user_dn_template": "uid={user},dc=org"}"#).is_ok());
    }

    #[test]
    fn passwords_are_checked_by_binding() {
        for s in [template(), search()] {
            let d = fake();
            assert_eq!(test_password(&d, &s, "alice", "alicepw"), Ok(true));
            assert_eq!(test_password(&d, &s, "alice", "wrong"), Ok(false));
            assert_eq!(test_password(&d, &s, "alice", ""), Ok(false));
            assert_eq!(test_password(&d, &s, "nobody", "alicepw"), Ok(false));
            assert_eq!(test_password(&d, &s, "bob", "alicepw"), Ok(false));
        }
    }

    #[test]
    fn usernames_are_escaped_never_syntax() {
        let d = fake();
        let s = template();
        for evil in [
            "*",
            "alice)(uid=*",
            "cn=admin,dc=example,dc=org",
            "alice,ou=x",
            "alice+cn=x",
            " alice",
            "#alice",
        ] {
            assert_eq!(test_password(&d, &s, evil, "alicepw"), Ok(false), "{evil}");
        }
        let log = d.log.borrow().join("\n");
        assert!(log.contains("bind uid=\\*,ou=people") || log.contains("bind uid=*,ou=people"));
        assert!(
            log.contains(
                "bind uid=cn\\=admin\\,dc\\=example\\,dc\\=org,ou=people,dc=example,dc=org"
            ),
            "{log}"
        );
        assert!(log.contains("bind uid=alice\\,ou\\=x,ou=people"), "{log}");
        assert!(log.contains("bind uid=alice\\+cn\\=x,ou=people"), "{log}");
        assert!(log.contains("bind uid=\\ alice,ou=people"), "{log}");
        assert!(log.contains("bind uid=\\#alice,ou=people"), "{log}");

        let d = fake();
        let s = search();
        for evil in [
            "*",
            "alice)(uid=*",
            "al*",
            "alice\\",
            "cn=admin,dc=example,dc=org",
        ] {
            assert_eq!(test_password(&d, &s, evil, "alicepw"), Ok(false), "{evil}");
        }
        let log = d.log.borrow().join("\n");
        assert!(log.contains("(uid=\\2a)"), "{log}");
        assert!(log.contains("(uid=alice\\29\\28uid=\\2a)"), "{log}");
        assert!(log.contains("(uid=al\\2a)"), "{log}");
        assert!(log.contains("(uid=alice\\5c)"), "{log}");
        // Nothing bound: no unique entry was found for any of them.
        assert!(!log.contains("bind"), "{log}");
    }

    #[test]
    fn odd_usernames_never_reach_the_directory() {
        let d = fake();
        for s in [template(), search()] {
            for odd in ["", "a\0b", "a\nb", &"x".repeat(300)] {
                assert_eq!(test_password(&d, &s, odd, "alicepw"), Ok(false));
                assert_eq!(user_exists(&d, &s, odd), Ok(false));
            }
        }
        assert!(d.log.borrow().is_empty(), "{:?}", d.log.borrow());
    }

    #[test]
    fn identify_maps_groups() {
        for s in [template(), search()] {
            let d = fake();
            let alice = identify(&d, &s, "alice").expect("alice");
            assert!(alice.moderator);
            assert!(alice.may_create_rooms);
            assert_eq!(alice.rooms, RoomAccess::Any);
            let card = alice.user.expect("card");
            assert_eq!(card.id.as_deref(), Some("alice"));
            assert_eq!(card.name.as_deref(), Some("Alice A."));

            let bob = identify(&d, &s, "bob").expect("bob");
            assert!(!bob.moderator);
            // Without creator_group everyone may create rooms; with it only members.
            assert_eq!(bob.may_create_rooms, s.creator_group.is_none());
            assert_eq!(bob.user.and_then(|u| u.name), None);
        }
    }

    #[test]
    fn no_groups_configured_means_no_moderators() {
        let s = configure(r#"{"user_dn_template": "uid={user},ou=people,dc=example,dc=org"}"#)
            .expect("settings");
        let d = fake();
        let alice = identify(&d, &s, "alice").expect("alice");
        assert!(!alice.moderator);
        assert!(alice.may_create_rooms);
        // Only the user's own entry was read.
        assert_eq!(d.log.borrow().len(), 1);
    }

    #[test]
    fn a_directory_that_is_down_fails_closed() {
        for s in [template(), search()] {
            let d = Fake {
                down: true,
                ..fake()
            };
            assert!(matches!(
                test_password(&d, &s, "alice", "alicepw"),
                Err(Failure::Directory(_))
            ));
            assert!(matches!(
                identify(&d, &s, "alice"),
                Err(Refused::Unavailable(_))
            ));
        }
    }

    #[test]
    fn a_user_gone_after_login_is_denied() {
        let d = fake();
        assert!(matches!(
            identify(&d, &search(), "carol"),
            Err(Refused::Denied(_))
        ));
    }
}
