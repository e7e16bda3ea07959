//! The `ldap` import: bind and search in a configured directory (`[[ldap]]` profile, grant
//! `ldap:<profile>`), on the `ldap3` client over rustls.
//!
//! Shell. One `LdapPool` per profile, shared by every plugin granted it (plugin/sources.rs).
//! Invariants:
//! - every DN a plugin names (bind DN, search base) is parsed (RFC 4514) and must be the
//!   profile's base DN or below it, compared RDN by RDN (attribute types and values
//!   case-insensitively, escapes resolved), never as a string suffix; what is sent to the
//!   directory is the DN re-serialised from that parse, so the directory sees what was checked;
//! - a search filter must parse (RFC 4515, `ldap3::parse_filter`) before anything is sent;
//! - `bind` refuses an empty password without asking the directory (RFC 4513 §5.1.2: an
//!   unauthenticated bind would "succeed"), and binds on a connection of its own that is closed
//!   afterwards, so a user's bind never changes the identity of a pooled connection;
//! - searches run as the service account on at most `pool_size` pooled connections, reused
//!   while they work, dropped on any error (a failure on a reused connection is retried once
//!   on a fresh one, as a directory restart closes every pooled connection);
//! - every step (connect with StartTLS or LDAPS, bind, search) is bounded by the profile's
//!   `timeout`; at most `MAX_ENTRIES` entries come back; values that are not UTF-8 are left out;
//! - TLS verifies the directory's certificate against the profile's `ca_file`, or the system
//!   roots; the service-account password is never logged.
//!
//! The operations block the caller's thread (plugin calls run on tokio's blocking pool) on the
//! current runtime, and their time is credited back to the call's CPU deadline.
//! Tests: `mod tests` below (DN confinement), tests/all/ldap.rs against a real slapd.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, SearchEntry, SearchOptions};

use super::bindings::identity_world::lilt::plugin::ldap::{self, Entry, LdapError, Scope};
use super::host_api::State;
use crate::config::LdapProfile;

/// Most entries one search returns.
const MAX_ENTRIES: usize = 100;
/// Longest DN, filter or password accepted from a plugin.
const MAX_TEXT: usize = 4096;
/// Most attributes one search may ask for.
const MAX_ATTRIBUTES: usize = 64;

/// The connections and TLS settings of one directory profile.
pub(crate) struct LdapPool {
    profile: Arc<LdapProfile>,
    /// The profile's base DN, parsed (`Err`: it does not parse, and every request is refused).
    base: Result<Dn, String>,
    /// Service-account connections not in use.
    idle: Mutex<Vec<Ldap>>,
    /// One permit per service-account connection (`pool_size`).
    slots: tokio::sync::Semaphore,
    /// The TLS client, made on first successful use (a CA file that cannot be read is tried
    /// again at the next connection, so fixing it needs no restart).
    tls: Mutex<Option<Arc<rustls::ClientConfig>>>,
}

impl std::fmt::Debug for LdapPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapPool")
            .field("profile", &self.profile.name)
            .field("url", &self.profile.url)
            .finish_non_exhaustive()
    }
}

/// Why an operation on one connection failed.
enum OpError {
    /// The request is refused (bad filter): not the connection's fault.
    Refused(String),
    /// The connection failed or the directory answered with an error.
    Failed(String),
}

impl LdapPool {
    pub(crate) fn new(profile: Arc<LdapProfile>) -> LdapPool {
        let base = Dn::parse(&profile.base_dn);
        if let Err(e) = &base {
            tracing::warn!(message = "Directory base DN does not parse; every request is refused.", profile = %profile.name, error = %e);
        }
        if profile.url.starts_with("ldap://") && !profile.starttls {
            tracing::warn!(message = "Directory connection is not encrypted (ldap:// without starttls): passwords cross the network in clear.", profile = %profile.name, url = %profile.url);
        }
        LdapPool {
            slots: tokio::sync::Semaphore::new(profile.pool_size),
            profile,
            base,
            idle: Mutex::new(Vec::new()),
            tls: Mutex::new(None),
        }
    }

    /// The profile this pool serves.
    pub(crate) fn profile(&self) -> &Arc<LdapProfile> {
        &self.profile
    }

    /// `dn` parsed, checked to be the base DN or below it, and re-serialised.
    fn confine(&self, dn: &str, what: &str) -> Result<String, LdapError> {
        let base = self
            .base
            .as_ref()
            .map_err(|e| LdapError::Refused(format!("the profile's base DN is invalid: {e}")))?;
        if dn.len() > MAX_TEXT {
            return Err(LdapError::Refused(format!("{what} is too long")));
        }
        let parsed =
            Dn::parse(dn).map_err(|e| LdapError::Refused(format!("{what} is not a DN: {e}")))?;
        if !parsed.is_within(base) {
            return Err(LdapError::Refused(format!(
                "{what} is not under the base DN {}",
                self.profile.base_dn
            )));
        }
        Ok(parsed.to_string())
    }

    /// Whether `password` is right for `dn`. Blocking.
    pub(crate) fn bind(&self, dn: &str, password: &str) -> Result<bool, LdapError> {
        if password.is_empty() {
            return Ok(false);
        }
        if password.len() > MAX_TEXT {
            return Ok(false);
        }
        let dn = self.confine(dn, "the bind DN")?;
        let handle = runtime()?;
        let t = self.profile.timeout;
        let answer = handle.block_on(async {
            let mut conn = self.connect().await?;
            let result = tokio::time::timeout(t, conn.simple_bind(&dn, password)).await;
            // Close it whatever happened: this connection never serves anything else.
            let _ = tokio::time::timeout(Duration::from_millis(200), conn.unbind()).await;
            match result {
                Err(_) => Err(format!("bind timed out after {t:?}")),
                Ok(Err(e)) => Err(format!("bind: {e}")),
                Ok(Ok(r)) => match r.rc {
                    0 => Ok(true),
                    // invalidCredentials, inappropriateAuthentication, noSuchObject,
                    // invalidDNSyntax, unwillingToPerform (e.g. a locked account),
                    // constraintViolation (password policy).
                    49 | 48 | 32 | 34 | 53 | 19 => Ok(false),
                    rc => Err(format!("bind answered {rc} {}", r.text)),
                },
            }
        });
        answer.map_err(|e| self.unavailable(e))
    }

    /// Search as the service account. Blocking.
    pub(crate) fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[String],
    ) -> Result<Vec<Entry>, LdapError> {
        let base = self.confine(base, "the search base")?;
        if filter.len() > MAX_TEXT || ldap3::parse_filter(filter).is_err() {
            return Err(LdapError::Refused(
                "the filter is not an RFC 4515 filter".into(),
            ));
        }
        if attributes.len() > MAX_ATTRIBUTES {
            return Err(LdapError::Refused("too many attributes".into()));
        }
        if let Some(a) = attributes.iter().find(|a| !is_attribute_selector(a)) {
            return Err(LdapError::Refused(format!(
                "{a:?} is not an attribute name"
            )));
        }
        let scope = match scope {
            Scope::Base => ldap3::Scope::Base,
            Scope::One => ldap3::Scope::OneLevel,
            Scope::Sub => ldap3::Scope::Subtree,
        };
        let handle = runtime()?;
        let t = self.profile.timeout;
        handle.block_on(async {
            let _slot = tokio::time::timeout(t, self.slots.acquire())
                .await
                .map_err(|_| self.unavailable(format!("no free directory connection within {t:?}")))?
                .map_err(|e| self.unavailable(e))?;
            for attempt in 0..2 {
                let pooled = self.take_idle();
                let reused = pooled.is_some();
                let mut conn = match pooled {
                    Some(c) => c,
                    None => self.service_connection().await.map_err(|e| self.unavailable(e))?,
                };
                let op = search_once(&mut conn, t, &base, scope, filter, attributes);
                match tokio::time::timeout(t, op).await {
                    Ok(Ok(entries)) => {
                        self.put_idle(conn);
                        return Ok(entries);
                    }
                    Ok(Err(OpError::Refused(e))) => {
                        self.put_idle(conn);
                        return Err(LdapError::Refused(e));
                    }
                    Ok(Err(OpError::Failed(e))) if reused && attempt == 0 => {
                        tracing::debug!(message = "Pooled directory connection failed; retrying on a fresh one.", profile = %self.profile.name, error = %e);
                    }
                    Ok(Err(OpError::Failed(e))) => return Err(self.unavailable(e)),
                    Err(_) => {
                        return Err(self.unavailable(format!("search timed out after {t:?}")));
                    }
                }
            }
            Err(self.unavailable("search failed twice"))
        })
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> LdapError {
        let text = e.to_string();
        tracing::warn!(message = "Directory operation failed.", profile = %self.profile.name, url = %self.profile.url, error = %text);
        LdapError::Unavailable(format!("directory {}: {text}", self.profile.name))
    }

    fn take_idle(&self) -> Option<Ldap> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(mut c) = idle.pop() {
            if !c.is_closed() {
                return Some(c);
            }
        }
        None
    }

    fn put_idle(&self, mut conn: Ldap) {
        if conn.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.profile.pool_size {
            idle.push(conn);
        }
    }

    /// A new connection, bound as the service account when the profile has one.
    async fn service_connection(&self) -> Result<Ldap, String> {
        let mut conn = self.connect().await?;
        if let (Some(dn), Some(password)) = (&self.profile.bind_dn, &self.profile.bind_password) {
            let t = self.profile.timeout;
            let r = tokio::time::timeout(t, conn.simple_bind(dn, password))
                .await
                .map_err(|_| format!("service-account bind timed out after {t:?}"))?
                .map_err(|e| format!("service-account bind: {e}"))?;
            if r.rc != 0 {
                return Err(format!(
                    "service-account bind as {dn} refused: {} {}",
                    r.rc, r.text
                ));
            }
        }
        Ok(conn)
    }

    /// A new connection (TCP, then StartTLS or LDAPS as configured), its driver spawned.
    async fn connect(&self) -> Result<Ldap, String> {
        let p = &self.profile;
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(p.timeout)
            .set_starttls(p.starttls);
        if p.starttls || p.url.starts_with("ldaps://") {
            settings = settings.set_config(self.tls_config()?);
        }
        let (conn, mut ldap) =
            tokio::time::timeout(p.timeout, LdapConnAsync::with_settings(settings, &p.url))
                .await
                .map_err(|_| format!("connecting to {} timed out after {:?}", p.url, p.timeout))?
                .map_err(|e| format!("cannot connect to {}: {e}", p.url))?;
        tokio::spawn(async move {
            let _ = conn.drive().await;
        });
        ldap.with_timeout(p.timeout);
        Ok(ldap)
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut cached = self.tls.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cached.as_ref() {
            return Ok(c.clone());
        }
        let made = tls_config(&self.profile)?;
        *cached = Some(made.clone());
        Ok(made)
    }
}

fn runtime() -> Result<tokio::runtime::Handle, LdapError> {
    tokio::runtime::Handle::try_current()
        .map_err(|_| LdapError::Unavailable("no runtime to reach the directory on".into()))
}

/// One search on one connection.
async fn search_once(
    conn: &mut Ldap,
    t: Duration,
    base: &str,
    scope: ldap3::Scope,
    filter: &str,
    attributes: &[String],
) -> Result<Vec<Entry>, OpError> {
    let secs = i32::try_from(t.as_secs().max(1)).unwrap_or(60);
    let result = conn
        .with_search_options(
            SearchOptions::new()
                .sizelimit(MAX_ENTRIES as i32)
                .timelimit(secs),
        )
        .with_timeout(t)
        .search(base, scope, filter, attributes.to_vec())
        .await;
    let result = match result {
        Ok(r) => r,
        Err(ldap3::LdapError::FilterParsing) => {
            return Err(OpError::Refused(
                "the filter is not an RFC 4515 filter".into(),
            ));
        }
        Err(e) => return Err(OpError::Failed(format!("search: {e}"))),
    };
    match result.1.rc {
        // success, sizeLimitExceeded (the first MAX_ENTRIES came back)
        0 | 4 => {}
        // noSuchObject: the base does not exist, so nothing is under it.
        32 => return Ok(Vec::new()),
        // filterError
        87 => return Err(OpError::Refused("the directory refused the filter".into())),
        rc => {
            return Err(OpError::Failed(format!(
                "search answered {rc} {}",
                result.1.text
            )));
        }
    }
    Ok(result
        .0
        .into_iter()
        .filter(|e| !e.is_ref() && !e.is_intermediate())
        .take(MAX_ENTRIES)
        .filter_map(|raw| {
            // `construct` panics on a malformed entry: a broken directory must not take the
            // host down with it.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(raw)))
                .ok()
        })
        .map(|e| {
            let mut attributes: Vec<(String, Vec<String>)> = e.attrs.into_iter().collect();
            attributes.sort_by(|a, b| a.0.cmp(&b.0));
            Entry {
                dn: e.dn,
                attributes,
            }
        })
        .collect())
}

/// A TLS client verifying against the profile's CA file, else the system's CA bundle.
fn tls_config(profile: &LdapProfile) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    match &profile.ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
            }
        }
        None => roots = crate::transport::tls::system_roots(),
    }
    crate::transport::tls::client_config(roots)
}

/// An attribute description a search may ask for: a name or OID (with options), `*`, `+` or
/// `1.1`.
fn is_attribute_selector(a: &str) -> bool {
    if a == "*" || a == "+" {
        return true;
    }
    let mut parts = a.split(';');
    a.len() <= 256
        && parts.next().is_some_and(is_attribute_type)
        && parts.all(|o| !o.is_empty() && o.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// `keystring` or `numericoid` (RFC 4512 §1.4).
fn is_attribute_type(t: &str) -> bool {
    let mut chars = t.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => chars.all(|c| c.is_ascii_alphanumeric() || c == '-'),
        Some(c) if c.is_ascii_digit() => t.split('.').all(|n| {
            !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
                && (n == "0" || !n.starts_with('0'))
        }),
        _ => false,
    }
}

/// One attribute-value assertion of an RDN.
#[derive(Debug, Clone)]
struct Ava {
    /// Attribute type, lowercase.
    attr: String,
    /// The value, unescaped.
    value: String,
}

impl Ava {
    /// What two equal AVAs share: the type and the value, case-folded.
    fn key(&self) -> (String, String) {
        (self.attr.clone(), self.value.to_lowercase())
    }
}

/// A distinguished name (RFC 4514), leftmost RDN first; each RDN's AVAs sorted.
#[derive(Debug, Clone)]
struct Dn(Vec<Vec<Ava>>);

impl Dn {
    /// Parse the string form. Hex-encoded values (`#04...`) and the obsolete `;` separator are
    /// refused; spaces around `=`, `,` and `+` are allowed.
    fn parse(s: &str) -> Result<Dn, String> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut rdns = Vec::new();
        let skip_spaces = |i: &mut usize| {
            while *i < b.len() && b[*i] == b' ' {
                *i += 1;
            }
        };
        skip_spaces(&mut i);
        if i == b.len() {
            return Ok(Dn(rdns));
        }
        let mut rdn = Vec::new();
        loop {
            // attributeType
            skip_spaces(&mut i);
            let start = i;
            while i < b.len() && b[i] != b'=' && b[i] != b',' && b[i] != b'+' && b[i] != b' ' {
                i += 1;
            }
            let mut attr = s[start..i].to_ascii_lowercase();
            if let Some(oid) = attr.strip_prefix("oid.") {
                attr = oid.to_owned();
            }
            if !is_attribute_type(&attr) {
                return Err(format!("bad attribute type {:?}", &s[start..i]));
            }
            skip_spaces(&mut i);
            if i >= b.len() || b[i] != b'=' {
                return Err(format!("'=' expected after {attr}"));
            }
            i += 1;
            skip_spaces(&mut i);
            if i < b.len() && b[i] == b'#' {
                return Err("hex-encoded values are not accepted".into());
            }
            // attributeValue: bytes up to an unescaped ',' or '+'; trailing unescaped spaces
            // are not part of it.
            let mut value: Vec<u8> = Vec::new();
            let mut kept = 0; // length of `value` up to its last escaped or non-space byte
            while i < b.len() && b[i] != b',' && b[i] != b'+' {
                match b[i] {
                    b'\\' => {
                        let next = *b.get(i + 1).ok_or("a DN ends in '\\'")?;
                        if next.is_ascii_hexdigit() {
                            let hi = next;
                            let lo = *b.get(i + 2).ok_or("bad escape in DN")?;
                            if !lo.is_ascii_hexdigit() {
                                return Err("bad escape in DN".into());
                            }
                            let hex = [hi, lo];
                            let hex = std::str::from_utf8(&hex).map_err(|e| e.to_string())?;
                            value.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
                            i += 3;
                        } else if b" \"#+,;<=>\\".contains(&next) {
                            value.push(next);
                            i += 2;
                        } else {
                            return Err(format!("bad escape '\\{}' in DN", next as char));
                        }
                        kept = value.len();
                    }
                    b'"' | b';' | b'<' | b'>' | 0 => {
                        return Err(format!("unescaped {:?} in DN", b[i] as char));
                    }
                    c => {
                        value.push(c);
                        i += 1;
                        if c != b' ' {
                            kept = value.len();
                        }
                    }
                }
            }
            value.truncate(kept);
            let value =
                String::from_utf8(value).map_err(|_| "a DN value is not UTF-8".to_owned())?;
            if value.contains('\0') {
                return Err("NUL in a DN value".into());
            }
            rdn.push(Ava { attr, value });
            if i == b.len() {
                break;
            }
            let sep = b[i];
            i += 1;
            if sep == b',' {
                rdns.push(std::mem::take(&mut rdn));
                skip_spaces(&mut i);
                if i == b.len() {
                    return Err("a DN ends in ','".into());
                }
            }
        }
        rdns.push(rdn);
        for rdn in &mut rdns {
            rdn.sort_by_key(Ava::key);
            if rdn.windows(2).any(|w| w[0].attr == w[1].attr) {
                return Err("an RDN names an attribute twice".into());
            }
        }
        Ok(Dn(rdns))
    }

    /// Whether this DN is `base` or below it.
    fn is_within(&self, base: &Dn) -> bool {
        let (n, m) = (self.0.len(), base.0.len());
        n >= m
            && self.0[n - m..].iter().zip(&base.0).all(|(a, b)| {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.key() == y.key())
            })
    }
}

impl std::fmt::Display for Dn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, rdn) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            for (j, ava) in rdn.iter().enumerate() {
                if j > 0 {
                    f.write_str("+")?;
                }
                write!(f, "{}=", ava.attr)?;
                let n = ava.value.chars().count();
                for (k, c) in ava.value.chars().enumerate() {
                    match c {
                        ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => write!(f, "\\{c}")?,
                        '#' | ' ' if k == 0 => write!(f, "\\{c}")?,
                        ' ' if k + 1 == n => f.write_str("\\ ")?,
                        c if c.is_control() => {
                            let mut buf = [0; 4];
                            for byte in c.encode_utf8(&mut buf).bytes() {
                                write!(f, "\\{byte:02x}")?;
                            }
                        }
                        c => write!(f, "{c}")?,
                    }
                }
            }
        }
        Ok(())
    }
}

impl ldap::Host for State {
    fn bind(&mut self, dn: String, password: String) -> Result<bool, LdapError> {
        let Some(pool) = self.sources.ldap.clone() else {
            return Err(LdapError::Unavailable("no directory is granted".into()));
        };
        self.timed(|_| pool.bind(&dn, &password))
    }

    fn search(
        &mut self,
        base: String,
        scope: Scope,
        filter: String,
        attributes: Vec<String>,
    ) -> Result<Vec<Entry>, LdapError> {
        let Some(pool) = self.sources.ldap.clone() else {
            return Err(LdapError::Unavailable("no directory is granted".into()));
        };
        self.timed(|_| pool.search(&base, scope, &filter, &attributes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(s: &str) -> Dn {
        Dn::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn within(s: &str, base: &str) -> bool {
        Dn::parse(s).is_ok_and(|d| d.is_within(&dn(base)))
    }

    #[test]
    fn confinement_compares_rdns_not_strings() {
        let base = "dc=example,dc=org";
        assert!(within("dc=example,dc=org", base));
        assert!(within("uid=alice,ou=people,dc=example,dc=org", base));
        assert!(within("UID=Alice, OU=People, DC=Example, DC=ORG", base));
        assert!(within("uid=alice,ou=people,dc=example,dc=org ", base));
        // A string suffix that is not an RDN suffix.
        assert!(!within("uid=x,ou=people,dc=evilexample,dc=org", base));
        assert!(!within("uid=x,ou=people,dc=example,dc=evil", "dc=example"));
        assert!(!within("uid=x,ou=people,dc=example\\,dc=org", "dc=org"));
        // (Under the base by its RDNs, whatever the leftmost ones say.)
        assert!(within("uid=x,ou=people,dc=evil,dc=example", "dc=example"));
        assert!(within("uid=x,dc=example", "dc=example"));
        // An escaped comma is part of a value, not a separator.
        assert!(!within("uid=x\\,dc=example\\,dc=org", base));
        assert!(!within(
            "cn=a\\,dc=example,dc=org",
            "cn=b,dc=example,dc=org"
        ));
        // Above the base, elsewhere, or the root.
        assert!(!within("dc=org", base));
        assert!(!within("", base));
        assert!(!within("cn=admin,dc=other,dc=org", base));
        // Escapes resolve before comparing.
        assert!(within("uid=alice,dc=ex\\61mple,dc=org", base));
        // Multi-valued RDNs compare as sets.
        assert!(within(
            "cn=a,ou=x+l=y,dc=example,dc=org",
            "l=y+ou=x,dc=example,dc=org"
        ));
        assert!(!within(
            "cn=a,ou=x+l=y,dc=example,dc=org",
            "ou=x,dc=example,dc=org"
        ));
    }

    #[test]
    fn bad_dns_do_not_parse() {
        for bad in [
            "uid",
            "uid=a,",
            "=a",
            "uid=a;dc=org",
            "uid=#616c696365,dc=example,dc=org",
            "uid=a\\",
            "uid=a\\zz",
            "uid=a\\00,dc=org",
            "uid=a\"b",
            "uid=a<b",
            "u id=a",
            "uid=a+uid=b",
            "uid=\\ff\\fe",
            "1.02.3=a",
        ] {
            assert!(Dn::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn what_is_sent_is_what_was_checked() {
        let d = dn("UID = alice\\2c ,ou=x+CN=y\\ ,dc=example,dc=org");
        assert_eq!(d.to_string(), "uid=alice\\,,cn=y\\ +ou=x,dc=example,dc=org");
        // And it parses back to the same DN.
        let again = dn(&d.to_string());
        assert_eq!(again.to_string(), d.to_string());
        assert_eq!(dn("cn=\\#x\\ \\ y").to_string(), "cn=\\#x  y");
        assert_eq!(dn("cn=a\\0ab").to_string(), "cn=a\\0ab");
    }

    #[test]
    fn attribute_selectors() {
        for ok in [
            "cn",
            "memberOf",
            "*",
            "+",
            "1.1",
            "2.5.4.3",
            "cn;lang-en",
            "x-foo",
        ] {
            assert!(is_attribute_selector(ok), "{ok}");
        }
        for bad in ["", "c n", "(cn)", "cn=x", "1..2", "-cn", "cn;"] {
            assert!(!is_attribute_selector(bad), "{bad}");
        }
    }

    fn profile(url: &str) -> Arc<LdapProfile> {
        Arc::new(LdapProfile {
            name: "t".into(),
            url: url.into(),
            starttls: false,
            ca_file: None,
            base_dn: "dc=example,dc=org".into(),
            bind_dn: None,
            bind_password: None,
            timeout: Duration::from_millis(200),
            pool_size: 1,
        })
    }

    #[test]
    fn refusals_need_no_directory() {
        let pool = LdapPool::new(profile("ldap://127.0.0.1:9"));
        assert!(matches!(
            pool.bind("uid=a,dc=example,dc=org", ""),
            Ok(false)
        ));
        assert!(matches!(
            pool.bind("uid=a,dc=evil,dc=org", "pw"),
            Err(LdapError::Refused(_))
        ));
        assert!(matches!(
            pool.search("dc=example,dc=org", Scope::Sub, "(uid=a", &[]),
            Err(LdapError::Refused(_))
        ));
        assert!(matches!(
            pool.search("dc=org", Scope::Sub, "(uid=a)", &[]),
            Err(LdapError::Refused(_))
        ));
        // No runtime here: a real request is unavailable, not a panic.
        assert!(matches!(
            pool.bind("uid=a,dc=example,dc=org", "pw"),
            Err(LdapError::Unavailable(_))
        ));
    }

    #[test]
    fn a_directory_that_is_down_is_unavailable_within_the_timeout() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let pool = Arc::new(LdapPool::new(profile(&format!("ldap://127.0.0.1:{port}"))));
        let p = pool.clone();
        let started = std::time::Instant::now();
        let (bind, search) = rt
            .block_on(async {
                tokio::task::spawn_blocking(move || {
                    (
                        p.bind("uid=a,dc=example,dc=org", "pw"),
                        p.search("dc=example,dc=org", Scope::Sub, "(uid=a)", &[]),
                    )
                })
                .await
            })
            .expect("join");
        assert!(matches!(bind, Err(LdapError::Unavailable(_))), "{bind:?}");
        assert!(
            matches!(search, Err(LdapError::Unavailable(_))),
            "{search:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
