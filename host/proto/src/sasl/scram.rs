//! SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677), server side, without channel binding
//! (the `-PLUS` variants are not offered), plus PBKDF2 and credential derivation.
//!
//! Core (pure; the nonce and the server secret come from the caller). Invariants: the proof is
//! compared in constant time; an unknown user runs the whole exchange with stand-in credentials
//! and fails only at the end, so the exchange does not reveal which accounts exist. Their salt
//! is `unknown_user_salt`: keyed by the server secret (so nobody without it can compute it and
//! compare), stable per account (a repeated probe sees the same salt, as for a real account),
//! as long as auth-internal's salts and with its default iteration count. An authzid other
//! than the user's own account is `invalid-authzid` (RFC 6120 §6.4.6).
//! Tests: `mod tests` below (RFC 5802 §5, RFC 7677 §3, RFC 6070 vectors).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use lilt_scram::Hash;
use subtle::ConstantTimeEq;

use super::{
    SaslContext, SaslFailure, SaslSecret, SaslStep, ScramCredentials, ScramHash, acceptable_name,
    account_of, authzid_allowed,
};

/// Salt length of an unknown user's stand-in credentials: what auth-internal gives real
/// accounts (16 random bytes per hash).
const UNKNOWN_SALT_LEN: usize = 16;
/// Iteration count of an unknown user's stand-in credentials: auth-internal's default for new
/// accounts (`iterations = 4096`, the RFC 5802 minimum).
const UNKNOWN_ITERATIONS: u32 = 4096;

fn sdk_hash(hash: ScramHash) -> Hash {
    match hash {
        ScramHash::Sha1 => Hash::Sha1,
        ScramHash::Sha256 => Hash::Sha256,
    }
}

fn hmac(hash: ScramHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    lilt_scram::hmac(sdk_hash(hash), key, data)
}

fn digest(hash: ScramHash, data: &[u8]) -> Vec<u8> {
    lilt_scram::digest(sdk_hash(hash), data)
}

/// PBKDF2 with HMAC-`hash`, one output block: SCRAM's Hi() (RFC 5802 §2.2).
pub fn pbkdf2_hmac(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    lilt_scram::pbkdf2(sdk_hash(hash), password, salt, iterations)
}

/// Derive stored SCRAM credentials from a password (the same code auth plugins use).
pub fn derive_scram_credentials(
    hash: ScramHash,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> ScramCredentials {
    let (stored_key, server_key) =
        lilt_scram::scram_keys(sdk_hash(hash), password, salt, iterations);
    ScramCredentials {
        salt: salt.to_vec(),
        iterations,
        stored_key,
        server_key,
    }
}

/// The stand-in SCRAM salt of an account that does not exist:
/// HMAC-SHA256(secret, "lilt-scram-salt" 0 vhost 0 account 0 mechanism), first 16 bytes.
/// `account` is the normalized localpart (`account_of`), so every spelling of one name gets
/// one salt, and the mechanism is included because a real account has one salt per hash.
pub(super) fn unknown_user_salt(
    secret: &SaslSecret,
    vhost: &str,
    account: &str,
    hash: ScramHash,
) -> Vec<u8> {
    let mechanism = match hash {
        ScramHash::Sha1 => "SCRAM-SHA-1",
        ScramHash::Sha256 => "SCRAM-SHA-256",
    };
    let message = [
        &b"lilt-scram-salt"[..],
        vhost.as_bytes(),
        account.as_bytes(),
        mechanism.as_bytes(),
    ]
    .join(&0u8);
    let mut mac = lilt_scram::hmac(Hash::Sha256, secret.bytes(), &message);
    mac.truncate(UNKNOWN_SALT_LEN);
    mac
}

#[derive(Debug)]
enum Phase {
    ExpectFirst,
    WaitCredentials,
    ExpectFinal {
        creds: ScramCredentials,
        known: bool,
        server_first: String,
    },
    Done,
}

#[derive(Debug)]
pub(super) struct Scram {
    hash: ScramHash,
    cx: SaslContext,
    username: String,
    gs2_header: String,
    client_first_bare: String,
    nonce: String,
    phase: Phase,
}

fn fail(f: SaslFailure) -> SaslStep {
    SaslStep::Failure(f)
}

/// Decode a SCRAM `saslname` (RFC 5802 §5.1: `=2C` is ',', `=3D` is '=').
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

impl Scram {
    pub(super) fn new(hash: ScramHash, cx: SaslContext) -> Self {
        Scram {
            hash,
            cx,
            username: String::new(),
            gs2_header: String::new(),
            client_first_bare: String::new(),
            nonce: String::new(),
            phase: Phase::ExpectFirst,
        }
    }

    pub(super) fn response(&mut self, data: &[u8]) -> SaslStep {
        let Ok(text) = std::str::from_utf8(data) else {
            return fail(SaslFailure::MalformedRequest);
        };
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::ExpectFirst => self.client_first(text),
            Phase::ExpectFinal {
                creds,
                known,
                server_first,
            } => self.client_final(text, &creds, known, &server_first),
            _ => fail(SaslFailure::MalformedRequest),
        }
    }

    fn client_first(&mut self, text: &str) -> SaslStep {
        // gs2-header = gs2-cbind-flag "," [ authzid ] ","
        let mut parts = text.splitn(3, ',');
        let (Some(cbind), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next())
        else {
            return fail(SaslFailure::MalformedRequest);
        };
        if cbind != "n" && cbind != "y" {
            // "p=…": channel binding we did not offer.
            return fail(SaslFailure::MalformedRequest);
        }
        let mut attrs = bare.split(',');
        let (Some(n), Some(r)) = (attrs.next(), attrs.next()) else {
            return fail(SaslFailure::MalformedRequest);
        };
        if attrs.next().is_some() || n.starts_with("m=") {
            return fail(SaslFailure::MalformedRequest);
        }
        let (Some(name), Some(nonce)) = (n.strip_prefix("n="), r.strip_prefix("r=")) else {
            return fail(SaslFailure::MalformedRequest);
        };
        let Some(username) = decode_name(name).filter(|u| acceptable_name(u)) else {
            return fail(SaslFailure::MalformedRequest);
        };
        if !authzid.is_empty() {
            match authzid.strip_prefix("a=").and_then(decode_name) {
                Some(a) if !a.is_empty() && authzid_allowed(&a, &username, &self.cx.vhost) => {}
                _ => return fail(SaslFailure::InvalidAuthzid),
            }
        }
        if nonce.is_empty()
            || nonce.contains(',')
            || !nonce.bytes().all(|b| (0x21..0x7f).contains(&b))
        {
            return fail(SaslFailure::MalformedRequest);
        }
        self.gs2_header = format!("{cbind},{authzid},");
        self.client_first_bare = bare.to_owned();
        self.nonce = format!("{nonce}{}", self.cx.server_nonce);
        self.username = username.clone();
        self.phase = Phase::WaitCredentials;
        SaslStep::FetchCredentials {
            username,
            hash: self.hash,
        }
    }

    pub(super) fn credentials(&mut self, creds: Option<ScramCredentials>) -> SaslStep {
        if !matches!(self.phase, Phase::WaitCredentials) {
            return fail(SaslFailure::MalformedRequest);
        }
        let known = creds.is_some();
        let creds = creds.unwrap_or_else(|| {
            let vhost = &self.cx.vhost;
            let account =
                account_of(&self.username, vhost).unwrap_or_else(|| self.username.clone());
            let key_len = digest(self.hash, b"").len();
            ScramCredentials {
                salt: unknown_user_salt(&self.cx.secret, vhost, &account, self.hash),
                iterations: UNKNOWN_ITERATIONS,
                stored_key: vec![0; key_len],
                server_key: vec![0; key_len],
            }
        });
        let server_first = format!(
            "r={},s={},i={}",
            self.nonce,
            B64.encode(&creds.salt),
            creds.iterations
        );
        self.phase = Phase::ExpectFinal {
            creds,
            known,
            server_first: server_first.clone(),
        };
        SaslStep::Challenge(server_first.into_bytes())
    }

    fn client_final(
        &mut self,
        text: &str,
        creds: &ScramCredentials,
        known: bool,
        server_first: &str,
    ) -> SaslStep {
        let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
            return fail(SaslFailure::MalformedRequest);
        };
        let mut attrs = without_proof.split(',');
        let (Some(c), Some(r)) = (attrs.next(), attrs.next()) else {
            return fail(SaslFailure::MalformedRequest);
        };
        if attrs.next().is_some() {
            return fail(SaslFailure::MalformedRequest);
        }
        let expected_c = B64.encode(self.gs2_header.as_bytes());
        if c.strip_prefix("c=") != Some(expected_c.as_str()) {
            return fail(SaslFailure::NotAuthorized);
        }
        if r.strip_prefix("r=") != Some(self.nonce.as_str()) {
            return fail(SaslFailure::NotAuthorized);
        }
        let Ok(proof) = B64.decode(proof) else {
            return fail(SaslFailure::IncorrectEncoding);
        };
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac(self.hash, &creds.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return fail(SaslFailure::NotAuthorized);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        // An unknown user goes through the same steps and fails here.
        let ok: bool = digest(self.hash, &client_key)
            .ct_eq(&creds.stored_key)
            .into();
        if !ok || !known {
            return fail(SaslFailure::NotAuthorized);
        }
        let server_signature = hmac(self.hash, &creds.server_key, auth_message.as_bytes());
        SaslStep::Success {
            username: std::mem::take(&mut self.username),
            additional_data: Some(format!("v={}", B64.encode(server_signature)).into_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cx;
    use super::super::{Mechanism, SaslServer};
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn rfc6070_pbkdf2_sha1() {
        assert_eq!(
            hex(&pbkdf2_hmac(ScramHash::Sha1, b"password", b"salt", 1)),
            "0c60c80f961f0e71f3a9b524af6012062fe037a6"
        );
        assert_eq!(
            hex(&pbkdf2_hmac(ScramHash::Sha1, b"password", b"salt", 2)),
            "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"
        );
        assert_eq!(
            hex(&pbkdf2_hmac(ScramHash::Sha1, b"password", b"salt", 4096)),
            "4b007901b765489abead49d926f721d065a429c1"
        );
    }

    fn exchange(
        mech: Mechanism,
        snonce: &str,
        cfirst: &str,
        password: &str,
        salt_b64: &str,
        cfinal: &str,
    ) -> (SaslStep, SaslStep) {
        let hash = mech.scram_hash().expect("scram");
        let (mut s, step) = SaslServer::start(mech, Some(cfirst.as_bytes().to_vec()), cx(snonce));
        assert_eq!(
            step,
            SaslStep::FetchCredentials {
                username: "user".into(),
                hash
            }
        );
        let salt = B64.decode(salt_b64).expect("salt");
        let first = s.credentials(Some(derive_scram_credentials(hash, password, &salt, 4096)));
        let last = s.response(cfinal.as_bytes().to_vec());
        (first, last)
    }

    #[test]
    fn rfc5802_example() {
        let (first, last) = exchange(
            Mechanism::ScramSha1,
            "3rfcNHYJY1ZVvWVs7j",
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "pencil",
            "QSXCR+Q6sek8bf92",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        );
        assert_eq!(
            first,
            SaslStep::Challenge(
                b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096".to_vec()
            )
        );
        assert_eq!(
            last,
            SaslStep::Success {
                username: "user".into(),
                additional_data: Some(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=".to_vec())
            }
        );
    }

    #[test]
    fn rfc7677_example() {
        let (first, last) = exchange(
            Mechanism::ScramSha256,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "pencil",
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        );
        assert_eq!(
            first,
            SaslStep::Challenge(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_vec())
        );
        assert_eq!(
            last,
            SaslStep::Success {
                username: "user".into(),
                additional_data: Some(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec())
            }
        );
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_at_the_end() {
        let (_, last) = exchange(
            Mechanism::ScramSha1,
            "3rfcNHYJY1ZVvWVs7j",
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "wrong",
            "QSXCR+Q6sek8bf92",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        );
        assert_eq!(last, SaslStep::Failure(SaslFailure::NotAuthorized));
        let (mut s, _) = SaslServer::start(
            Mechanism::ScramSha1,
            Some(b"n,,n=ghost,r=abc".to_vec()),
            cx("def"),
        );
        let SaslStep::Challenge(ch) = s.credentials(None) else {
            panic!("challenge expected")
        };
        assert!(String::from_utf8_lossy(&ch).starts_with("r=abcdef,s="));
        assert_eq!(
            s.response(b"c=biws,r=abcdef,p=AAAA".to_vec()),
            SaslStep::Failure(SaslFailure::NotAuthorized)
        );
    }

    #[test]
    fn malformed_messages() {
        for first in [
            "p=tls-unique,,n=user,r=x",
            "n,,n=user",
            "n,,m=ext,n=user,r=x",
            "n,,n=us=2Xer,r=x",
            "x,,n=user,r=x",
            "n,,n=,r=x",
        ] {
            let (_, step) = SaslServer::start(
                Mechanism::ScramSha256,
                Some(first.as_bytes().to_vec()),
                cx("s"),
            );
            assert_eq!(
                step,
                SaslStep::Failure(SaslFailure::MalformedRequest),
                "{first}"
            );
        }
        let (_, step) = SaslServer::start(
            Mechanism::ScramSha1,
            Some(b"n,a=other,n=user,r=x".to_vec()),
            cx("s"),
        );
        assert_eq!(step, SaslStep::Failure(SaslFailure::InvalidAuthzid));
        let (_, step) = SaslServer::start(
            Mechanism::ScramSha1,
            Some(b"n,,n=a=2Cb=3Dc,r=x".to_vec()),
            cx("s"),
        );
        assert_eq!(
            step,
            SaslStep::FetchCredentials {
                username: "a,b=c".into(),
                hash: ScramHash::Sha1
            }
        );
        // Tampered channel binding, wrong nonce, bad base64, message after completion.
        for last in [
            "c=eSws,r=xs,p=AAAA",
            "c=biws,r=other,p=AAAA",
            "c=biws,r=xs,p=***",
            "c=biws,r=xs",
        ] {
            let (mut s, _) = SaslServer::start(
                Mechanism::ScramSha1,
                Some(b"n,,n=user,r=x".to_vec()),
                cx("s"),
            );
            s.credentials(Some(derive_scram_credentials(
                ScramHash::Sha1,
                "pw",
                b"salt",
                4096,
            )));
            assert!(
                matches!(s.response(last.as_bytes().to_vec()), SaslStep::Failure(_)),
                "{last}"
            );
            assert_eq!(
                s.response(b"x".to_vec()),
                SaslStep::Failure(SaslFailure::MalformedRequest)
            );
        }
    }

    /// The server-first message an unknown user gets, and its salt.
    fn unknown_user_first(cx: SaslContext, mech: Mechanism, user: &str) -> (String, Vec<u8>) {
        let first = format!("n,,n={user},r=abc");
        let (mut s, step) = SaslServer::start(mech, Some(first.into_bytes()), cx);
        assert!(
            matches!(step, SaslStep::FetchCredentials { .. }),
            "{step:?}"
        );
        let SaslStep::Challenge(ch) = s.credentials(None) else {
            panic!("challenge expected")
        };
        let text = String::from_utf8(ch).expect("utf-8");
        let salt = text
            .split(',')
            .find_map(|p| p.strip_prefix("s="))
            .map(|s| B64.decode(s).expect("base64 salt"))
            .expect("s=");
        (text, salt)
    }

    fn with_secret(secret: &[u8]) -> SaslContext {
        SaslContext {
            secret: SaslSecret::new(secret.to_vec()),
            ..cx("def")
        }
    }

    #[test]
    fn unknown_user_salt_is_stable_per_user_and_keyed_by_the_secret() {
        let a = with_secret(&[1; 32]);
        let b = with_secret(&[2; 32]);
        let m = Mechanism::ScramSha256;
        let (text, ghost) = unknown_user_first(a.clone(), m, "ghost");
        // Same shape as a real account's: 16-byte salt, auth-internal's default count.
        assert!(text.ends_with(",i=4096"), "{text}");
        assert_eq!(ghost.len(), 16);
        // Stable: a repeated probe (and any spelling of the same account) sees the same salt.
        assert_eq!(unknown_user_first(a.clone(), m, "ghost").1, ghost);
        assert_eq!(unknown_user_first(a.clone(), m, "Ghost@X").1, ghost);
        // Different users, mechanisms, vhosts and secrets get different salts.
        assert_ne!(unknown_user_first(a.clone(), m, "phantom").1, ghost);
        assert_ne!(
            unknown_user_first(a.clone(), Mechanism::ScramSha1, "ghost").1,
            ghost
        );
        let other_vhost = SaslContext {
            vhost: "y".into(),
            ..a.clone()
        };
        assert_ne!(unknown_user_first(other_vhost, m, "ghost").1, ghost);
        assert_ne!(unknown_user_first(b, m, "ghost").1, ghost);
        // Not the value anyone could compute from the username (the former derivation).
        for hash in [ScramHash::Sha1, ScramHash::Sha256] {
            let old = digest(hash, b"lilt-dummy-salt:ghost");
            assert_ne!(ghost, old[..16]);
            let (_, salt) = unknown_user_first(
                a.clone(),
                if hash == ScramHash::Sha1 {
                    Mechanism::ScramSha1
                } else {
                    m
                },
                "ghost",
            );
            assert_ne!(salt, old[..16]);
        }
        // The published formula, pinned.
        let mut expected = lilt_scram::hmac(
            Hash::Sha256,
            &[1; 32],
            b"lilt-scram-salt\0x\0ghost\0SCRAM-SHA-256",
        );
        expected.truncate(16);
        assert_eq!(ghost, expected);
    }

    #[test]
    fn unknown_user_runs_to_the_end_even_with_a_well_formed_proof() {
        // A proof of the right length for the stand-in salt still fails, at the end.
        let (mut s, _) = SaslServer::start(
            Mechanism::ScramSha256,
            Some(b"n,,n=ghost,r=abc".to_vec()),
            cx("def"),
        );
        let SaslStep::Challenge(ch) = s.credentials(None) else {
            panic!("challenge expected")
        };
        let server_first = String::from_utf8(ch).expect("utf-8");
        let proof = B64.encode([0u8; 32]);
        assert_eq!(
            s.response(format!("c=biws,r=abcdef,p={proof}").into_bytes()),
            SaslStep::Failure(SaslFailure::NotAuthorized),
            "{server_first}"
        );
        assert!(s.is_done());
    }

    #[test]
    fn authzid() {
        let start = |first: &str| {
            SaslServer::start(
                Mechanism::ScramSha1,
                Some(first.as_bytes().to_vec()),
                cx("s"),
            )
            .1
        };
        for ok in [
            "n,a=user,n=user,r=x",
            "n,a=user@x,n=user,r=x",
            "n,a=User@X,n=user,r=x",
            "y,a=user@x,n=user@x,r=x",
        ] {
            assert!(
                matches!(start(ok), SaslStep::FetchCredentials { .. }),
                "{ok}"
            );
        }
        for bad in [
            "n,a=other,n=user,r=x",
            "n,a=other@x,n=user,r=x",
            "n,a=user@y,n=user,r=x",
            "n,a=user@x/desk,n=user,r=x",
            "n,a=,n=user,r=x",
            "n,b=user,n=user,r=x",
        ] {
            assert_eq!(
                start(bad),
                SaslStep::Failure(SaslFailure::InvalidAuthzid),
                "{bad}"
            );
        }
    }
}
