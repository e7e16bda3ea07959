//! Client side of SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677), written for the raw
//! client so that the server's SCRAM is checked against an implementation it does not share.
//!
//! Core (pure functions over strings and bytes). Spec: RFC 5802 §3 (algorithm) and §7
//! (message formats); no channel binding (`n,,`, GS2 header `biws`).
//! Invariants: the server nonce must extend ours; the server signature is always verified.
//! Tests: `mod tests` below (RFC 5802 §5 and RFC 7677 §3 example exchanges); end-to-end in
//! tests/all/login.rs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac as _};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

/// The hash of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScramHash {
    /// SCRAM-SHA-1.
    Sha1,
    /// SCRAM-SHA-256.
    Sha256,
}

impl ScramHash {
    /// The SASL mechanism name.
    pub(crate) fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SCRAM-SHA-1",
            ScramHash::Sha256 => "SCRAM-SHA-256",
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => {
                let mut m = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    pub(crate) fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramHash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// One SCRAM exchange, client side.
pub(crate) struct ScramClient {
    hash: ScramHash,
    user: String,
    password: String,
    nonce: String,
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// A new exchange with a random client nonce.
    pub(crate) fn new(hash: ScramHash, user: &str, password: &str) -> ScramClient {
        let nonce = B64.encode(rand::random::<[u8; 18]>());
        ScramClient::with_nonce(hash, user, password, &nonce)
    }

    /// A new exchange with a fixed nonce (for the RFC test vectors).
    pub(crate) fn with_nonce(
        hash: ScramHash,
        user: &str,
        password: &str,
        nonce: &str,
    ) -> ScramClient {
        ScramClient {
            hash,
            user: user.replace('=', "=3D").replace(',', "=2C"),
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            server_signature: None,
        }
    }

    fn client_first_bare(&self) -> String {
        format!("n={},r={}", self.user, self.nonce)
    }

    /// client-first-message.
    pub(crate) fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare())
    }

    /// client-final-message for the given server-first-message.
    ///
    /// # Errors
    /// When the server message is malformed or its nonce does not extend ours.
    pub(crate) fn client_final(&mut self, server_first: &str) -> Result<String, String> {
        let (h, password) = (self.hash, self.password.clone());
        self.client_final_with(server_first, |salt, i| h.hi(password.as_bytes(), salt, i))
    }

    /// `client_final` with the salted password from `salted(salt, iterations)`, so a load
    /// generator can cache it (PBKDF2 is meant to be slow, and would bound the login rate).
    ///
    /// # Errors
    /// As `client_final`.
    pub(crate) fn client_final_with(
        &mut self,
        server_first: &str,
        salted: impl FnOnce(&[u8], u32) -> Vec<u8>,
    ) -> Result<String, String> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for part in server_first.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(B64.decode(v).map_err(|e| format!("bad salt: {e}"))?),
                Some(("i", v)) => {
                    iterations = Some(v.parse::<u32>().map_err(|e| format!("bad i: {e}"))?)
                }
                Some(("m", _)) => return Err("server asked for a mandatory extension".into()),
                _ => {}
            }
        }
        let nonce = nonce.ok_or("server-first without r=")?;
        let salt = salt.ok_or("server-first without s=")?;
        let iterations = iterations.ok_or("server-first without i=")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err(format!(
                "server nonce {nonce:?} does not extend ours {:?}",
                self.nonce
            ));
        }
        if iterations == 0 {
            return Err("i=0".into());
        }
        let h = self.hash;
        let salted = salted(&salt, iterations);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!(
            "{},{server_first},{without_proof}",
            self.client_first_bare()
        );
        let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = h.hmac(&salted, b"Server Key");
        self.server_signature = Some(h.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Check server-final-message (`v=...`).
    ///
    /// # Errors
    /// When it is an error (`e=...`), malformed, or the signature is wrong.
    pub(crate) fn verify_server_final(&self, server_final: &str) -> Result<(), String> {
        let expected = self
            .server_signature
            .as_ref()
            .ok_or("no client-final sent yet")?;
        if let Some(e) = server_final.strip_prefix("e=") {
            return Err(format!("server error {e}"));
        }
        let v = server_final
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .ok_or_else(|| format!("server-final without v=: {server_final:?}"))?;
        let got = B64.decode(v).map_err(|e| format!("bad v=: {e}"))?;
        if &got == expected {
            Ok(())
        } else {
            Err("server signature mismatch".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5802_example() {
        let mut c = ScramClient::with_nonce(
            ScramHash::Sha1,
            "user",
            "pencil",
            "fyko+d2lbbFgONRv9qkxdawL",
        );
        assert_eq!(c.client_first(), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let fin = c
            .client_final("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
            .expect("client final");
        assert_eq!(
            fin,
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        assert_eq!(
            c.verify_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ="),
            Ok(())
        );
        assert!(
            c.verify_server_final("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .is_err()
        );
    }

    #[test]
    fn rfc7677_example() {
        let mut c =
            ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        let fin = c
            .client_final("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .expect("client final");
        assert_eq!(
            fin,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            c.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Ok(())
        );
    }

    #[test]
    fn refuses_foreign_nonce() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha1, "user", "pencil", "abc");
        assert!(
            c.client_final("r=xyzabc,s=QSXCR+Q6sek8bf92,i=4096")
                .is_err()
        );
    }
}
