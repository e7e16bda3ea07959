//! Owns one endpoint's secure transport: its full ICE agent (controlling, accepting
//! peer-reflexive candidates), its DTLS server association (checking the browser's certificate
//! against the signalled fingerprint) and the SRTP/SRTCP contexts derived from the DTLS exporter
//! (RFC 5764). The core feeds it datagrams already demultiplexed to this endpoint and drains the
//! datagrams and state changes it produces.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::{HashAlgorithm, RTCCryptoProvider};
use rtc_dtls::endpoint::{Endpoint as DtlsEndpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_dtls::state::State;
use rtc_ice::agent::agent_config::AgentConfig;
use rtc_ice::candidate::candidate_host::CandidateHostConfig;
use rtc_ice::candidate::{CandidateConfig, CandidateType};
use rtc_ice::mdns::MulticastDnsMode;
use rtc_ice::network_type::NetworkType;
use rtc_ice::state::ConnectionState;
use rtc_ice::{Agent, Event as IceEvent};
use rtc_shared::error::Error as RtcError;
use rtc_shared::{TransportContext, TransportMessage, TransportProtocol};
use rtc_srtp::config::{Config as SrtpConfig, LABEL_EXTRACTOR_DTLS_SRTP};
use rtc_srtp::context::Context as SrtpContext;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use sansio::Protocol;

use crate::cert::parse_fingerprint;
use crate::types::{IceCandidate, SfuError};

/// SRTP protection profiles offered; the DTLS server picks the first of the client's list that
/// is in this one.
pub const SRTP_PROFILES: [SrtpProtectionProfile; 3] = [
    SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
    SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
    SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
];

/// Replay window for inbound SRTP (packets); video bursts reorder, so wider than the default 64.
const SRTP_REPLAY_WINDOW: usize = 512;

/// What the transport reports to the core after a step.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TransportEvent {
    /// ICE selected a pair; datagrams go to this address now.
    IceConnected(SocketAddr),
    /// DTLS finished and SRTP is keyed.
    Connected,
    /// The transport is dead.
    Failed(String),
}

/// A datagram produced by the transport: (to, from, bytes).
pub(crate) type Datagram = (SocketAddr, SocketAddr, Vec<u8>);

/// The SRTP contexts of a connected endpoint.
pub(crate) struct Srtp {
    /// The negotiated profile's name, as in RFC 5764 / RFC 7714.
    pub(crate) profile: &'static str,
    /// Unprotects what the endpoint sends.
    pub(crate) inbound: SrtpContext,
    /// Protects what is sent to the endpoint.
    pub(crate) outbound: SrtpContext,
}

/// One endpoint's ICE + DTLS + SRTP.
pub(crate) struct Transport {
    provider: Arc<dyn RTCCryptoProvider>,
    certificate: Certificate,
    agent: Agent,
    dtls: Option<DtlsEndpoint>,
    /// The address DTLS associated with first: the association's key in the DTLS endpoint.
    dtls_key: Option<SocketAddr>,
    /// Where to send: the selected pair's remote, else the last address media/DTLS came from.
    pub(crate) send_to: Option<SocketAddr>,
    /// Which local address to send from.
    pub(crate) send_from: SocketAddr,
    pub(crate) ice_connected: bool,
    pub(crate) srtp: Option<Srtp>,
    pub(crate) failed: bool,
    pub(crate) out: Vec<Datagram>,
    pub(crate) events: Vec<TransportEvent>,
    /// Whether the browser's credentials are known (the agent drops checks until then).
    remote_set: bool,
    /// What `set_remote` installed: (ufrag, pwd, fingerprint digest).
    remote: Option<(String, String, Vec<u8>)>,
    /// Binding requests that arrived before the browser's credentials: (from, local, bytes).
    /// A browser starts checking as soon as it has the offer, before the focus relays its
    /// answer; these are replayed into the agent once the credentials arrive, so the SFU
    /// learns the browser's address and starts its own checks at once.
    early_checks: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
}

/// How many early binding requests are kept per endpoint.
const EARLY_CHECKS: usize = 8;

impl Transport {
    /// A transport with fresh local credentials and a host candidate per address.
    pub(crate) fn new(
        now: Instant,
        provider: Arc<dyn RTCCryptoProvider>,
        certificate: Certificate,
        ufrag: String,
        pwd: String,
        host_addrs: &[SocketAddr],
    ) -> Result<Self, SfuError> {
        let config = AgentConfig {
            local_ufrag: ufrag,
            local_pwd: pwd,
            is_controlling: true,
            candidate_types: vec![CandidateType::Host],
            network_types: vec![NetworkType::Udp4, NetworkType::Udp6],
            multicast_dns_mode: MulticastDnsMode::Disabled,
            // Only peer-reflexive candidates are expected (browsers hide host addresses behind
            // mDNS): nominate as soon as a check succeeds rather than waiting for better pairs.
            host_acceptance_min_wait: Some(Duration::ZERO),
            prflx_acceptance_min_wait: Some(Duration::ZERO),
            ..AgentConfig::default()
        };
        let mut agent = Agent::new(now, Arc::new(config), provider.clone())
            .map_err(|e| SfuError::Crypto(format!("ice agent: {e}")))?;
        for addr in host_addrs {
            let candidate = host_candidate(*addr)?;
            agent
                .add_local_candidate(candidate)
                .map_err(|e| SfuError::Crypto(format!("host candidate {addr}: {e}")))?;
        }
        let send_from = host_addrs
            .first()
            .copied()
            .ok_or_else(|| SfuError::Crypto("no host address configured".into()))?;
        Ok(Self {
            provider,
            certificate,
            agent,
            dtls: None,
            dtls_key: None,
            send_to: None,
            send_from,
            ice_connected: false,
            srtp: None,
            failed: false,
            out: Vec::new(),
            events: Vec::new(),
            remote_set: false,
            remote: None,
            early_checks: Vec::new(),
        })
    }

    /// The current round-trip time of the nominated candidate pair, in seconds, once a
    /// consent check on it has been answered.
    pub(crate) fn rtt(&self, now: Instant) -> Option<f64> {
        self.agent
            .get_candidate_pairs_stats(now)
            .into_iter()
            .filter(|p| p.nominated && p.responses_received > 0)
            .map(|p| p.current_round_trip_time)
            .next()
    }

    /// The local candidates, as the focus signals them.
    pub(crate) fn local_candidates(&self) -> Vec<IceCandidate> {
        self.agent
            .get_local_candidates()
            .iter()
            .map(|c| IceCandidate {
                foundation: c.foundation(),
                component: c.component(),
                protocol: "udp",
                priority: c.priority(),
                addr: c.addr(),
                typ: "host",
            })
            .collect()
    }

    /// Installs the browser's credentials and fingerprint and starts connectivity checks.
    /// Returns the addresses of early checks that turned out authentic (now known to be the
    /// browser's).
    pub(crate) fn set_remote(
        &mut self,
        now: Instant,
        ufrag: &str,
        pwd: &str,
        fingerprint_hash: &str,
        fingerprint_value: &str,
    ) -> Result<Vec<SocketAddr>, SfuError> {
        if ufrag.len() < 4 || pwd.len() < 22 {
            return Err(SfuError::BadCredentials);
        }
        if !fingerprint_hash.eq_ignore_ascii_case("sha-256") {
            return Err(SfuError::BadFingerprint(fingerprint_hash.to_owned()));
        }
        let expected = parse_fingerprint(fingerprint_value)
            .filter(|d| d.len() == 32)
            .ok_or_else(|| SfuError::BadFingerprint(fingerprint_value.to_owned()))?;
        if let Some((u, p, f)) = &self.remote {
            // The focus relays every transport-info the same way as the session-accept: the
            // same transport again changes nothing; a different one would be an ICE restart or
            // a new DTLS identity, which Jitsi does with a new endpoint instead.
            return if u == ufrag && p == pwd && *f == expected {
                Ok(Vec::new())
            } else {
                Err(SfuError::RemoteTransportChanged)
            };
        }
        self.remote = Some((ufrag.to_owned(), pwd.to_owned(), expected.clone()));
        let verify = fingerprint_verifier(self.provider.clone(), expected);
        let config = ConfigBuilder::default()
            .with_crypto_provider(self.provider.clone())
            .with_certificates(vec![self.certificate.clone()])
            .with_srtp_protection_profiles(SRTP_PROFILES.to_vec())
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_verify_peer_certificate(Some(verify))
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(false, None)
            .map_err(|e| SfuError::Crypto(format!("dtls config: {e}")))?;
        self.dtls = Some(DtlsEndpoint::new(
            self.send_from,
            TransportProtocol::UDP,
            Some(Arc::new(config)),
        ));
        self.agent
            .start_connectivity_checks(now, true, ufrag.to_owned(), pwd.to_owned())
            .map_err(|e| SfuError::Crypto(format!("ice start: {e}")))?;
        self.remote_set = true;
        self.drain_agent();
        let mut authentic = Vec::new();
        for (from, local, data) in std::mem::take(&mut self.early_checks) {
            if self.handle_stun(now, from, local, &data) && !authentic.contains(&from) {
                authentic.push(from);
            }
        }
        Ok(authentic)
    }

    /// Adds a remote candidate the focus learned (optional: peer-reflexive discovery suffices).
    pub(crate) fn add_remote_candidate(&mut self, addr: SocketAddr) -> Result<(), SfuError> {
        let candidate = host_candidate(addr)?;
        self.agent
            .add_remote_candidate(candidate)
            .map_err(|e| SfuError::Crypto(format!("remote candidate {addr}: {e}")))?;
        self.drain_agent();
        Ok(())
    }

    /// Feeds a STUN datagram to the ICE agent. Returns whether it was accepted (authenticated).
    pub(crate) fn handle_stun(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local: SocketAddr,
        data: &[u8],
    ) -> bool {
        if !self.remote_set {
            if self.early_checks.len() < EARLY_CHECKS {
                self.early_checks.push((from, local, data.to_vec()));
            }
            return false;
        }
        let msg = TransportMessage {
            now,
            transport: TransportContext {
                local_addr: local,
                peer_addr: from,
                transport_protocol: TransportProtocol::UDP,
                ecn: None,
            },
            message: BytesMut::from(data),
        };
        let ok = self.agent.handle_read(msg).is_ok();
        self.drain_agent();
        ok
    }

    /// Feeds a DTLS datagram to the association.
    pub(crate) fn handle_dtls(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local: SocketAddr,
        data: &[u8],
    ) {
        if self.failed {
            return;
        }
        let Some(dtls) = self.dtls.as_mut() else {
            // The focus has not told us the browser's fingerprint yet; the browser retransmits.
            return;
        };
        if self.send_to.is_none() {
            self.send_to = Some(from);
            self.send_from = local;
        }
        // One association per endpoint, keyed by the address its first datagram came from: the
        // SFU only hands this transport datagrams from addresses ICE authenticated for the
        // endpoint, so a datagram from another of them (the selected pair moved) belongs to the
        // same association.
        let key = *self.dtls_key.get_or_insert(from);
        let result = dtls.read(now, key, None, BytesMut::from(data));
        let (completed, closed) = match &result {
            Ok(events) => (
                events
                    .iter()
                    .any(|e| matches!(e, EndpointEvent::HandshakeComplete)),
                events
                    .iter()
                    .any(|e| matches!(e, EndpointEvent::PeerClosed)),
            ),
            Err(RtcError::ErrNoMatchingCertificateFingerprint) => {
                self.fail("dtls: certificate does not match the signalled fingerprint");
                (false, false)
            }
            Err(e) => {
                tracing::debug!("dtls read from {from}: {e}");
                (false, false)
            }
        };
        self.drain_dtls();
        if closed {
            // The browser sent close_notify: the association is gone from the DTLS endpoint. The
            // endpoint is not failed for it (ICE consent decides whether the browser is still
            // there): the next handshake it starts, checked against the same fingerprint, keys
            // SRTP again.
            tracing::debug!("dtls: {from} closed the association (close_notify)");
            self.dtls_key = None;
            return;
        }
        if completed {
            let keyed = match dtls_state(self.dtls.as_ref(), key) {
                Some(state) => srtp_from_dtls(state, &self.provider),
                None => Err(SfuError::Crypto(
                    "dtls state missing after handshake".into(),
                )),
            };
            match keyed {
                Ok(srtp) => {
                    let first = self.srtp.is_none();
                    self.srtp = Some(srtp);
                    if first {
                        self.events.push(TransportEvent::Connected);
                    } else {
                        tracing::debug!("dtls: a new handshake from {from} re-keyed SRTP");
                    }
                }
                Err(e) => self.fail(&format!("srtp keying: {e}")),
            }
        }
    }

    /// Drives ICE checks/keepalives and DTLS retransmissions.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.failed {
            return;
        }
        if let Err(e) = self.agent.handle_timeout(now) {
            tracing::debug!("ice timeout: {e}");
        }
        self.drain_agent();
        // Only an association that exists has a retransmission timer; asking the endpoint about
        // one it does not have is an error ("invalid remote address"), not a transport failure.
        if let (Some(dtls), Some(key)) = (self.dtls.as_mut(), self.dtls_key)
            && dtls.get_connection_state(key).is_some()
        {
            if let Err(e) = dtls.handle_timeout(key, now) {
                self.fail(&format!("dtls: {e}"));
            }
            self.drain_dtls();
        }
    }

    /// The earliest time [`Self::handle_timeout`] is due.
    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        if self.failed {
            return None;
        }
        let ice = self.agent.poll_timeout();
        let dtls = match (&self.dtls, &self.dtls_key) {
            (Some(d), Some(k)) => d.poll_timeout(k),
            _ => None,
        };
        [ice, dtls].into_iter().flatten().min()
    }

    fn fail(&mut self, reason: &str) {
        if !self.failed {
            self.failed = true;
            self.events.push(TransportEvent::Failed(reason.to_owned()));
        }
    }

    fn drain_agent(&mut self) {
        while let Some(t) = self.agent.poll_write() {
            self.out.push((
                t.transport.peer_addr,
                t.transport.local_addr,
                Vec::from(t.message),
            ));
        }
        while let Some(e) = self.agent.poll_event() {
            match e.event {
                IceEvent::SelectedCandidatePairChange(local, remote) => {
                    self.send_to = Some(remote.addr());
                    self.send_from = local.addr();
                    self.ice_connected = true;
                    self.events
                        .push(TransportEvent::IceConnected(remote.addr()));
                }
                IceEvent::ConnectionStateChange(ConnectionState::Failed) => {
                    self.fail("ice: connectivity checks failed or consent expired");
                }
                _ => {}
            }
        }
    }

    fn drain_dtls(&mut self) {
        let Some(dtls) = self.dtls.as_mut() else {
            return;
        };
        while let Some(t) = dtls.poll_transmit() {
            if let Some(to) = self.send_to {
                self.out.push((to, self.send_from, Vec::from(t.message)));
            }
        }
    }
}

fn dtls_state(dtls: Option<&DtlsEndpoint>, key: SocketAddr) -> Option<&State> {
    dtls?.get_connection_state(key)
}

/// Derives the SRTP contexts from a completed DTLS handshake (RFC 5764 §4.2).
pub(crate) fn srtp_from_dtls(
    state: &State,
    provider: &Arc<dyn RTCCryptoProvider>,
) -> Result<Srtp, SfuError> {
    let (profile, name) = match state.srtp_protection_profile() {
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => {
            (ProtectionProfile::AeadAes128Gcm, "SRTP_AEAD_AES_128_GCM")
        }
        SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm => {
            (ProtectionProfile::AeadAes256Gcm, "SRTP_AEAD_AES_256_GCM")
        }
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => (
            ProtectionProfile::Aes128CmHmacSha1_80,
            "SRTP_AES128_CM_HMAC_SHA1_80",
        ),
        other => {
            return Err(SfuError::Crypto(format!(
                "unsupported srtp profile {other:?}"
            )));
        }
    };
    let mut config = SrtpConfig {
        profile,
        ..SrtpConfig::default()
    };
    let material = state
        .export_keying_material(LABEL_EXTRACTOR_DTLS_SRTP, &[], config.keying_material_len())
        .map_err(|e| SfuError::Crypto(format!("exporter: {e}")))?;
    config
        .set_session_keys_from_keying_material(material.as_ref(), state.is_client())
        .map_err(|e| SfuError::Crypto(format!("srtp keys: {e}")))?;
    let crypto = provider.crypto();
    let outbound = SrtpContext::new(
        &config.keys.local_master_key,
        &config.keys.local_master_salt,
        profile,
        None,
        None,
        crypto,
    )
    .map_err(|e| SfuError::Crypto(format!("srtp context: {e}")))?;
    let inbound = SrtpContext::new(
        &config.keys.remote_master_key,
        &config.keys.remote_master_salt,
        profile,
        Some(srtp_replay_protection(SRTP_REPLAY_WINDOW)),
        Some(srtcp_replay_protection(SRTP_REPLAY_WINDOW)),
        crypto,
    )
    .map_err(|e| SfuError::Crypto(format!("srtp context: {e}")))?;
    Ok(Srtp {
        profile: name,
        inbound,
        outbound,
    })
}

/// A UDP host candidate for `addr` (component 1: rtcp-mux), as the SFU and the synthetic
/// client both gather.
pub(crate) fn host_candidate(addr: SocketAddr) -> Result<rtc_ice::candidate::Candidate, SfuError> {
    CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..CandidateConfig::default()
        },
        ..CandidateHostConfig::default()
    }
    .new_candidate_host()
    .map_err(|e| SfuError::Crypto(format!("host candidate {addr}: {e}")))
}

/// What rtc-dtls calls to check a peer's certificates.
pub(crate) type PeerCertificateCheck = Arc<
    dyn Fn(&[Vec<u8>], &[rustls_pki_types::CertificateDer<'static>]) -> Result<(), RtcError>
        + Send
        + Sync,
>;

/// The DTLS peer-certificate check: the peer's first certificate must hash (SHA-256) to the
/// fingerprint signalled for it, compared in constant time.
pub(crate) fn fingerprint_verifier(
    provider: Arc<dyn RTCCryptoProvider>,
    expected: Vec<u8>,
) -> PeerCertificateCheck {
    Arc::new(
        move |certs: &[Vec<u8>], _: &[rustls_pki_types::CertificateDer<'static>]| {
            let first = certs.first().ok_or(RtcError::ErrNonCertificate)?;
            let digest = provider
                .crypto()
                .hash(HashAlgorithm::Sha256, first)
                .map_err(|e| RtcError::Crypto(e.to_string()))?;
            if rtc_dtls::crypto_provider::constant_time_eq(&digest, &expected) {
                Ok(())
            } else {
                Err(RtcError::ErrNoMatchingCertificateFingerprint)
            }
        },
    )
}
