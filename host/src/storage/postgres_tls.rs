//! TLS to PostgreSQL: tokio-postgres's `MakeTlsConnect` / `TlsConnect` / `TlsStream` over
//! tokio-rustls (ring), so `[storage] backend = "postgres"` can encrypt without native-tls or
//! OpenSSL. The stream offers channel binding (`tls-server-end-point`, RFC 5929 §4.1: a hash of
//! the server's certificate), so a server that offers SCRAM-SHA-256-PLUS gets it.
//!
//! Shell (TLS handshakes). Invariants: `sslmode=require` and `verify-full`
//! (`PostgresTls::Verify`) check the certificate chain against `storage.ca_file` or the
//! system's roots and the certificate's name against the host of `storage.url`, and a failed
//! check is an error naming what was trusted, never a fall back to plain text (tokio-postgres
//! itself refuses plain text in `Require` mode when the server declines TLS); `prefer`
//! (`PostgresTls::Prefer`) encrypts without checking the certificate, as libpq's `prefer` does,
//! but still verifies the handshake's signatures; nothing here panics on what a server sends
//! (the certificate is walked with bounds-checked DER reads). Tests: `mod tests` below (the
//! certificate hash); end to end in tests/all/postgres.rs (a server that requires TLS, the right
//! CA, a wrong CA, plain text refused, SCRAM-SHA-256-PLUS with `channel_binding=require`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::Digest as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use super::StorageError;
use crate::config::PostgresTls;

/// The connector handed to `tokio_postgres::Config::connect`: one rustls configuration per
/// store, shared by its connections.
#[derive(Clone)]
pub(super) struct PgTls {
    config: Arc<ClientConfig>,
    /// What certificates are checked against, for error messages.
    trust: Arc<str>,
}

impl std::fmt::Debug for PgTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTls")
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

impl PgTls {
    /// The connector for `mode`. `Disable` gets one too (tokio-postgres asks for a connector
    /// whatever the mode) but never uses it: `SslMode::Disable` sends no TLS request.
    ///
    /// # Errors
    /// A CA certificate rustls cannot use, or, without `ca_file`, no system root certificate.
    pub(super) fn new(mode: &PostgresTls) -> Result<PgTls, StorageError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StorageError::Postgres(format!("TLS: {e}")))?;
        let (mut config, trust) = match mode {
            PostgresTls::Disable | PostgresTls::Prefer => (
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                    .with_no_client_auth(),
                "nothing (sslmode=prefer does not check certificates)".to_owned(),
            ),
            PostgresTls::Verify { ca_file } => {
                let mut roots = RootCertStore::empty();
                let trust = match ca_file {
                    Some((path, certs)) => {
                        for (i, cert) in certs.iter().enumerate() {
                            roots.add(cert.clone()).map_err(|e| {
                                StorageError::Postgres(format!(
                                    "storage.ca_file: certificate {} of {}: {e}",
                                    i + 1,
                                    path.display()
                                ))
                            })?;
                        }
                        format!("storage.ca_file {}", path.display())
                    }
                    None => {
                        let found = rustls_native_certs::load_native_certs();
                        let (added, _) = roots.add_parsable_certificates(found.certs);
                        if added == 0 {
                            let why = found
                                .errors
                                .first()
                                .map(|e| format!(" ({e})"))
                                .unwrap_or_default();
                            return Err(StorageError::Postgres(format!(
                                "TLS: no storage.ca_file, and no system root certificate was \
                                 found to check the server with{why}; set storage.ca_file"
                            )));
                        }
                        format!("the system's {added} root certificates")
                    }
                };
                (
                    builder.with_root_certificates(roots).with_no_client_auth(),
                    trust,
                )
            }
        };
        // What PostgreSQL 17's direct TLS negotiation requires; older servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(PgTls {
            config: Arc::new(config),
            trust: trust.into(),
        })
    }
}

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type TlsConnect = PgTlsConnect;
    type Error = TlsError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<PgTlsConnect, TlsError> {
        // Called for every connection, Unix sockets (an empty domain) included: a name that is
        // not a DNS name or IP address is an error only if TLS is then attempted.
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| TlsError(format!("{domain:?} cannot be checked as a TLS name: {e}")));
        Ok(PgTlsConnect {
            config: self.config.clone(),
            trust: self.trust.clone(),
            name,
        })
    }
}

/// One connection's handshake.
pub(super) struct PgTlsConnect {
    config: Arc<ClientConfig>,
    trust: Arc<str>,
    name: Result<ServerName<'static>, TlsError>,
}

impl<S> TlsConnect<S> for PgTlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<PgTlsStream<S>, TlsError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self.name?;
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await
                .map_err(|e| describe(&e, &self.trust))?;
            let end_point = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| tls_server_end_point(c.as_ref()));
            Ok(PgTlsStream {
                inner: tls,
                end_point,
            })
        })
    }
}

/// Why a handshake failed, in words an operator can act on.
fn describe(e: &std::io::Error, trust: &str) -> TlsError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(err @ rustls::Error::InvalidCertificate(_)) => TlsError(format!(
            "the server's certificate does not verify against {trust}: {err}"
        )),
        Some(err) => TlsError(format!("TLS: {err}")),
        None => TlsError(format!("TLS: {e}")),
    }
}

/// A TLS failure, as tokio-postgres reports it (the cause of its "error performing TLS
/// handshake").
#[derive(Debug)]
pub(super) struct TlsError(String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// An encrypted connection, with its channel binding data.
pub(super) struct PgTlsStream<S> {
    inner: tokio_rustls::client::TlsStream<S>,
    /// `tls-server-end-point`: `None` for a certificate whose signature algorithm names no
    /// usable hash (then SCRAM runs without channel binding).
    end_point: Option<Vec<u8>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for PgTlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        match &self.end_point {
            Some(hash) => ChannelBinding::tls_server_end_point(hash.clone()),
            None => ChannelBinding::none(),
        }
    }
}

/// `sslmode=prefer`: any certificate is accepted (as libpq's `prefer` does), but the
/// handshake's signatures are still verified with the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The hash a signature algorithm names, for `tls-server-end-point`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndPointHash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// RFC 5929 §4.1: the certificate hashed with the hash of its signature algorithm, SHA-256
/// when that is MD5 or SHA-1. `None` when the algorithm names no single hash (Ed25519,
/// RSASSA-PSS) or the certificate cannot be read.
fn tls_server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    Some(match end_point_hash(signature_oid(cert)?)? {
        EndPointHash::Sha224 => sha2::Sha224::digest(cert).to_vec(),
        EndPointHash::Sha256 => sha2::Sha256::digest(cert).to_vec(),
        EndPointHash::Sha384 => sha2::Sha384::digest(cert).to_vec(),
        EndPointHash::Sha512 => sha2::Sha512::digest(cert).to_vec(),
    })
}

fn end_point_hash(oid: &[u8]) -> Option<EndPointHash> {
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    const DSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03];
    if oid == ECDSA_SHA1 || oid == DSA_SHA1 {
        return Some(EndPointHash::Sha256);
    }
    if let Some(last) = oid.strip_prefix(RSA) {
        return match last {
            // md5WithRSAEncryption, sha1WithRSAEncryption, sha256WithRSAEncryption.
            [0x04] | [0x05] | [0x0b] => Some(EndPointHash::Sha256),
            [0x0c] => Some(EndPointHash::Sha384),
            [0x0d] => Some(EndPointHash::Sha512),
            [0x0e] => Some(EndPointHash::Sha224),
            _ => None,
        };
    }
    if let Some(last) = oid.strip_prefix(ECDSA_SHA2) {
        return match last {
            [0x01] => Some(EndPointHash::Sha224),
            [0x02] => Some(EndPointHash::Sha256),
            [0x03] => Some(EndPointHash::Sha384),
            [0x04] => Some(EndPointHash::Sha512),
            _ => None,
        };
    }
    None
}

/// The OID (content bytes) of `Certificate.signatureAlgorithm.algorithm`.
fn signature_oid(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    let (SEQUENCE, certificate, _) = der(cert)? else {
        return None;
    };
    let (SEQUENCE, _tbs, rest) = der(certificate)? else {
        return None;
    };
    let (SEQUENCE, algorithm, _) = der(rest)? else {
        return None;
    };
    let (OID, oid, _) = der(algorithm)? else {
        return None;
    };
    Some(oid)
}

/// One DER element: (tag, content, what follows). Single-byte tags and definite lengths only,
/// which is all a certificate's outer structure uses.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        let len = bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_point_hash_follows_the_signature_algorithm() {
        // rcgen signs with ECDSA P-256 / SHA-256 by default.
        let ck = rcgen::generate_simple_self_signed(vec!["db.example".to_owned()]).expect("cert");
        let der = ck.cert.der().as_ref();
        assert_eq!(
            signature_oid(der),
            Some(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02][..])
        );
        assert_eq!(
            tls_server_end_point(der),
            Some(sha2::Sha256::digest(der).to_vec())
        );
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
        let cert = rcgen::CertificateParams::new(vec!["db.example".to_owned()])
            .expect("params")
            .self_signed(&p384)
            .expect("cert");
        assert_eq!(
            tls_server_end_point(cert.der()),
            Some(sha2::Sha384::digest(cert.der()).to_vec())
        );
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
        let cert = rcgen::CertificateParams::new(vec!["db.example".to_owned()])
            .expect("params")
            .self_signed(&ed)
            .expect("cert");
        assert_eq!(
            tls_server_end_point(cert.der()),
            None,
            "Ed25519 names no hash"
        );
        // MD5 and SHA-1 are upgraded to SHA-256.
        assert_eq!(
            end_point_hash(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05]),
            Some(EndPointHash::Sha256)
        );
    }

    #[test]
    fn truncated_or_odd_certificates_give_no_binding() {
        let ck = rcgen::generate_simple_self_signed(vec!["db.example".to_owned()]).expect("cert");
        let der = ck.cert.der().as_ref();
        for cut in 0..der.len().min(64) {
            assert_eq!(tls_server_end_point(&der[..cut]), None, "cut at {cut}");
        }
        assert_eq!(tls_server_end_point(b""), None);
        assert_eq!(
            tls_server_end_point(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(tls_server_end_point(&[0x30, 0x80]), None);
    }
}
