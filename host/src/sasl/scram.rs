//! SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677), server side, without channel binding
//! (the `-PLUS` variants are not offered), plus PBKDF2 (`Hi()`) and credential derivation.
//!
//! Core (pure apart from two process-wide values used only for unknown users, below; the
//! server nonce comes from the caller). HMAC, PBKDF2 and digests come from `lilt_plugin_sdk`,
//! so the host verifier and the auth plugins derive keys with one implementation.
//! Messages are parsed strictly by the RFC 5802 §7 grammar: GS2 flag `n` or `y` (`y` is fine
//! because we never advertise -PLUS; it must be refused if -PLUS is ever offered), `p=` is
//! refused; `a=` must equal the username; `m=` (a mandatory extension) is refused; optional
//! extensions are ignored as §5.1 asks, but may not reuse a defined attribute letter; `=2C`
//! and `=3D` are the only escapes in names.
//! Invariants: the proof is compared in constant time; stored iteration counts are used as
//! stored (even below 4096). An unknown user is not revealed: the exchange runs with dummy
//! credentials (salt and keys from an HMAC of the username under a random per-process secret,
//! so the salt is stable per username and unpredictable; iterations copied from the last real
//! credentials of that hash, 4096 before any) and fails with `NotAuthorized` only after the
//! client proof. A restart changes the dummy salt, which a patient observer could notice.
//! Tests: `mod tests` below (RFC 5802 §5, RFC 7677 §3, RFC 6070 vectors, malformed input).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use lilt_plugin_sdk::Hash;
use rand::RngCore as _;
use subtle::{Choice, ConstantTimeEq};

use super::{SaslFailure, SaslStep, ScramCredentials, ScramHash, acceptable_name};

/// Attribute letters RFC 5802 defines; an extension may not reuse one.
const DEFINED_ATTRIBUTES: &[u8] = b"acehimnprsv";

fn sdk_hash(hash: ScramHash) -> Hash {
    match hash {
        ScramHash::Sha1 => Hash::Sha1,
        ScramHash::Sha256 => Hash::Sha256,
    }
}

fn hmac(hash: ScramHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    lilt_plugin_sdk::hmac(sdk_hash(hash), key, data)
}

fn digest(hash: ScramHash, data: &[u8]) -> Vec<u8> {
    lilt_plugin_sdk::digest(sdk_hash(hash), data)
}

/// PBKDF2 with HMAC-`hash`, one output block (the hash's length): SCRAM's `Hi()`
/// (RFC 5802 §2.2).
pub fn pbkdf2_hmac(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    lilt_plugin_sdk::pbkdf2(sdk_hash(hash), password, salt, iterations)
}

/// Derive stored SCRAM credentials from a password (RFC 5802 §3): SaltedPassword =
/// Hi(password, salt, i), StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey =
/// HMAC(SaltedPassword, "Server Key"). The password is used as given (no SASLprep).
pub fn derive_scram_credentials(
    hash: ScramHash,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> ScramCredentials {
    let (stored_key, server_key) =
        lilt_plugin_sdk::scram_keys(sdk_hash(hash), password, salt, iterations);
    ScramCredentials {
        salt: salt.to_vec(),
        iterations,
        stored_key,
        server_key,
    }
}

/// Iteration count of the last real credentials seen, per hash: what dummy credentials use.
static LAST_ITERATIONS: [AtomicU32; 2] = [AtomicU32::new(4096), AtomicU32::new(4096)];

fn hash_index(hash: ScramHash) -> usize {
    match hash {
        ScramHash::Sha1 => 0,
        ScramHash::Sha256 => 1,
    }
}

/// Credentials for a user the plugin does not know; see the top comment.
fn dummy_credentials(hash: ScramHash, username: &str) -> ScramCredentials {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    let secret = SECRET.get_or_init(|| {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        key
    });
    let tagged = |tag: &str| format!("{tag}\0{}\0{username}", hash_index(hash));
    let mut salt = hmac(ScramHash::Sha256, secret, tagged("salt").as_bytes());
    // Real salts (auth-internal) are 16 bytes.
    salt.truncate(16);
    ScramCredentials {
        salt,
        iterations: LAST_ITERATIONS[hash_index(hash)].load(Ordering::Relaxed),
        stored_key: hmac(hash, secret, tagged("stored").as_bytes()),
        server_key: hmac(hash, secret, tagged("server").as_bytes()),
    }
}

/// Decode a SCRAM `saslname` (RFC 5802 §5.1: `=2C` is ',', `=3D` is '='; no other `=`).
fn decode_name(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// `printable` minus `,` (RFC 5802 §7), non-empty.
fn valid_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b',')
}

/// Optional extensions: `ALPHA "=" 1*value-char`, not a defined attribute.
fn valid_extensions<'a>(mut attrs: impl Iterator<Item = &'a str>) -> bool {
    attrs.all(|a| match a.as_bytes() {
        [letter, b'=', _, ..] => {
            letter.is_ascii_alphabetic() && !DEFINED_ATTRIBUTES.contains(letter)
        }
        _ => false,
    })
}

/// What the client-first-message says.
#[derive(Debug)]
struct ClientFirst {
    /// `gs2-header`, as sent (it comes back base64-encoded in `c=`).
    gs2_header: String,
    /// `client-first-message-bare`, as sent (part of AuthMessage).
    bare: String,
    /// The decoded username.
    username: String,
    /// The client's nonce.
    nonce: String,
}

fn parse_client_first(text: &str) -> Result<ClientFirst, SaslFailure> {
    use SaslFailure::{InvalidAuthzid, MalformedRequest};
    let (cbind, rest) = text.split_once(',').ok_or(MalformedRequest)?;
    let (authzid, bare) = rest.split_once(',').ok_or(MalformedRequest)?;
    // "p=<cb-name>" asks for channel binding, which we do not offer.
    if cbind != "n" && cbind != "y" {
        return Err(MalformedRequest);
    }
    let mut attrs = bare.split(',');
    let name = attrs.next().ok_or(MalformedRequest)?;
    // A leading "m=" is a mandatory extension we do not support; the prefix check refuses it.
    let name = name.strip_prefix("n=").ok_or(MalformedRequest)?;
    let nonce = attrs.next().and_then(|r| r.strip_prefix("r="));
    let nonce = nonce.filter(|n| valid_nonce(n)).ok_or(MalformedRequest)?;
    if !valid_extensions(attrs) {
        return Err(MalformedRequest);
    }
    let username = decode_name(name).filter(|u| acceptable_name(u));
    let username = username.ok_or(MalformedRequest)?;
    if !authzid.is_empty() {
        let a = authzid.strip_prefix("a=").and_then(decode_name);
        let a = a.filter(|a| acceptable_name(a)).ok_or(MalformedRequest)?;
        if a != username {
            return Err(InvalidAuthzid);
        }
    }
    Ok(ClientFirst {
        gs2_header: format!("{cbind},{authzid},"),
        bare: bare.to_owned(),
        username,
        nonce: nonce.to_owned(),
    })
}

/// What the client-final-message says.
struct ClientFinal<'a> {
    /// Decoded `c=`.
    channel_binding: Vec<u8>,
    /// `r=`.
    nonce: &'a str,
    /// client-final-message-without-proof (part of AuthMessage).
    without_proof: &'a str,
    /// Decoded `p=`.
    proof: Vec<u8>,
}

fn parse_client_final(text: &str) -> Result<ClientFinal<'_>, SaslFailure> {
    use SaslFailure::MalformedRequest;
    let (without_proof, proof) = text.rsplit_once(',').ok_or(MalformedRequest)?;
    let proof = proof.strip_prefix("p=").ok_or(MalformedRequest)?;
    let mut attrs = without_proof.split(',');
    let c = attrs.next().and_then(|c| c.strip_prefix("c="));
    let c = c.ok_or(MalformedRequest)?;
    let nonce = attrs.next().and_then(|r| r.strip_prefix("r="));
    let nonce = nonce.ok_or(MalformedRequest)?;
    if !valid_extensions(attrs) {
        return Err(MalformedRequest);
    }
    Ok(ClientFinal {
        channel_binding: B64.decode(c).map_err(|_| MalformedRequest)?,
        nonce,
        without_proof,
        proof: B64.decode(proof).map_err(|_| MalformedRequest)?,
    })
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the client-first-message.
    ExpectFirst,
    /// `FetchCredentials` was sent.
    WaitCredentials { first: ClientFirst },
    /// server-first-message was sent; waiting for the client-final-message.
    ExpectFinal {
        first: ClientFirst,
        creds: ScramCredentials,
        /// False when `creds` are dummy ones: the proof then never verifies.
        known: bool,
        server_first: String,
    },
    /// Finished.
    Done,
}

#[derive(Debug)]
pub(super) struct Scram {
    hash: ScramHash,
    server_nonce: String,
    phase: Phase,
}

impl Scram {
    pub(super) fn new(hash: ScramHash, server_nonce: String) -> Self {
        Scram {
            hash,
            server_nonce,
            phase: Phase::ExpectFirst,
        }
    }

    pub(super) fn response(&mut self, data: &[u8]) -> SaslStep {
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        let Ok(text) = std::str::from_utf8(data) else {
            return SaslStep::Failure(SaslFailure::MalformedRequest);
        };
        let result = match phase {
            Phase::ExpectFirst => self.client_first(text),
            Phase::ExpectFinal {
                first,
                creds,
                known,
                server_first,
            } => self.client_final(text, &first, &creds, known, &server_first),
            Phase::WaitCredentials { .. } | Phase::Done => Err(SaslFailure::MalformedRequest),
        };
        result.unwrap_or_else(SaslStep::Failure)
    }

    fn client_first(&mut self, text: &str) -> Result<SaslStep, SaslFailure> {
        let first = parse_client_first(text)?;
        if !valid_nonce(&self.server_nonce) {
            // The caller's nonce would corrupt server-first: a host bug, not the client's.
            return Err(SaslFailure::TemporaryAuthFailure);
        }
        let step = SaslStep::FetchCredentials {
            username: first.username.clone(),
            hash: self.hash,
        };
        self.phase = Phase::WaitCredentials { first };
        Ok(step)
    }

    pub(super) fn credentials(&mut self, creds: Option<ScramCredentials>) -> SaslStep {
        let Phase::WaitCredentials { first } = std::mem::replace(&mut self.phase, Phase::Done)
        else {
            return SaslStep::Failure(SaslFailure::MalformedRequest);
        };
        let known = creds.is_some();
        let creds = match creds {
            Some(c) => {
                if c.iterations > 0 {
                    LAST_ITERATIONS[hash_index(self.hash)].store(c.iterations, Ordering::Relaxed);
                }
                c
            }
            None => dummy_credentials(self.hash, &first.username),
        };
        let server_first = format!(
            "r={}{},s={},i={}",
            first.nonce,
            self.server_nonce,
            B64.encode(&creds.salt),
            creds.iterations
        );
        let step = SaslStep::Challenge(server_first.clone().into_bytes());
        self.phase = Phase::ExpectFinal {
            first,
            creds,
            known,
            server_first,
        };
        step
    }

    fn client_final(
        &mut self,
        text: &str,
        first: &ClientFirst,
        creds: &ScramCredentials,
        known: bool,
        server_first: &str,
    ) -> Result<SaslStep, SaslFailure> {
        let fin = parse_client_final(text)?;
        // Without channel binding, cbind-input is just the gs2-header.
        let nonce_ok = fin
            .nonce
            .strip_prefix(first.nonce.as_str())
            .is_some_and(|rest| rest == self.server_nonce);
        if fin.channel_binding != first.gs2_header.as_bytes() || !nonce_ok {
            return Err(SaslFailure::NotAuthorized);
        }
        let auth_message = format!("{},{server_first},{}", first.bare, fin.without_proof);
        let client_signature = hmac(self.hash, &creds.stored_key, auth_message.as_bytes());
        if fin.proof.len() != client_signature.len() {
            return Err(SaslFailure::NotAuthorized);
        }
        let client_key: Vec<u8> = fin
            .proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let ok =
            digest(self.hash, &client_key).ct_eq(&creds.stored_key) & Choice::from(u8::from(known));
        if !bool::from(ok) {
            return Err(SaslFailure::NotAuthorized);
        }
        let server_signature = hmac(self.hash, &creds.server_key, auth_message.as_bytes());
        Ok(SaslStep::Success {
            username: first.username.clone(),
            additional_data: Some(format!("v={}", B64.encode(server_signature)).into_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Mechanism, SaslServer};
    use super::*;

    const RFC5802_FIRST: &str = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
    const RFC5802_SNONCE: &str = "3rfcNHYJY1ZVvWVs7j";
    const RFC5802_FINAL: &str =
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn creds(hash: ScramHash, password: &str) -> ScramCredentials {
        derive_scram_credentials(hash, password, b"0123456789abcdef", 4096)
    }

    /// Start `mech` with `first` and answer the fetch with `creds`; returns the challenge.
    fn to_final(
        mech: Mechanism,
        first: &str,
        snonce: &str,
        creds: Option<ScramCredentials>,
    ) -> (SaslServer, String) {
        let (mut s, step) =
            SaslServer::start(mech, Some(first.as_bytes().to_vec()), snonce.to_owned());
        assert!(
            matches!(step, SaslStep::FetchCredentials { .. }),
            "{first}: {step:?}"
        );
        let SaslStep::Challenge(ch) = s.credentials(creds) else {
            panic!("server-first expected");
        };
        (s, String::from_utf8(ch).expect("utf-8"))
    }

    /// What a client computes: client-final-message for `password`.
    fn client_final(
        hash: ScramHash,
        password: &str,
        first: &str,
        server_first: &str,
        cbind: &str,
        extra: &str,
    ) -> String {
        let bare = first.splitn(3, ',').nth(2).expect("bare");
        let mut attrs = server_first.split(',');
        let nonce = attrs.next().and_then(|r| r.strip_prefix("r=")).expect("r");
        let salt = attrs.next().and_then(|s| s.strip_prefix("s=")).expect("s");
        let iterations = attrs.next().and_then(|i| i.strip_prefix("i=")).expect("i");
        let salted = pbkdf2_hmac(
            hash,
            password.as_bytes(),
            &B64.decode(salt).expect("salt"),
            iterations.parse().expect("iterations"),
        );
        let client_key = hmac(hash, &salted, b"Client Key");
        let without_proof = format!("c={},r={nonce}{extra}", B64.encode(cbind));
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let signature = hmac(hash, &digest(hash, &client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        format!("{without_proof},p={}", B64.encode(proof))
    }

    fn failure(f: SaslFailure) -> SaslStep {
        SaslStep::Failure(f)
    }

    #[test]
    fn rfc6070_pbkdf2_hmac_sha1() {
        let cases: [(&[u8], &[u8], u32, &str); 5] = [
            (
                b"password",
                b"salt",
                1,
                "0c60c80f961f0e71f3a9b524af6012062fe037a6",
            ),
            (
                b"password",
                b"salt",
                2,
                "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957",
            ),
            (
                b"password",
                b"salt",
                4096,
                "4b007901b765489abead49d926f721d065a429c1",
            ),
            // dkLen 25: the first block is the first 20 bytes.
            (
                b"passwordPASSWORDpassword",
                b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
                4096,
                "3d2eec4fe41c849b80c8d83662c0e44a8b291a96",
            ),
            // dkLen 16: a prefix of the first block.
            (
                b"pass\0word",
                b"sa\0lt",
                4096,
                "56fa6aa75548099dcc37d7f03425e0c3",
            ),
        ];
        for (password, salt, iterations, expected) in cases {
            let out = hex(&pbkdf2_hmac(ScramHash::Sha1, password, salt, iterations));
            assert_eq!(&out[..expected.len()], expected, "{iterations}");
        }
    }

    #[test]
    #[ignore = "16,777,216 iterations: slow"]
    fn rfc6070_pbkdf2_hmac_sha1_long() {
        assert_eq!(
            hex(&pbkdf2_hmac(
                ScramHash::Sha1,
                b"password",
                b"salt",
                16_777_216
            )),
            "eefe3d61cd4da4e4e9945b3d6ba2158c2634e984"
        );
    }

    #[test]
    fn rfc5802_example() {
        let salt = B64.decode("QSXCR+Q6sek8bf92").expect("salt");
        let creds = derive_scram_credentials(ScramHash::Sha1, "pencil", &salt, 4096);
        let (mut s, first) = to_final(
            Mechanism::ScramSha1,
            RFC5802_FIRST,
            RFC5802_SNONCE,
            Some(creds),
        );
        assert_eq!(
            first,
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
        );
        assert_eq!(
            s.response(RFC5802_FINAL.as_bytes().to_vec()),
            SaslStep::Success {
                username: "user".into(),
                additional_data: Some(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=".to_vec())
            }
        );
        assert!(s.is_done());
        // Anything after completion is refused.
        assert_eq!(
            s.response(RFC5802_FINAL.as_bytes().to_vec()),
            failure(SaslFailure::MalformedRequest)
        );
        assert_eq!(s.credentials(None), failure(SaslFailure::MalformedRequest));
    }

    #[test]
    fn rfc7677_example() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let creds = derive_scram_credentials(ScramHash::Sha256, "pencil", &salt, 4096);
        let (mut s, first) = to_final(
            Mechanism::ScramSha256,
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            Some(creds),
        );
        assert_eq!(
            first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let last = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                    p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            s.response(last.as_bytes().to_vec()),
            SaslStep::Success {
                username: "user".into(),
                additional_data: Some(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec())
            }
        );
    }

    #[test]
    fn empty_challenge_then_client_first() {
        let (mut s, step) = SaslServer::start(Mechanism::ScramSha1, None, RFC5802_SNONCE.into());
        assert_eq!(step, SaslStep::Challenge(Vec::new()));
        assert_eq!(
            s.response(RFC5802_FIRST.as_bytes().to_vec()),
            SaslStep::FetchCredentials {
                username: "user".into(),
                hash: ScramHash::Sha1
            }
        );
        // A response while the plugin is being asked is a protocol error.
        assert_eq!(
            s.response(b"c=biws".to_vec()),
            failure(SaslFailure::MalformedRequest)
        );
        let (_, step) = SaslServer::start(
            Mechanism::ScramSha1,
            Some(Vec::new()),
            RFC5802_SNONCE.into(),
        );
        assert_eq!(step, failure(SaslFailure::MalformedRequest));
    }

    #[test]
    fn client_computed_exchanges() {
        // 'y' flag, an authzid equal to the username, escaped names, ignored extensions, and
        // iteration counts below 4096 as stored.
        let cases = [
            ("n,,n=user,r=abc", "user", "n,,", ""),
            ("y,,n=user,r=abc", "user", "y,,", ""),
            ("n,a=user,n=user,r=abc", "user", "n,a=user,", ""),
            ("n,a=a=2Cb,n=a=2Cb,r=abc", "a,b", "n,a=a=2Cb,", ""),
            ("n,,n=a=3Db,r=abc,x=ext", "a=b", "n,,", ",y=final-ext"),
        ];
        for hash in [ScramHash::Sha1, ScramHash::Sha256] {
            let mech = if hash == ScramHash::Sha1 {
                Mechanism::ScramSha1
            } else {
                Mechanism::ScramSha256
            };
            for (first, user, cbind, extra) in cases {
                let stored = derive_scram_credentials(hash, "pw", b"salty", 1);
                let (mut s, sf) = to_final(mech, first, "xyz", Some(stored));
                assert!(sf.ends_with(",i=1"), "{sf}");
                let last = client_final(hash, "pw", first, &sf, cbind, extra);
                assert!(
                    matches!(
                        s.response(last.into_bytes()),
                        SaslStep::Success { ref username, additional_data: Some(_) } if username == user
                    ),
                    "{first}"
                );
            }
        }
    }

    #[test]
    fn wrong_password() {
        let (mut s, sf) = to_final(
            Mechanism::ScramSha256,
            "n,,n=user,r=abc",
            "xyz",
            Some(creds(ScramHash::Sha256, "right")),
        );
        let last = client_final(
            ScramHash::Sha256,
            "wrong",
            "n,,n=user,r=abc",
            &sf,
            "n,,",
            "",
        );
        assert_eq!(
            s.response(last.into_bytes()),
            failure(SaslFailure::NotAuthorized)
        );
    }

    #[test]
    fn unknown_user_fails_only_at_the_end() {
        let first = "n,,n=ghost,r=abc";
        let (mut s, sf) = to_final(Mechanism::ScramSha1, first, "xyz", None);
        // A normal-looking server-first: 16-byte salt, stable per username.
        let salt = sf
            .split(',')
            .nth(1)
            .and_then(|s| s.strip_prefix("s="))
            .expect("salt");
        assert!(sf.starts_with("r=abcxyz,s="), "{sf}");
        assert_eq!(B64.decode(salt).expect("b64").len(), 16);
        let (_, again) = to_final(Mechanism::ScramSha1, first, "xyz", None);
        assert_eq!(sf, again);
        let (_, other) = to_final(Mechanism::ScramSha1, "n,,n=ghost2,r=abc", "xyz", None);
        assert_ne!(sf.split(',').nth(1), other.split(',').nth(1));
        // Whatever password the client tries, the proof never verifies.
        let last = client_final(ScramHash::Sha1, "", first, &sf, "n,,", "");
        assert_eq!(
            s.response(last.into_bytes()),
            failure(SaslFailure::NotAuthorized)
        );
    }

    #[test]
    fn bad_client_first() {
        let malformed = [
            "p=tls-unique,,n=user,r=x",
            "p=tls-exporter,a=user,n=user,r=x",
            "x,,n=user,r=x",
            "N,,n=user,r=x",
            " n,,n=user,r=x",
            "n",
            "n,",
            "n,,",
            "n,,n=user",
            "n,,n=user,",
            "n,,n=user,r=",
            "n,,n=user,r=a b",
            "n,,n=user,r=x\u{e9}",
            "n,,n=,r=x",
            "n,,n=us=2Xer,r=x",
            "n,,n=user=,r=x",
            "n,,n=us\u{1}er,r=x",
            "n,,n=us\0er,r=x",
            "n,,m=ext,n=user,r=x",
            "n,,r=x,n=user",
            "n,,n=user,r=x,r=y",
            "n,,n=user,r=x,m=ext",
            "n,,n=user,r=x,1=ext",
            "n,,n=user,r=x,x=",
            "n,,n=user,r=x,,",
            "n,x=user,n=user,r=x",
            "n,a=,n=user,r=x",
            "n,a=us=2er,n=user,r=x",
        ];
        for first in malformed {
            let (s, step) = SaslServer::start(
                Mechanism::ScramSha256,
                Some(first.as_bytes().to_vec()),
                "s".into(),
            );
            assert_eq!(step, failure(SaslFailure::MalformedRequest), "{first:?}");
            assert!(s.is_done());
        }
        for first in ["n,a=other,n=user,r=x", "y,a=User,n=user,r=x"] {
            let (_, step) = SaslServer::start(
                Mechanism::ScramSha1,
                Some(first.as_bytes().to_vec()),
                "s".into(),
            );
            assert_eq!(step, failure(SaslFailure::InvalidAuthzid), "{first}");
        }
        let (_, step) = SaslServer::start(
            Mechanism::ScramSha1,
            Some(vec![b'n', b',', 0xff]),
            "s".into(),
        );
        assert_eq!(step, failure(SaslFailure::MalformedRequest));
    }

    #[test]
    fn bad_server_nonce_is_a_host_failure() {
        let (_, step) = SaslServer::start(
            Mechanism::ScramSha1,
            Some(b"n,,n=user,r=x".to_vec()),
            "a,b".into(),
        );
        assert_eq!(step, failure(SaslFailure::TemporaryAuthFailure));
    }

    #[test]
    fn bad_client_final() {
        let first = "n,,n=user,r=abc";
        let good = {
            let (_, sf) = to_final(
                Mechanism::ScramSha1,
                first,
                "xyz",
                Some(creds(ScramHash::Sha1, "pw")),
            );
            client_final(ScramHash::Sha1, "pw", first, &sf, "n,,", "")
        };
        let proof = good.rsplit_once(",p=").expect("proof").1;
        let cases = [
            // Tampered channel binding ("y,," and "n,a=user,"), wrong nonces.
            (
                format!("c=eSws,r=abcxyz,p={proof}"),
                SaslFailure::NotAuthorized,
            ),
            (
                format!("c=bixhPXVzZXIs,r=abcxyz,p={proof}"),
                SaslFailure::NotAuthorized,
            ),
            (format!("c=,r=abcxyz,p={proof}"), SaslFailure::NotAuthorized),
            (
                format!("c=biws,r=abc,p={proof}"),
                SaslFailure::NotAuthorized,
            ),
            (
                format!("c=biws,r=abcxyzz,p={proof}"),
                SaslFailure::NotAuthorized,
            ),
            (
                format!("c=biws,r=xyz,p={proof}"),
                SaslFailure::NotAuthorized,
            ),
            // Proof of the wrong length or not base64.
            (
                "c=biws,r=abcxyz,p=AAAA".to_owned(),
                SaslFailure::NotAuthorized,
            ),
            ("c=biws,r=abcxyz,p=".to_owned(), SaslFailure::NotAuthorized),
            (
                "c=biws,r=abcxyz,p=***".to_owned(),
                SaslFailure::MalformedRequest,
            ),
            (
                "c=b*ws,r=abcxyz,p=AAAA".to_owned(),
                SaslFailure::MalformedRequest,
            ),
            // Shape.
            ("c=biws,r=abcxyz".to_owned(), SaslFailure::MalformedRequest),
            (
                format!("r=abcxyz,c=biws,p={proof}"),
                SaslFailure::MalformedRequest,
            ),
            (format!("c=biws,p={proof}"), SaslFailure::MalformedRequest),
            (
                format!("c=biws,r=abcxyz,p={proof},x=y"),
                SaslFailure::MalformedRequest,
            ),
            (
                format!("c=biws,r=abcxyz,r=abcxyz,p={proof}"),
                SaslFailure::MalformedRequest,
            ),
            (
                format!("c=biws,r=abcxyz,m=x,p={proof}"),
                SaslFailure::MalformedRequest,
            ),
            (String::new(), SaslFailure::MalformedRequest),
        ];
        for (last, expected) in cases {
            let (mut s, _) = to_final(
                Mechanism::ScramSha1,
                first,
                "xyz",
                Some(creds(ScramHash::Sha1, "pw")),
            );
            assert_eq!(
                s.response(last.clone().into_bytes()),
                failure(expected),
                "{last}"
            );
            assert_eq!(
                s.response(good.clone().into_bytes()),
                failure(SaslFailure::MalformedRequest),
                "after {last}"
            );
        }
        // Every truncation of a good final message fails.
        for cut in 0..good.len() {
            let (mut s, _) = to_final(
                Mechanism::ScramSha1,
                first,
                "xyz",
                Some(creds(ScramHash::Sha1, "pw")),
            );
            assert!(
                matches!(
                    s.response(good.as_bytes()[..cut].to_vec()),
                    SaslStep::Failure(_)
                ),
                "{cut}"
            );
        }
    }

    #[test]
    fn truncated_and_garbage_input_never_panics() {
        for cut in 0..=RFC5802_FIRST.len() {
            let (_, step) = SaslServer::start(
                Mechanism::ScramSha1,
                Some(RFC5802_FIRST.as_bytes()[..cut].to_vec()),
                RFC5802_SNONCE.into(),
            );
            // Prefixes that stop inside the nonce are valid messages with a shorter nonce.
            let valid = cut > "n,,n=user,r=".len();
            assert_eq!(
                matches!(step, SaslStep::FetchCredentials { .. }),
                valid,
                "{cut}"
            );
        }
        let mut x: u32 = 0x1234_5678;
        let alphabet = b"nyprcams=,2CD3Aa\0\xff";
        let stored = creds(ScramHash::Sha256, "pw");
        for len in 0..200 {
            let data: Vec<u8> = (0..len % 40)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    alphabet[(x >> 16) as usize % alphabet.len()]
                })
                .collect();
            let (mut s, _) = to_final(
                Mechanism::ScramSha256,
                "n,,n=user,r=abc",
                "xyz",
                Some(stored.clone()),
            );
            assert!(matches!(s.response(data.clone()), SaslStep::Failure(_)));
            let _ = SaslServer::start(Mechanism::ScramSha256, Some(data), "xyz".into());
        }
    }
}
