//! The policy of auth-jwt: Jitsi's token authentication (jitsi-meet's `mod_auth_token` with
//! `token/util.lib.lua` and `luajwtjitsi`), decided from the `token` parameter of the client's
//! WebSocket or BOSH URL.
//!
//! Pure: the key server is reached through [`Keys`] and the time is an argument, so every rule
//! is tested natively below. The signature is checked by the `jsonwebtoken` crate; the header
//! and the claims are checked here, with Jitsi's texts where it has them.
//!
//! Invariants: the algorithm is the configured one, never the token's choice (`none` and every
//! other algorithm are refused before any key is looked at); HS* tokens are verified only with
//! `app_secret` and RS* tokens only with the key the key server has under the token's `kid`, so
//! a public key can never serve as an HMAC secret; every refusal says why.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lilt_plugin_sdk::{Identity, KeyError, Keys, RoomAccess, UserCard};
use serde_json::{Map, Value};

/// The most `context.features` may take as JSON text (the host keeps at most 16 KiB).
pub const MAX_CONTEXT_JSON: usize = 16 * 1024;

/// The settings as written in the vhost's `[vhosts.auth] settings`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    algorithm: Option<String>,
    app_secret: Option<String>,
    accepted_issuers: Option<Vec<String>>,
    accepted_audiences: Option<Vec<String>>,
    subjects: Option<Vec<String>>,
    leeway_secs: Option<u64>,
    require_room_claim: Option<bool>,
    allow_empty_token: Option<bool>,
    empty_token_may_create_rooms: Option<bool>,
    max_token_bytes: Option<usize>,
}

/// The checked settings.
#[derive(Clone)]
pub struct Settings {
    /// The one algorithm tokens must be signed with.
    pub algorithm: Algorithm,
    /// The HMAC secret (HS* only).
    app_secret: Option<Vec<u8>>,
    /// Accepted `iss` values (`*`: any).
    pub accepted_issuers: Vec<String>,
    /// Accepted `aud` values (`*`: any).
    pub accepted_audiences: Vec<String>,
    /// Accepted `sub` values (`*`: any).
    pub subjects: Vec<String>,
    /// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway_secs: u64,
    /// Whether a token must carry a `room` claim.
    pub require_room_claim: bool,
    /// Whether a login without a token succeeds (as a guest of any room).
    pub allow_empty_token: bool,
    /// Whether such a guest may create rooms.
    pub empty_token_may_create_rooms: bool,
    /// The largest token accepted, in bytes.
    pub max_token_bytes: usize,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Settings")
            .field("algorithm", &self.algorithm)
            .field("app_secret", &self.app_secret.as_ref().map(|_| "…"))
            .field("accepted_issuers", &self.accepted_issuers)
            .field("accepted_audiences", &self.accepted_audiences)
            .field("subjects", &self.subjects)
            .field("leeway_secs", &self.leeway_secs)
            .field("require_room_claim", &self.require_room_claim)
            .field("allow_empty_token", &self.allow_empty_token)
            .field(
                "empty_token_may_create_rooms",
                &self.empty_token_may_create_rooms,
            )
            .field("max_token_bytes", &self.max_token_bytes)
            .finish()
    }
}

/// The algorithms a vhost may configure.
const ALGORITHMS: [(&str, Algorithm); 6] = [
    ("HS256", Algorithm::HS256),
    ("HS384", Algorithm::HS384),
    ("HS512", Algorithm::HS512),
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
];

fn is_hmac(a: Algorithm) -> bool {
    matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

fn algorithm_name(a: Algorithm) -> &'static str {
    ALGORITHMS
        .iter()
        .find(|(_, x)| *x == a)
        .map_or("?", |(n, _)| n)
}

fn non_empty_list(key: &str, list: Vec<String>) -> Result<Vec<String>, String> {
    if list.is_empty() {
        return Err(format!(
            "auth-jwt: `{key}` is empty (use [\"*\"] to accept any)"
        ));
    }
    if list.iter().any(String::is_empty) {
        return Err(format!("auth-jwt: `{key}` holds an empty string"));
    }
    Ok(list)
}

/// Check the vhost's settings.
///
/// # Errors
/// Unknown keys, a missing `algorithm` or `accepted_issuers`, an algorithm other than
/// HS256/384/512 and RS256/384/512, `app_secret` missing (HS*), empty or given (RS*), empty
/// lists, `max_token_bytes` of 0.
pub fn configure(json: &str) -> Result<Settings, String> {
    let raw: Raw = lilt_plugin_sdk::parse_settings(json).map_err(|e| format!("auth-jwt: {e}"))?;
    let name = raw
        .algorithm
        .ok_or("auth-jwt: `algorithm` is required (HS256, HS384, HS512, RS256, RS384 or RS512)")?;
    let algorithm = ALGORITHMS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| *a)
        .ok_or_else(|| {
            format!(
                "auth-jwt: unknown `algorithm` {name:?} (HS256, HS384, HS512, RS256, RS384 or RS512)"
            )
        })?;
    let app_secret = match (is_hmac(algorithm), raw.app_secret) {
        (true, None) => return Err(format!("auth-jwt: {name} needs `app_secret`")),
        (true, Some(s)) if s.is_empty() => return Err("auth-jwt: `app_secret` is empty".into()),
        (true, Some(s)) => Some(s.into_bytes()),
        (false, Some(_)) => {
            return Err(format!(
                "auth-jwt: `app_secret` is for HS* only; {name} tokens are checked with the key \
                 server's public keys (grant `keys:<key server>`)"
            ));
        }
        (false, None) => None,
    };
    let accepted_issuers = non_empty_list(
        "accepted_issuers",
        raw.accepted_issuers
            .ok_or("auth-jwt: `accepted_issuers` is required (use [\"*\"] to accept any)")?,
    )?;
    let star = || vec!["*".to_owned()];
    let max_token_bytes = raw.max_token_bytes.unwrap_or(8192);
    if max_token_bytes == 0 {
        return Err("auth-jwt: `max_token_bytes` must be above 0".into());
    }
    Ok(Settings {
        algorithm,
        app_secret,
        accepted_issuers,
        accepted_audiences: non_empty_list(
            "accepted_audiences",
            raw.accepted_audiences.unwrap_or_else(star),
        )?,
        subjects: non_empty_list("subjects", raw.subjects.unwrap_or_else(star))?,
        leeway_secs: raw.leeway_secs.unwrap_or(0),
        require_room_claim: raw.require_room_claim.unwrap_or(true),
        allow_empty_token: raw.allow_empty_token.unwrap_or(false),
        empty_token_may_create_rooms: raw.empty_token_may_create_rooms.unwrap_or(false),
        max_token_bytes,
    })
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not acceptable; the text says why (SASL `not-authorized`).
    Denied(String),
    /// The key server cannot answer now (SASL `temporary-auth-failure`).
    Unavailable(String),
}

fn denied(why: impl Into<String>) -> Refused {
    Refused::Denied(why.into())
}

/// Whether `value` is accepted by `list` (`*` accepts anything).
fn accepts(list: &[String], value: &str) -> bool {
    list.iter().any(|a| a == "*" || a == value)
}

/// A claim that must be a number of seconds, if present.
fn seconds(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, Refused> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    // Whole seconds; a fraction is dropped (the claim is in seconds).
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| denied(format!("`{name}` claim is not a number of seconds"))),
        Some(_) => Err(denied(format!("`{name}` claim must be a number"))),
    }
}

/// A claim that must be a non-empty string.
fn string_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a str, Refused> {
    match claims.get(name) {
        None | Some(Value::Null) => Err(denied(format!("`{name}` claim is missing"))),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(denied(format!("`{name}` claim must be a non-empty string"))),
    }
}

/// A string field of `context` (numbers are taken as their decimal text, as ids often are).
fn text_field(obj: &Map<String, Value>, name: &str) -> Option<String> {
    match obj.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The token's header, read before any key is chosen.
struct Header {
    alg: String,
    kid: Option<String>,
}

fn read_header(token: &str) -> Result<Header, Refused> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(denied(
            "malformed token: not three dot-separated parts (header.payload.signature)",
        ));
    };
    let bytes = B64URL
        .decode(header.trim_end_matches('='))
        .map_err(|_| denied("malformed token: the header is not base64url"))?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|_| denied("malformed token: the header is not JSON"))?;
    let Value::Object(h) = value else {
        return Err(denied("malformed token: the header is not a JSON object"));
    };
    let alg = match h.get("alg") {
        Some(Value::String(a)) => a.clone(),
        _ => return Err(denied("malformed token: the header has no `alg`")),
    };
    match h.get("typ") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(t) => {
            return Err(denied(format!(
                "token type {t} is not accepted (`typ` must be JWT)"
            )));
        }
    }
    let kid = match h.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if !k.is_empty() => Some(k.clone()),
        Some(_) => return Err(denied("`kid` must be a non-empty string")),
    };
    Ok(Header { alg, kid })
}

/// Decide a login: `token` is the URL's `token` parameter, `now` the time in seconds since the
/// Unix epoch.
///
/// # Errors
/// [`Refused::Denied`] with the reason for every token that is not acceptable;
/// [`Refused::Unavailable`] when the key server cannot be asked.
pub fn identify(
    keys: &impl Keys,
    s: &Settings,
    token: Option<&str>,
    now: u64,
) -> Result<Identity, Refused> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return if s.allow_empty_token {
            Ok(Identity {
                rooms: RoomAccess::Any,
                may_create_rooms: s.empty_token_may_create_rooms,
                ..Identity::default()
            })
        } else {
            Err(denied("token required"))
        };
    };
    if token.len() > s.max_token_bytes {
        return Err(denied(format!(
            "token too large: {} bytes, at most {}",
            token.len(),
            s.max_token_bytes
        )));
    }
    let header = read_header(token)?;
    let expected = algorithm_name(s.algorithm);
    if header.alg.eq_ignore_ascii_case("none") || header.alg.is_empty() {
        return Err(denied(format!(
            "unsigned token (alg {:?}) is not accepted; expected {expected}",
            header.alg
        )));
    }
    if header.alg != expected {
        return Err(denied(format!(
            "token algorithm {} is not accepted; expected {expected}",
            header.alg
        )));
    }
    // The key follows from the configured algorithm alone.
    let key = if let Some(secret) = &s.app_secret {
        DecodingKey::from_secret(secret)
    } else {
        let kid = header
            .kid
            .ok_or_else(|| denied("`kid` header is missing (needed to find the public key)"))?;
        let pem = keys.public_key(&kid).map_err(|e| match e {
            KeyError::NotFound => denied(format!("unknown key id {kid:?}")),
            KeyError::Unavailable(why) => {
                Refused::Unavailable(format!("the key server cannot be reached now: {why}"))
            }
        })?;
        DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
            denied(format!(
                "the key of id {kid:?} is not an RSA public key ({e})"
            ))
        })?
    };
    let mut validation = Validation::new(s.algorithm);
    // Claims are checked below, with the caller's clock and Jitsi's rules.
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => denied("invalid token signature"),
            K::InvalidAlgorithm => denied(format!(
                "token algorithm is not accepted; expected {expected}"
            )),
            K::InvalidRsaKey(_) | K::InvalidKeyFormat => denied(format!(
                "the key server's key cannot check {expected} tokens"
            )),
            _ => denied(format!("malformed token: {e}")),
        }
    })?;
    let Value::Object(claims) = data.claims else {
        return Err(denied("malformed token: the payload is not a JSON object"));
    };
    check_claims(s, &claims, now)
}

/// The claim checks after the signature: time, issuer, audience, subject, room, context.
fn check_claims(s: &Settings, claims: &Map<String, Value>, now: u64) -> Result<Identity, Refused> {
    let leeway = s.leeway_secs;
    if let Some(exp) = seconds(claims, "exp")?
        && now >= exp.saturating_add(leeway)
    {
        return Err(denied(format!("token expired (exp {exp}, now {now})")));
    }
    if let Some(nbf) = seconds(claims, "nbf")?
        && now.saturating_add(leeway) < nbf
    {
        return Err(denied(format!(
            "token not yet valid (nbf {nbf}, now {now})"
        )));
    }
    if let Some(iat) = seconds(claims, "iat")?
        && iat > now.saturating_add(leeway)
    {
        return Err(denied(format!(
            "token issued in the future (iat {iat}, now {now})"
        )));
    }
    let iss = string_claim(claims, "iss")?;
    if !accepts(&s.accepted_issuers, iss) {
        return Err(denied(format!("issuer {iss:?} is not accepted")));
    }
    let auds: Vec<&str> = match claims.get("aud") {
        None | Some(Value::Null) => return Err(denied("`aud` claim is missing")),
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|a| {
                a.as_str()
                    .ok_or_else(|| denied("`aud` claim must hold strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(denied("`aud` claim must be a string or a list of strings")),
    };
    if !auds.iter().any(|a| accepts(&s.accepted_audiences, a)) {
        return Err(denied(format!("audience {auds:?} is not accepted")));
    }
    // `sub` names the vhost or tenant the token is for; a token's `*` is for any of them.
    match claims.get("sub") {
        None | Some(Value::Null) if s.subjects.iter().any(|x| x == "*") => {}
        None | Some(Value::Null) => return Err(denied("`sub` claim is missing")),
        Some(Value::String(sub)) if sub == "*" || accepts(&s.subjects, sub) => {}
        Some(Value::String(sub)) => {
            return Err(denied(format!("subject {sub:?} is not accepted")));
        }
        Some(_) => return Err(denied("`sub` claim must be a string")),
    }
    let rooms = match claims.get("room") {
        None | Some(Value::Null) if s.require_room_claim => {
            return Err(denied("`room` claim is missing"));
        }
        None | Some(Value::Null) => RoomAccess::Any,
        Some(Value::String(r)) if r == "*" => RoomAccess::Any,
        Some(Value::String(r)) if !r.is_empty() => RoomAccess::Only(vec![r.to_lowercase()]),
        Some(_) => return Err(denied("`room` claim must be a non-empty string")),
    };
    let mut identity = Identity {
        rooms,
        may_create_rooms: true,
        ..Identity::default()
    };
    match claims.get("context") {
        None | Some(Value::Null) => {}
        Some(Value::Object(context)) => read_context(context, &mut identity)?,
        Some(_) => return Err(denied("`context` claim must be an object")),
    }
    Ok(identity)
}

/// `context.user` (the card and the moderator flag), `context.group`, `context.features`.
fn read_context(context: &Map<String, Value>, identity: &mut Identity) -> Result<(), Refused> {
    match context.get("user") {
        None | Some(Value::Null) => {}
        Some(Value::Object(user)) => {
            let card = UserCard {
                id: text_field(user, "id"),
                name: text_field(user, "name"),
                email: text_field(user, "email"),
                avatar: text_field(user, "avatar"),
            };
            if card != UserCard::default() {
                identity.user = Some(card);
            }
            identity.moderator = match user.get("moderator") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(t)) => t.eq_ignore_ascii_case("true"),
                _ => false,
            };
        }
        Some(_) => return Err(denied("`context.user` must be an object")),
    }
    identity.group = text_field(context, "group");
    if let Some(features) = context.get("features").filter(|f| !f.is_null()) {
        let json = features.to_string();
        if json.len() > MAX_CONTEXT_JSON {
            return Err(denied(format!(
                "`context.features` is too large ({} bytes, at most {MAX_CONTEXT_JSON})",
                json.len()
            )));
        }
        identity.context_json = Some(json);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header as JwtHeader, encode};
    use lilt_plugin_sdk::MemoryHost;
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_800_000_000;
    const SECRET: &str = "a-shared-secret-of-decent-length";

    fn hs(extra: &str) -> Settings {
        configure(&format!(
            r#"{{"algorithm":"HS256","app_secret":"{SECRET}","accepted_issuers":["jitsi"]{extra}}}"#
        ))
        .unwrap()
    }

    fn claims() -> Value {
        json!({"iss": "jitsi", "aud": "jitsi", "sub": "meet.example.com", "room": "Daily",
               "exp": NOW + 60, "nbf": NOW - 60, "iat": NOW - 60})
    }

    fn with(mut c: Value, key: &str, v: Value) -> Value {
        c[key] = v;
        c
    }

    fn without(mut c: Value, key: &str) -> Value {
        c.as_object_mut().unwrap().remove(key);
        c
    }

    fn sign_hs(alg: Algorithm, secret: &[u8], c: &Value) -> String {
        encode(&JwtHeader::new(alg), c, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn hs256(c: &Value) -> String {
        sign_hs(Algorithm::HS256, SECRET.as_bytes(), c)
    }

    fn run(s: &Settings, token: &str) -> Result<Identity, Refused> {
        identify(&MemoryHost::default(), s, Some(token), NOW)
    }

    fn denied_text(r: Result<Identity, Refused>) -> String {
        match r {
            Err(Refused::Denied(t)) => t,
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    fn b64(v: &Value) -> String {
        B64URL.encode(v.to_string())
    }

    #[test]
    fn settings_are_strict() {
        let err = |j: &str| configure(j).unwrap_err();
        assert!(err("{}").contains("`algorithm` is required"));
        assert!(err(r#"{"algorithm":"none","accepted_issuers":["*"]}"#).contains("unknown"));
        assert!(err(r#"{"algorithm":"ES256","accepted_issuers":["*"]}"#).contains("unknown"));
        assert!(err(r#"{"algorithm":"HS256","accepted_issuers":["*"]}"#).contains("app_secret"));
        assert!(
            err(r#"{"algorithm":"RS256","app_secret":"x","accepted_issuers":["*"]}"#)
                .contains("HS* only")
        );
        assert!(err(r#"{"algorithm":"RS256"}"#).contains("accepted_issuers"));
        assert!(err(r#"{"algorithm":"RS256","accepted_issuers":[]}"#).contains("is empty"));
        assert!(
            err(r#"{"algorithm":"RS256","accepted_issuers":["*"],"subjects":[]}"#)
                .contains("`subjects` is empty")
        );
        assert!(err(r#"{"algorithm":"RS256","accepted_issuers":["*"],"x":1}"#).contains("x"));
        let s = configure(r#"{"algorithm":"RS256","accepted_issuers":["*"]}"#).unwrap();
        assert_eq!(s.accepted_audiences, ["*"]);
        assert_eq!(s.subjects, ["*"]);
        assert_eq!(
            (s.leeway_secs, s.require_room_claim, s.allow_empty_token),
            (0, true, false)
        );
        assert!(!s.empty_token_may_create_rooms);
        assert_eq!(s.max_token_bytes, 8192);
        // The secret never shows in Debug output.
        assert!(!format!("{:?}", hs("")).contains(SECRET));
    }

    #[test]
    fn a_good_token_gives_its_room_moderator_flag_and_card() {
        let c = with(
            claims(),
            "context",
            json!({"user": {"id": 42, "name": "Ann", "email": "ann@example.com",
                            "avatar": "https://a.example/ann.png", "moderator": "true"},
                   "group": "g1", "features": {"recording": true}}),
        );
        let id = run(&hs(""), &hs256(&c)).unwrap();
        assert_eq!(id.rooms, RoomAccess::Only(vec!["daily".into()]));
        assert!(id.may_create_rooms);
        assert!(id.moderator);
        let user = id.user.unwrap();
        assert_eq!(user.id.as_deref(), Some("42"));
        assert_eq!(user.name.as_deref(), Some("Ann"));
        assert_eq!(user.email.as_deref(), Some("ann@example.com"));
        assert_eq!(user.avatar.as_deref(), Some("https://a.example/ann.png"));
        assert_eq!(id.group.as_deref(), Some("g1"));
        assert_eq!(id.context_json.as_deref(), Some(r#"{"recording":true}"#));

        let plain = run(&hs(""), &hs256(&with(claims(), "room", json!("*")))).unwrap();
        assert_eq!(plain.rooms, RoomAccess::Any);
        assert!(!plain.moderator);
        assert_eq!(plain.user, None);
        for m in [json!(false), json!("false"), json!(1)] {
            let c = with(claims(), "context", json!({"user": {"moderator": m}}));
            assert!(!run(&hs(""), &hs256(&c)).unwrap().moderator, "{m}");
        }
        let c = with(claims(), "context", json!({"user": {"moderator": true}}));
        assert!(run(&hs(""), &hs256(&c)).unwrap().moderator);
    }

    #[test]
    fn every_hmac_size_is_its_own_algorithm() {
        for (name, alg) in [("HS384", Algorithm::HS384), ("HS512", Algorithm::HS512)] {
            let s = configure(&format!(
                r#"{{"algorithm":"{name}","app_secret":"{SECRET}","accepted_issuers":["*"]}}"#
            ))
            .unwrap();
            assert!(run(&s, &sign_hs(alg, SECRET.as_bytes(), &claims())).is_ok());
            let t = denied_text(run(&s, &hs256(&claims())));
            assert!(
                t.contains("HS256 is not accepted") && t.contains(name),
                "{t}"
            );
        }
    }

    #[test]
    fn missing_empty_and_oversized_tokens() {
        let h = MemoryHost::default();
        for t in [None, Some("")] {
            assert_eq!(identify(&h, &hs(""), t, NOW), Err(denied("token required")));
        }
        let guest = identify(&h, &hs(r#","allow_empty_token":true"#), None, NOW).unwrap();
        assert_eq!(guest.rooms, RoomAccess::Any);
        assert!(!guest.may_create_rooms && !guest.moderator);
        let creator = identify(
            &h,
            &hs(r#","allow_empty_token":true,"empty_token_may_create_rooms":true"#),
            None,
            NOW,
        )
        .unwrap();
        assert!(creator.may_create_rooms);
        // A token given is checked even when none is needed.
        let t = denied_text(identify(
            &h,
            &hs(r#","allow_empty_token":true"#),
            Some("x.y.z"),
            NOW,
        ));
        assert!(t.contains("malformed"), "{t}");

        let big = hs256(&with(claims(), "pad", json!("x".repeat(9000))));
        let t = denied_text(run(&hs(""), &big));
        assert!(t.contains("too large"), "{t}");
        assert!(run(&hs(r#","max_token_bytes":20000"#), &big).is_ok());
    }

    #[test]
    fn malformed_tokens() {
        let s = hs("");
        for (token, why) in [
            ("abc", "three"),
            ("a.b", "three"),
            ("a.b.c.d", "three"),
            ("!!.b.c", "base64url"),
            (&format!("{}.e30.", B64URL.encode("not json")), "not JSON"),
            (&format!("{}.e30.", b64(&json!([1]))), "not a JSON object"),
            (&format!("{}.e30.", b64(&json!({"typ": "JWT"}))), "no `alg`"),
        ] {
            let t = denied_text(run(&s, token));
            assert!(t.contains("malformed") && t.contains(why), "{token}: {t}");
        }
        // A signed token whose payload is not JSON.
        let good = hs256(&claims());
        let mut parts: Vec<&str> = good.split('.').collect();
        let bad_payload = B64URL.encode("nope");
        parts[1] = &bad_payload;
        let t = denied_text(run(&s, &parts.join(".")));
        assert!(t.contains("signature") || t.contains("malformed"), "{t}");
    }

    #[test]
    fn the_algorithm_is_never_the_tokens_choice() {
        let s = hs("");
        // alg none, with and without a signature.
        let body = b64(&claims());
        for alg in ["none", "None", ""] {
            let head = b64(&json!({"alg": alg, "typ": "JWT"}));
            let t = denied_text(run(&s, &format!("{head}.{body}.")));
            assert!(t.contains("unsigned token"), "{alg}: {t}");
        }
        // An algorithm jsonwebtoken does not even know.
        let head = b64(&json!({"alg": "XS999"}));
        let t = denied_text(run(&s, &format!("{head}.{body}.c2ln")));
        assert!(t.contains("XS999 is not accepted; expected HS256"), "{t}");
        // typ other than JWT.
        let head = b64(&json!({"alg": "HS256", "typ": "at+jwt"}));
        let t = denied_text(run(&s, &format!("{head}.{body}.c2ln")));
        assert!(t.contains("`typ` must be JWT"), "{t}");
        // Wrong secret.
        let t = denied_text(run(
            &s,
            &sign_hs(Algorithm::HS256, b"another secret", &claims()),
        ));
        assert_eq!(t, "invalid token signature");
    }

    #[test]
    fn rs256_keys_come_from_the_key_server_only() {
        // A test key pair made for these tests with `openssl genpkey` (never a real key).
        let private = include_str!("../testdata/rsa-test-private.pem");
        let public = include_str!("../testdata/rsa-test-public.pem");
        let s = configure(r#"{"algorithm":"RS256","accepted_issuers":["jitsi"]}"#).unwrap();
        let h = MemoryHost::default();
        h.public_keys
            .borrow_mut()
            .insert("k1".into(), public.into());
        let sign = |kid: Option<&str>| {
            let mut header = JwtHeader::new(Algorithm::RS256);
            header.kid = kid.map(str::to_owned);
            encode(
                &header,
                &claims(),
                &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
            )
            .unwrap()
        };
        let id = identify(&h, &s, Some(&sign(Some("k1"))), NOW).unwrap();
        assert_eq!(id.rooms, RoomAccess::Only(vec!["daily".into()]));
        let t = denied_text(identify(&h, &s, Some(&sign(None)), NOW));
        assert!(t.contains("`kid` header is missing"), "{t}");
        let t = denied_text(identify(&h, &s, Some(&sign(Some("k2"))), NOW));
        assert!(t.contains("unknown key id \"k2\""), "{t}");
        // An HS256 token, even one whose secret is the public key, is refused by algorithm.
        let mut header = JwtHeader::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let forged = encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        let t = denied_text(identify(&h, &s, Some(&forged), NOW));
        assert!(t.contains("HS256 is not accepted; expected RS256"), "{t}");
        // And where HS256 is configured, the public key is not the secret.
        let hs_host = MemoryHost::default();
        hs_host
            .public_keys
            .borrow_mut()
            .insert("k1".into(), public.into());
        let t = denied_text(identify(&hs_host, &hs(""), Some(&forged), NOW));
        assert_eq!(t, "invalid token signature");
        // The key server down is a temporary failure.
        *h.keys_unavailable.borrow_mut() = Some("connection refused".into());
        assert!(matches!(
            identify(&h, &s, Some(&sign(Some("k1"))), NOW),
            Err(Refused::Unavailable(t)) if t.contains("connection refused")
        ));
        // A key that is not RSA.
        let bad = MemoryHost::default();
        bad.public_keys.borrow_mut().insert(
            "k1".into(),
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n".into(),
        );
        let t = denied_text(identify(&bad, &s, Some(&sign(Some("k1"))), NOW));
        assert!(t.contains("k1"), "{t}");
    }

    #[test]
    fn time_claims_with_and_without_leeway() {
        let s = hs("");
        let lax = hs(r#","leeway_secs":30"#);
        let at = |c: Value| hs256(&c);
        let t = denied_text(run(&s, &at(with(claims(), "exp", json!(NOW)))));
        assert!(t.contains("token expired"), "{t}");
        assert!(run(&lax, &at(with(claims(), "exp", json!(NOW - 10)))).is_ok());
        assert!(run(&lax, &at(with(claims(), "exp", json!(NOW - 30)))).is_err());
        let t = denied_text(run(&s, &at(with(claims(), "nbf", json!(NOW + 1)))));
        assert!(t.contains("not yet valid"), "{t}");
        assert!(run(&lax, &at(with(claims(), "nbf", json!(NOW + 30)))).is_ok());
        let t = denied_text(run(&s, &at(with(claims(), "iat", json!(NOW + 5)))));
        assert!(t.contains("issued in the future"), "{t}");
        assert!(run(&lax, &at(with(claims(), "iat", json!(NOW + 5)))).is_ok());
        let t = denied_text(run(&s, &at(with(claims(), "exp", json!("soon")))));
        assert!(t.contains("`exp` claim must be a number"), "{t}");
        // Fractional seconds are accepted (PyJWT and jose write integers, others do not).
        assert!(
            run(
                &s,
                &at(with(claims(), "exp", json!((NOW + 60) as f64 + 0.5)))
            )
            .is_ok()
        );
        // Without exp a token does not expire (as in Jitsi).
        assert!(run(&s, &at(without(claims(), "exp"))).is_ok());
    }

    #[test]
    fn issuer_audience_subject() {
        let s = hs(r#","accepted_audiences":["app1","app2"],"subjects":["meet.example.com"]"#);
        let c = with(claims(), "aud", json!("app2"));
        assert!(run(&s, &hs256(&c)).is_ok());
        assert!(run(&s, &hs256(&with(c.clone(), "aud", json!(["x", "app1"])))).is_ok());
        let t = denied_text(run(&s, &hs256(&with(c.clone(), "aud", json!(["x"])))));
        assert!(t.contains("audience [\"x\"] is not accepted"), "{t}");
        let t = denied_text(run(&s, &hs256(&without(c.clone(), "aud"))));
        assert!(t.contains("`aud` claim is missing"), "{t}");
        let t = denied_text(run(&s, &hs256(&with(c.clone(), "iss", json!("other")))));
        assert!(t.contains("issuer \"other\" is not accepted"), "{t}");
        let t = denied_text(run(&s, &hs256(&without(c.clone(), "iss"))));
        assert!(t.contains("`iss` claim is missing"), "{t}");
        let t = denied_text(run(
            &s,
            &hs256(&with(c.clone(), "sub", json!("evil.example"))),
        ));
        assert!(
            t.contains("subject \"evil.example\" is not accepted"),
            "{t}"
        );
        let t = denied_text(run(&s, &hs256(&without(c.clone(), "sub"))));
        assert!(t.contains("`sub` claim is missing"), "{t}");
        // A token for any subject, and settings accepting any.
        assert!(run(&s, &hs256(&with(c.clone(), "sub", json!("*")))).is_ok());
        assert!(run(&hs(""), &hs256(&without(claims(), "sub"))).is_ok());
        let any_iss = configure(&format!(
            r#"{{"algorithm":"HS256","app_secret":"{SECRET}","accepted_issuers":["*"]}}"#
        ))
        .unwrap();
        assert!(run(&any_iss, &hs256(&with(claims(), "iss", json!("anyone")))).is_ok());
    }

    #[test]
    fn room_claim() {
        let t = denied_text(run(&hs(""), &hs256(&without(claims(), "room"))));
        assert!(t.contains("`room` claim is missing"), "{t}");
        let id = run(
            &hs(r#","require_room_claim":false"#),
            &hs256(&without(claims(), "room")),
        )
        .unwrap();
        assert_eq!(id.rooms, RoomAccess::Any);
        for bad in [json!(""), json!(5), json!(["a"])] {
            let t = denied_text(run(&hs(""), &hs256(&with(claims(), "room", bad))));
            assert!(t.contains("`room` claim must be"), "{t}");
        }
    }

    #[test]
    fn oversized_features_are_refused() {
        let c = with(
            claims(),
            "context",
            json!({"features": {"x": "y".repeat(MAX_CONTEXT_JSON)}}),
        );
        let t = denied_text(run(&hs(r#","max_token_bytes":65536"#), &hs256(&c)));
        assert!(t.contains("`context.features` is too large"), "{t}");
    }
}
