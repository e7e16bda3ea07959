//! Owns the SFU's DTLS identity: the self-signed ECDSA P-256 certificate and its SHA-256
//! fingerprint in the form the focus signals (`AB:CD:...`), plus parsing and checking of the
//! fingerprint the focus signals for a browser.

use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::{HashAlgorithm, RTCCrypto};

use crate::SfuError;

/// The certificate every endpoint of one SFU presents in its DTLS handshakes.
#[derive(Clone)]
pub struct DtlsCertificate {
    pub(crate) certificate: Certificate,
    fingerprint: String,
}

impl std::fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsCertificate")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl DtlsCertificate {
    /// Generates a fresh self-signed ECDSA P-256 certificate.
    ///
    /// Key generation uses the crypto library's own (OS) randomness: this is called by whoever
    /// builds the SFU (the shell, a test), never inside the sans-IO core.
    pub fn generate() -> Result<Self, SfuError> {
        let provider = rtc_dtls::crypto_provider::default_provider()
            .map_err(|e| SfuError::Crypto(e.to_string()))?;
        let certificate = Certificate::generate_self_signed_with_alg(
            vec!["lilt-sfu".to_owned()],
            &rcgen::PKCS_ECDSA_P256_SHA256,
            provider.crypto(),
        )
        .map_err(|e| SfuError::Crypto(e.to_string()))?;
        let der = certificate
            .certificate
            .first()
            .ok_or_else(|| SfuError::Crypto("generated certificate is empty".into()))?;
        let fingerprint = sha256_fingerprint(provider.crypto(), der.as_ref())?;
        Ok(Self {
            certificate,
            fingerprint,
        })
    }

    /// The SHA-256 fingerprint, uppercase hex pairs joined by colons (`AB:CD:...`), as signalled
    /// with hash `sha-256`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// SHA-256 of `der` as `AB:CD:...`.
pub(crate) fn sha256_fingerprint(crypto: &dyn RTCCrypto, der: &[u8]) -> Result<String, SfuError> {
    let digest = crypto
        .hash(HashAlgorithm::Sha256, der)
        .map_err(|e| SfuError::Crypto(e.to_string()))?;
    Ok(format_fingerprint(&digest))
}

/// Formats digest bytes as uppercase hex pairs joined by colons.
pub(crate) fn format_fingerprint(digest: &[u8]) -> String {
    let mut s = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// Parses a signalled fingerprint value (`ab:cd:..` in either case) into digest bytes.
pub(crate) fn parse_fingerprint(value: &str) -> Option<Vec<u8>> {
    value
        .trim()
        .split(':')
        .map(|pair| {
            if pair.len() == 2 {
                u8::from_str_radix(pair, 16).ok()
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trip() {
        let f = format_fingerprint(&[0xab, 0x01, 0xff]);
        assert_eq!(f, "AB:01:FF");
        assert_eq!(parse_fingerprint("ab:01:FF"), Some(vec![0xab, 0x01, 0xff]));
        assert_eq!(parse_fingerprint("ab:1"), None);
        assert_eq!(parse_fingerprint("zz"), None);
    }

    #[test]
    fn generated_certificate_has_sha256_fingerprint() {
        let cert = DtlsCertificate::generate().expect("generate");
        assert_eq!(cert.fingerprint().len(), 32 * 3 - 1);
        assert_eq!(cert.fingerprint(), cert.fingerprint().to_uppercase());
    }
}
