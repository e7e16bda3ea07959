//! TLS server configuration (rustls, ring provider): the operator's PEM certificate and key,
//! or a self-signed certificate generated once into `data_dir/tls/` covering every vhost and
//! component domain. Also the client side the host's own outgoing connections use (key
//! servers, directories): the system's CA bundle and a client configuration over given roots.
//!
//! Shell (files). Invariants: only TLS 1.2 and 1.3 (rustls defaults); the generated key never
//! leaves `data_dir` and is written with mode 0600; a changed domain list regenerates the
//! certificate. Tests: tests/all/ (STARTTLS and direct TLS handshakes against it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the certificate/key pair.
    #[error("certificate and key do not form a usable TLS identity: {0}")]
    Rustls(#[from] rustls::Error),
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
}

fn file_err(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// Build the server TLS configuration.
///
/// # Errors
/// When the files are unreadable or invalid, or a certificate cannot be generated.
pub fn server_config(
    files: Option<&TlsFiles>,
    data_dir: &Path,
    domains: &[String],
) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert_path, key_path) = match files {
        Some(f) => (f.cert_file.clone(), f.key_file.clone()),
        None => self_signed(data_dir, domains)?,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| file_err(&cert_path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(&cert_path, e))?;
    if certs.is_empty() {
        return Err(file_err(&cert_path, "no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| file_err(&key_path, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// The generated certificate's paths, generating it when missing or stale.
fn self_signed(data_dir: &Path, domains: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir).map_err(|e| file_err(&dir, e))?;
    let cert_path = dir.join("selfsigned.crt");
    let key_path = dir.join("selfsigned.key");
    let names_path = dir.join("selfsigned.names");
    let mut names: Vec<String> = domains.to_vec();
    names.sort();
    names.dedup();
    let wanted = names.join("\n");
    let current = std::fs::read_to_string(&names_path).unwrap_or_default();
    if current == wanted && cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let mut sans = names.clone();
    sans.extend(names.iter().map(|d| format!("*.{d}")));
    let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let params =
        rcgen::CertificateParams::new(sans).map_err(|e| TlsError::Generate(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, cert.pem()).map_err(|e| file_err(&cert_path, e))?;
    std::fs::write(&names_path, wanted).map_err(|e| file_err(&names_path, e))?;
    tracing::info!(message = "Generated a self-signed TLS certificate.", path = %cert_path.display(), domains = %names.join(","));
    Ok((cert_path, key_path))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).map_err(|e| file_err(path, e))?;
    f.write_all(bytes).map_err(|e| file_err(path, e))
}

/// The system's CA bundle (Debian's, else Red Hat's); empty when neither is there.
pub fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for path in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ] {
        if let Ok(certs) = CertificateDer::pem_file_iter(path) {
            for cert in certs.flatten() {
                let _ = roots.add(cert);
            }
        }
    }
    roots
}

/// A TLS client configuration (ring provider, TLS 1.2 and 1.3) verifying servers against
/// `roots`.
///
/// # Errors
/// No roots, or rustls refuses the protocol versions.
pub fn client_config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, String> {
    if roots.is_empty() {
        return Err("no CA certificate to verify the server with".to_owned());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}
