//! Helpers around tokio-xmpp 6, the independent client library the end-to-end tests speak
//! through: a logged-in `Client`, bounded waits for its events, and a SASL-only login that
//! forces one mechanism (tokio-xmpp's `Client` always picks the strongest one offered).
//!
//! Shell (sockets). Spec: RFC 6120 §6–7 as implemented by tokio-xmpp; plain TCP only, so
//! the vhosts under test set `allow_unencrypted = true`.
//! Invariants: every wait is bounded (`Client` retries failed logins forever, so a login that
//! never comes online ends the test at the deadline with a clear message).
//! Tests: used by tests/all/{login,routing,component}.rs.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt as _;
use tokio_xmpp::connect::{DnsConfig, ServerConnector as _, TcpServerConnector};
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::stream_features::StreamFeatures;
use tokio_xmpp::xmlstream::{StreamHeader, Timeouts, XmppStream};
use tokio_xmpp::{Client, Event, Stanza};

/// How long a login may take.
pub(crate) const LOGIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one expected stanza may take.
pub(crate) const STANZA_TIMEOUT: Duration = Duration::from_secs(10);

/// Parse a JID, panicking on test typos.
pub(crate) fn jid(s: &str) -> Jid {
    s.parse().unwrap_or_else(|e| panic!("bad JID {s:?}: {e}"))
}

/// Log in over plain TCP at `addr` as `jid` and wait until online; returns the bound JID.
pub(crate) async fn online(addr: SocketAddr, account: &str, password: &str) -> (Client, Jid) {
    let mut client = Client::new_plaintext(
        jid(account),
        password,
        DnsConfig::addr(&addr.to_string()),
        Timeouts::tight(),
    );
    let deadline = tokio::time::Instant::now() + LOGIN_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, client.next()).await {
            Err(_) => panic!(
                "{account} did not come online within {LOGIN_TIMEOUT:?} (login keeps failing?)"
            ),
            Ok(None) => panic!("{account}: client stream ended before coming online"),
            Ok(Some(Event::Online { bound_jid, .. })) => return (client, bound_jid),
            Ok(Some(Event::Disconnected(e))) => {
                panic!("{account} disconnected before coming online: {e}")
            }
            Ok(Some(Event::Stanza(_))) => {}
        }
    }
}

/// Wait for a stanza matching `pred`, skipping others; panics on timeout or disconnect.
pub(crate) async fn wait_stanza(
    client: &mut Client,
    what: &str,
    pred: impl Fn(&Stanza) -> bool,
) -> Stanza {
    let deadline = tokio::time::Instant::now() + STANZA_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, client.next()).await {
            Err(_) => panic!("no {what} within {STANZA_TIMEOUT:?}; other stanzas seen: {seen:#?}"),
            Ok(None) => panic!("client stream ended while waiting for {what}"),
            Ok(Some(Event::Stanza(s))) if pred(&s) => return s,
            Ok(Some(Event::Stanza(s))) => seen.push(s),
            Ok(Some(Event::Disconnected(e))) => {
                panic!("disconnected while waiting for {what}: {e}")
            }
            Ok(Some(Event::Online { .. })) => {}
        }
    }
}

/// Authenticate with SASL using only `mechanisms` (no resource binding); on success returns
/// the stream features offered after the stream restart.
///
/// # Errors
/// tokio-xmpp's error, e.g. `Error::Auth(AuthError::Fail(NotAuthorized))`.
pub(crate) async fn sasl_only(
    addr: SocketAddr,
    account: &str,
    password: &str,
    mechanisms: &[&str],
) -> Result<StreamFeatures, tokio_xmpp::Error> {
    let account = jid(account);
    let user = account
        .node()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    let domain = account.domain().as_str().to_owned();
    let connector = TcpServerConnector::from(DnsConfig::addr(&addr.to_string()));
    let (pending, _binding) = connector
        .connect(&account, ns::JABBER_CLIENT, Timeouts::tight())
        .await?;
    let (_features, stream): (StreamFeatures, XmppStream<_>) = pending.recv_features().await?;
    let creds = sasl::common::Credentials::default()
        .with_username(user)
        .with_password(password);
    let mechs: BTreeSet<String> = mechanisms.iter().map(|m| (*m).to_owned()).collect();
    let stream = tokio_xmpp::client_login(stream, mechs, creds).await?;
    let pending = stream
        .send_header(StreamHeader {
            to: Some(Cow::Owned(domain)),
            from: None,
            id: None,
        })
        .await?;
    let (features, _stream): (StreamFeatures, XmppStream<_>) = pending.recv_features().await?;
    Ok(features)
}

/// `sasl_only` bounded by [`LOGIN_TIMEOUT`].
pub(crate) async fn sasl_only_bounded(
    addr: SocketAddr,
    account: &str,
    password: &str,
    mechanisms: &[&str],
) -> Result<StreamFeatures, tokio_xmpp::Error> {
    tokio::time::timeout(
        LOGIN_TIMEOUT,
        sasl_only(addr, account, password, mechanisms),
    )
    .await
    .unwrap_or_else(|_| {
        panic!("SASL exchange for {account} with {mechanisms:?} did not finish in time")
    })
}

/// Whether `err` is a SASL failure with condition not-authorized.
pub(crate) fn is_not_authorized(err: &tokio_xmpp::Error) -> bool {
    matches!(
        err,
        tokio_xmpp::Error::Auth(tokio_xmpp::error::AuthError::Fail(
            tokio_xmpp::parsers::sasl::DefinedCondition::NotAuthorized
        ))
    )
}
