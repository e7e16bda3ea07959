//! What Lilt plugin authors share: SCRAM credential derivation (RFC 5802 §3, RFC 7677),
//! PBKDF2-HMAC, constant-time comparison and strict settings parsing.
//!
//! Pure Rust, no bindings: it builds natively (tests below) and for wasm32-wasip2. The SCRAM
//! primitives come from `lilt-scram`, which the host's SCRAM verifier uses too, so both sides
//! derive keys from one implementation.
//! Invariants: derived credentials match the host's SCRAM verifier byte for byte (tested
//! against the RFC examples); settings with unknown keys are refused.

pub mod hooks;
pub mod xml;

use serde::de::DeserializeOwned;

pub use lilt_scram::{Hash, ct_eq, digest, hmac, pbkdf2, scram_keys};

/// Parse plugin settings JSON into `T` (which should use `#[serde(deny_unknown_fields)]`);
/// `null` and `{}` both mean "all defaults".
///
/// # Errors
/// A message naming the offending key.
pub fn parse_settings<T: DeserializeOwned + Default>(json: &str) -> Result<T, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("settings are not JSON: {e}"))?;
    if value.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(value).map_err(|e| format!("settings: {e}"))
}

/// Check the settings of a plugin that takes none: `null` and `{}` pass, any key is refused.
///
/// # Errors
/// Not JSON, or any key at all.
pub fn no_settings(json: &str) -> Result<(), String> {
    #[derive(Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Empty {}
    parse_settings::<Empty>(json).map(|_| ())
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;

    use super::*;

    /// Check derived keys against an RFC example: the server signature must match, and the
    /// client proof must verify against the stored key.
    fn check(
        hash: Hash,
        salt: &str,
        first_bare: &str,
        server_first: &str,
        final_bare: &str,
        proof: &str,
        sig: &str,
    ) {
        let salt = B64.decode(salt).expect("salt");
        let (stored, server) = scram_keys(hash, "pencil", &salt, 4096);
        let auth_message = format!("{first_bare},{server_first},{final_bare}");
        assert_eq!(
            B64.encode(hmac(hash, &server, auth_message.as_bytes())),
            sig
        );
        let client_sig = hmac(hash, &stored, auth_message.as_bytes());
        let client_key: Vec<u8> = B64
            .decode(proof)
            .expect("proof")
            .iter()
            .zip(&client_sig)
            .map(|(a, b)| a ^ b)
            .collect();
        assert!(ct_eq(&digest(hash, &client_key), &stored));
    }

    #[test]
    fn rfc5802_and_rfc7677_examples() {
        check(
            Hash::Sha1,
            "QSXCR+Q6sek8bf92",
            "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
            "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        );
        check(
            Hash::Sha256,
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            "n=user,r=rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        );
    }

    #[test]
    fn rfc6070_pbkdf2() {
        let hex = |b: Vec<u8>| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(pbkdf2(Hash::Sha1, b"password", b"salt", 2)),
            "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"
        );
    }

    #[test]
    fn settings() {
        #[derive(serde::Deserialize, Default, Debug)]
        #[serde(deny_unknown_fields)]
        struct S {
            #[serde(default)]
            n: u32,
        }
        assert_eq!(parse_settings::<S>("null").expect("null").n, 0);
        assert_eq!(parse_settings::<S>("{\"n\":3}").expect("n").n, 3);
        assert!(
            parse_settings::<S>("{\"m\":3}")
                .expect_err("unknown")
                .contains('m')
        );
        assert!(ct_eq(b"ab", b"ab") && !ct_eq(b"ab", b"ac") && !ct_eq(b"ab", b"abc"));
    }
}
