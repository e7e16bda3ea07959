//! The policy of auth-internal: account records, password checks and SCRAM credentials, kept
//! in a key-value store (the host's `kv` in production, a map in tests).
//!
//! Pure apart from the `Store` and the salt source it is given; tested natively below.
//! Invariants: no plaintext password is ever stored; each account has its own random salts;
//! PLAIN checks compare in constant time and cost one PBKDF2 whether or not the account exists
//! (a missing one is checked against a dummy credential); usernames are normalized (lowercase)
//! before use.
//! Replaces Prosody's `authentication = "internal_hashed"`.

use lilt_plugin_sdk::{Hash, ct_eq, pbkdf2, scram_keys};
use serde::{Deserialize, Serialize};

/// PBKDF2-SHA256 iterations for the PLAIN hash.
const PLAIN_ITERATIONS: u32 = 10_000;

/// Where accounts live.
pub trait Store {
    /// Read a value.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Write a value.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String>;
    /// Remove a value.
    fn delete(&self, key: &str) -> Result<(), String>;
}

/// Domain errors (mapped to the WIT `auth-error` by lib.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Account exists.
    UserExists,
    /// No such account.
    UserNotFound,
    /// Bad username or password.
    InvalidInput(String),
    /// Storage failed or a record is corrupt.
    Internal(String),
}

/// Mechanisms this plugin can decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mech {
    /// PLAIN.
    Plain,
    /// SCRAM-SHA-1.
    ScramSha1,
    /// SCRAM-SHA-256.
    ScramSha256,
}

/// The vhost's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// SCRAM iterations for new passwords. Defaults to 4096 (the RFC minimum).
    pub iterations: u32,
    /// Mechanisms offered. Defaults to all three.
    pub mechanisms: Vec<Mech>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            iterations: 4096,
            mechanisms: vec![Mech::ScramSha256, Mech::ScramSha1, Mech::Plain],
        }
    }
}

/// Parse and check settings.
///
/// # Errors
/// Unknown keys, too few iterations, no mechanism.
pub fn configure(json: &str) -> Result<Settings, String> {
    let s: Settings = lilt_plugin_sdk::parse_settings(json)?;
    if s.iterations < 4096 {
        return Err(format!(
            "settings: iterations must be at least 4096, not {}",
            s.iterations
        ));
    }
    if s.mechanisms.is_empty() {
        return Err(
            "settings: mechanisms must name at least one of plain, scram-sha1, scram-sha256".into(),
        );
    }
    Ok(s)
}

/// SCRAM credentials of one hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scram {
    /// Salt.
    pub salt: Vec<u8>,
    /// Iterations.
    pub iterations: u32,
    /// StoredKey.
    pub stored_key: Vec<u8>,
    /// ServerKey.
    pub server_key: Vec<u8>,
}

/// One account as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    sha1: Scram,
    sha256: Scram,
    plain_salt: Vec<u8>,
    plain_iterations: u32,
    plain_hash: Vec<u8>,
}

/// Normalize and check a username.
///
/// # Errors
/// `InvalidInput` with the reason.
pub fn normalize(username: &str) -> Result<String, Error> {
    let u = username.to_lowercase();
    if u.is_empty() || u.len() > 1023 {
        return Err(Error::InvalidInput("usernames have 1 to 1023 bytes".into()));
    }
    if u.chars()
        .any(|c| c.is_whitespace() || c.is_control() || "@/\"&'<>:".contains(c))
    {
        return Err(Error::InvalidInput(
            "usernames cannot hold whitespace, control characters or @/\"&'<>:".into(),
        ));
    }
    Ok(u)
}

fn key(user: &str) -> String {
    format!("user/{user}")
}

fn scram(hash: Hash, password: &str, salt: Vec<u8>, iterations: u32) -> Scram {
    let (stored_key, server_key) = scram_keys(hash, password, &salt, iterations);
    Scram {
        salt,
        iterations,
        stored_key,
        server_key,
    }
}

fn new_record(
    password: &str,
    iterations: u32,
    salt: &mut dyn FnMut() -> Vec<u8>,
) -> Result<Record, Error> {
    if password.is_empty() || password.len() > 1023 {
        return Err(Error::InvalidInput("passwords have 1 to 1023 bytes".into()));
    }
    let plain_salt = salt();
    Ok(Record {
        sha1: scram(Hash::Sha1, password, salt(), iterations),
        sha256: scram(Hash::Sha256, password, salt(), iterations),
        plain_hash: pbkdf2(
            Hash::Sha256,
            password.as_bytes(),
            &plain_salt,
            PLAIN_ITERATIONS,
        ),
        plain_salt,
        plain_iterations: PLAIN_ITERATIONS,
    })
}

fn load(store: &dyn Store, user: &str) -> Result<Option<Record>, Error> {
    match store.get(&key(user)).map_err(Error::Internal)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Internal(format!("corrupt record: {e}"))),
    }
}

fn save(store: &dyn Store, user: &str, record: &Record) -> Result<(), Error> {
    let bytes = serde_json::to_vec(record).map_err(|e| Error::Internal(e.to_string()))?;
    store.set(&key(user), &bytes).map_err(Error::Internal)
}

/// Whether the account exists.
///
/// # Errors
/// Bad username or storage failure.
pub fn user_exists(store: &dyn Store, username: &str) -> Result<bool, Error> {
    Ok(load(store, &normalize(username)?)?.is_some())
}

/// Create an account.
///
/// # Errors
/// `UserExists`, bad input, storage failure.
pub fn create_user(
    store: &dyn Store,
    s: &Settings,
    username: &str,
    password: &str,
    salt: &mut dyn FnMut() -> Vec<u8>,
) -> Result<(), Error> {
    let user = normalize(username)?;
    if load(store, &user)?.is_some() {
        return Err(Error::UserExists);
    }
    save(store, &user, &new_record(password, s.iterations, salt)?)
}

/// Change a password.
///
/// # Errors
/// `UserNotFound`, bad input, storage failure.
pub fn set_password(
    store: &dyn Store,
    s: &Settings,
    username: &str,
    password: &str,
    salt: &mut dyn FnMut() -> Vec<u8>,
) -> Result<(), Error> {
    let user = normalize(username)?;
    if load(store, &user)?.is_none() {
        return Err(Error::UserNotFound);
    }
    save(store, &user, &new_record(password, s.iterations, salt)?)
}

/// Delete an account.
///
/// # Errors
/// `UserNotFound`, bad input, storage failure.
pub fn delete_user(store: &dyn Store, username: &str) -> Result<(), Error> {
    let user = normalize(username)?;
    if load(store, &user)?.is_none() {
        return Err(Error::UserNotFound);
    }
    store.delete(&key(&user)).map_err(Error::Internal)
}

/// Salt of the dummy credential a missing account's password is checked against (as long as
/// a real account's PLAIN salt).
const DUMMY_PLAIN_SALT: [u8; 16] = *b"lilt-no-account!";

/// Check a password (PLAIN). Unknown accounts (and names no account can have) are `false`,
/// after the same PBKDF2 work as a real check, against a dummy credential, so the time taken
/// does not tell which accounts exist.
///
/// # Errors
/// Storage failure or a corrupt record.
pub fn test_password(store: &dyn Store, username: &str, password: &str) -> Result<bool, Error> {
    test_password_with(
        store,
        username,
        password,
        &mut |password, salt, iterations| pbkdf2(Hash::Sha256, password, salt, iterations),
    )
}

/// PBKDF2-SHA256 as `test_password_with` calls it: (password, salt, iterations) → hash.
type Kdf<'a> = dyn FnMut(&[u8], &[u8], u32) -> Vec<u8> + 'a;

/// `test_password` with the PBKDF2-SHA256 function given (tests count its calls).
fn test_password_with(
    store: &dyn Store,
    username: &str,
    password: &str,
    kdf: &mut Kdf<'_>,
) -> Result<bool, Error> {
    let record = match normalize(username) {
        Ok(user) => load(store, &user)?,
        Err(_) => None,
    };
    let (salt, iterations, expected) = match &record {
        Some(r) => (&r.plain_salt[..], r.plain_iterations, &r.plain_hash[..]),
        None => (&DUMMY_PLAIN_SALT[..], PLAIN_ITERATIONS, &[0u8; 32][..]),
    };
    let hash = kdf(password.as_bytes(), salt, iterations);
    // A missing account is compared against the dummy hash all the same, then refused.
    Ok(ct_eq(&hash, expected) && record.is_some())
}

/// SCRAM credentials for the account, if it exists.
///
/// # Errors
/// Storage failure or a corrupt record.
pub fn scram_credentials(
    store: &dyn Store,
    username: &str,
    hash: Hash,
) -> Result<Option<Scram>, Error> {
    let Ok(user) = normalize(username) else {
        return Ok(None);
    };
    Ok(load(store, &user)?.map(|r| if hash == Hash::Sha1 { r.sha1 } else { r.sha256 }))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;

    #[derive(Default)]
    struct Map(RefCell<HashMap<String, Vec<u8>>>);
    impl Store for Map {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.borrow().get(key).cloned())
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
            self.0.borrow_mut().insert(key.to_owned(), value.to_vec());
            Ok(())
        }
        fn delete(&self, key: &str) -> Result<(), String> {
            self.0.borrow_mut().remove(key);
            Ok(())
        }
    }

    fn salts() -> impl FnMut() -> Vec<u8> {
        let mut n = 0u8;
        move || {
            n += 1;
            vec![n; 16]
        }
    }

    #[test]
    fn account_lifecycle() {
        let store = Map::default();
        let s = Settings::default();
        let mut salt = salts();
        create_user(&store, &s, "Alice", "pencil", &mut salt).expect("create");
        assert_eq!(
            create_user(&store, &s, "alice", "x", &mut salt),
            Err(Error::UserExists)
        );
        assert!(user_exists(&store, "ALICE").expect("exists"));
        assert!(test_password(&store, "alice", "pencil").expect("check"));
        assert!(!test_password(&store, "alice", "pencil2").expect("check"));
        assert!(!test_password(&store, "bob", "pencil").expect("check"));
        let creds = scram_credentials(&store, "alice", Hash::Sha256)
            .expect("creds")
            .expect("some");
        assert_eq!(
            (creds.stored_key.clone(), creds.server_key.clone()),
            scram_keys(Hash::Sha256, "pencil", &creds.salt, 4096)
        );
        let sha1 = scram_credentials(&store, "alice", Hash::Sha1)
            .expect("creds")
            .expect("some");
        assert_ne!(sha1.salt, creds.salt);
        set_password(&store, &s, "alice", "new", &mut salt).expect("passwd");
        assert!(test_password(&store, "alice", "new").expect("check"));
        // Nothing stored contains the password.
        for v in store.0.borrow().values() {
            assert!(!String::from_utf8_lossy(v).contains("new\""));
        }
        delete_user(&store, "alice").expect("delete");
        assert_eq!(delete_user(&store, "alice"), Err(Error::UserNotFound));
        assert_eq!(
            set_password(&store, &s, "alice", "x", &mut salt),
            Err(Error::UserNotFound)
        );
        assert!(
            scram_credentials(&store, "alice", Hash::Sha1)
                .expect("creds")
                .is_none()
        );
    }

    /// Runs `test_password` with a PBKDF2 that records its calls: (salt, iterations) each.
    fn counted(store: &Map, user: &str, password: &str) -> (bool, Vec<(Vec<u8>, u32)>) {
        let mut calls = Vec::new();
        let ok = test_password_with(store, user, password, &mut |p, salt, i| {
            calls.push((salt.to_vec(), i));
            pbkdf2(Hash::Sha256, p, salt, i)
        })
        .expect("check");
        (ok, calls)
    }

    #[test]
    fn missing_account_costs_one_pbkdf2_like_a_real_one() {
        let store = Map::default();
        create_user(
            &store,
            &Settings::default(),
            "alice",
            "pencil",
            &mut salts(),
        )
        .expect("create");
        let (ok, real) = counted(&store, "alice", "wrong");
        assert!(!ok);
        assert_eq!(real.len(), 1);
        assert_eq!(real[0].1, PLAIN_ITERATIONS);
        assert!(counted(&store, "alice", "pencil").0);
        // A missing account and a name no account can have: the same work, then false.
        for ghost in ["bob", "no one", ""] {
            let (ok, calls) = counted(&store, ghost, "pencil");
            assert!(!ok, "{ghost:?}");
            assert_eq!(calls.len(), 1, "{ghost:?}: one PBKDF2 run");
            assert_eq!(
                calls[0].0.len(),
                real[0].0.len(),
                "{ghost:?}: same salt length"
            );
            assert_eq!(
                calls[0].1, PLAIN_ITERATIONS,
                "{ghost:?}: same iteration count"
            );
        }
        // Even a hash equal to the dummy's is refused for a missing account.
        let ok = test_password_with(&store, "bob", "x", &mut |_, _, _| vec![0u8; 32]);
        assert_eq!(ok, Ok(false));
    }

    #[test]
    fn input_checks_and_settings() {
        let store = Map::default();
        let s = Settings::default();
        for bad in ["", "a b", "a@b", "a/b", "\u{7}"] {
            assert!(
                matches!(
                    create_user(&store, &s, bad, "pw", &mut salts()),
                    Err(Error::InvalidInput(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            create_user(&store, &s, "a", "", &mut salts()),
            Err(Error::InvalidInput(_))
        ));
        assert!(configure("{}").is_ok());
        assert_eq!(
            configure("{\"mechanisms\":[\"plain\"]}")
                .expect("ok")
                .mechanisms,
            [Mech::Plain]
        );
        assert!(configure("{\"iterations\":10}").is_err());
        assert!(configure("{\"mechanisms\":[]}").is_err());
        assert!(
            configure("{\"bogus\":1}")
                .expect_err("unknown")
                .contains("bogus")
        );
        assert!(configure("{\"mechanisms\":[\"md5\"]}").is_err());
    }
}
