//! Owns a synthetic browser-like endpoint for tests and benchmarks: a full ICE agent in the
//! CONTROLLED role that knows only the SFU's host candidates (its own address reaches the SFU
//! solely through its checks, as with a browser's mDNS-hidden host candidates), a DTLS client
//! that checks the SFU's certificate against the signalled fingerprint, and SRTP/SRTCP keyed from
//! the DTLS exporter. Built from the same protocol crates as the SFU, in the opposite roles.
//! Sans-IO like the core: feed datagrams and time, drain datagrams.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rtc_dtls::config::{ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_dtls::endpoint::{Endpoint as DtlsEndpoint, EndpointEvent};
pub use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_ice::agent::agent_config::AgentConfig;
use rtc_ice::candidate::CandidateType;
use rtc_ice::mdns::MulticastDnsMode;
use rtc_ice::network_type::NetworkType;
use rtc_ice::{Agent, Event as IceEvent};
use rtc_shared::{TransportContext, TransportMessage, TransportProtocol};
use sansio::Protocol;

use crate::cert::{DtlsCertificate, parse_fingerprint};
use crate::demux::{self, PacketKind};
use crate::rng::{SeededProvider, SharedRng};
use crate::transport::{SRTP_PROFILES, Srtp, fingerprint_verifier, host_candidate, srtp_from_dtls};
use crate::types::{LocalTransport, RemoteTransport, SfuError, Transmit};

/// A synthetic WebRTC endpoint (ICE controlled, DTLS client, SRTP).
pub struct Client {
    local: SocketAddr,
    provider: Arc<dyn RTCCryptoProvider>,
    certificate: DtlsCertificate,
    ufrag: String,
    pwd: String,
    agent: Agent,
    dtls: DtlsEndpoint,
    dtls_config: Option<Arc<HandshakeConfig>>,
    srtp_profiles: Vec<SrtpProtectionProfile>,
    sfu_addr: Option<SocketAddr>,
    dtls_started: bool,
    srtp: Option<Srtp>,
    transmits: VecDeque<Transmit>,
    rtp_in: VecDeque<Vec<u8>>,
    rtcp_in: VecDeque<Vec<u8>>,
}

impl Client {
    /// A client bound (logically) to `local`, with credentials drawn from `seed`.
    pub fn new(now: Instant, local: SocketAddr, seed: u64) -> Result<Self, SfuError> {
        let rng = SharedRng::new(Box::new(StdRng::seed_from_u64(seed)));
        let provider =
            SeededProvider::shared(rng.clone()).map_err(|e| SfuError::Crypto(e.to_string()))?;
        let certificate = DtlsCertificate::generate()?;
        let ufrag = rng.ice_string(4);
        let pwd = rng.ice_string(22);
        let config = AgentConfig {
            local_ufrag: ufrag.clone(),
            local_pwd: pwd.clone(),
            is_controlling: false,
            candidate_types: vec![CandidateType::Host],
            network_types: vec![NetworkType::Udp4, NetworkType::Udp6],
            multicast_dns_mode: MulticastDnsMode::Disabled,
            check_interval: Duration::from_millis(50),
            ..AgentConfig::default()
        };
        let mut agent = Agent::new(now, Arc::new(config), provider.clone())
            .map_err(|e| SfuError::Crypto(format!("ice agent: {e}")))?;
        agent
            .add_local_candidate(host_candidate(local)?)
            .map_err(|e| SfuError::Crypto(format!("local candidate: {e}")))?;
        Ok(Self {
            local,
            provider,
            certificate,
            ufrag,
            pwd,
            agent,
            dtls: DtlsEndpoint::new(local, TransportProtocol::UDP, None),
            dtls_config: None,
            srtp_profiles: SRTP_PROFILES.to_vec(),
            sfu_addr: None,
            dtls_started: false,
            srtp: None,
            transmits: VecDeque::new(),
            rtp_in: VecDeque::new(),
            rtcp_in: VecDeque::new(),
        })
    }

    /// Replaces the SRTP profiles offered in the ClientHello (call before [`Self::set_remote`]).
    pub fn set_srtp_profiles(&mut self, profiles: Vec<SrtpProtectionProfile>) {
        self.srtp_profiles = profiles;
    }

    /// The negotiated SRTP profile, once connected.
    pub fn srtp_profile(&self) -> Option<&'static str> {
        self.srtp.as_ref().map(|s| s.profile)
    }

    /// What the focus would learn from this client's answer: ICE credentials and fingerprint.
    pub fn remote_transport(&self) -> RemoteTransport {
        RemoteTransport {
            ufrag: self.ufrag.clone(),
            pwd: self.pwd.clone(),
            fingerprint: crate::types::Fingerprint {
                hash: "sha-256".to_owned(),
                value: self.certificate.fingerprint().to_owned(),
            },
        }
    }

    /// Applies the SFU's transport (from the focus's offer) and starts ICE checks towards its
    /// host candidates.
    pub fn set_remote(&mut self, now: Instant, sfu: &LocalTransport) -> Result<(), SfuError> {
        let expected = parse_fingerprint(&sfu.fingerprint.value)
            .ok_or_else(|| SfuError::BadFingerprint(sfu.fingerprint.value.clone()))?;
        let verify = fingerprint_verifier(self.provider.clone(), expected);
        let config = ConfigBuilder::default()
            .with_crypto_provider(self.provider.clone())
            .with_certificates(vec![self.certificate.certificate.clone()])
            .with_srtp_protection_profiles(self.srtp_profiles.clone())
            .with_insecure_skip_verify(true)
            .with_verify_peer_certificate(Some(verify))
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(true, None)
            .map_err(|e| SfuError::Crypto(format!("dtls config: {e}")))?;
        self.dtls_config = Some(Arc::new(config));
        for c in &sfu.candidates {
            self.agent
                .add_remote_candidate(host_candidate(c.addr)?)
                .map_err(|e| SfuError::Crypto(format!("remote candidate: {e}")))?;
        }
        self.agent
            .start_connectivity_checks(now, false, sfu.ufrag.clone(), sfu.pwd.clone())
            .map_err(|e| SfuError::Crypto(format!("ice start: {e}")))?;
        self.drain(now);
        Ok(())
    }

    /// Feeds a datagram received from `from`.
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        match demux::classify(data) {
            PacketKind::Stun => {
                let _ = self.agent.handle_read(TransportMessage {
                    now,
                    transport: TransportContext {
                        local_addr: self.local,
                        peer_addr: from,
                        transport_protocol: TransportProtocol::UDP,
                        ecn: None,
                    },
                    message: BytesMut::from(data),
                });
            }
            PacketKind::Dtls => {
                if let Ok(events) = self.dtls.read(now, from, None, BytesMut::from(data))
                    && events
                        .iter()
                        .any(|e| matches!(e, EndpointEvent::HandshakeComplete))
                    && let Some(state) = self.dtls.get_connection_state(from)
                    && let Ok(srtp) = srtp_from_dtls(state, &self.provider)
                {
                    self.srtp = Some(srtp);
                }
            }
            PacketKind::Rtp => {
                if let Some(srtp) = self.srtp.as_mut()
                    && let Ok(plain) = srtp.inbound.decrypt_rtp(data)
                {
                    self.rtp_in.push_back(Vec::from(plain));
                }
            }
            PacketKind::Rtcp => {
                if let Some(srtp) = self.srtp.as_mut()
                    && let Ok(plain) = srtp.inbound.decrypt_rtcp(data)
                {
                    self.rtcp_in.push_back(Vec::from(plain));
                }
            }
            PacketKind::Unknown => {}
        }
        self.drain(now);
    }

    /// Drives ICE and DTLS timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = self.agent.handle_timeout(now);
        if let Some(sfu) = self.sfu_addr {
            let _ = self.dtls.handle_timeout(sfu, now);
        }
        self.drain(now);
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let dtls = self.sfu_addr.and_then(|a| self.dtls.poll_timeout(&a));
        [self.agent.poll_timeout(), dtls]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Closes the DTLS association (a `close_notify` to the SFU) and starts a new handshake
    /// with the same certificate over the same ICE pair, as a browser restarting its DTLS
    /// transport does. SRTP is keyed again when the new handshake completes.
    pub fn restart_dtls(&mut self, now: Instant) {
        if let Some(sfu) = self.sfu_addr {
            self.dtls.stop(now, sfu);
        }
        self.srtp = None;
        self.dtls_started = false;
        self.drain(now);
    }

    /// DTLS completed and SRTP is keyed.
    pub fn is_connected(&self) -> bool {
        self.srtp.is_some()
    }

    /// Protects and queues a plaintext RTP packet.
    pub fn send_rtp(&mut self, packet: &[u8]) -> Result<(), SfuError> {
        self.send_protected(packet, false)
    }

    /// Protects and queues a plaintext RTCP (compound) packet.
    pub fn send_rtcp(&mut self, packet: &[u8]) -> Result<(), SfuError> {
        self.send_protected(packet, true)
    }

    fn send_protected(&mut self, packet: &[u8], rtcp: bool) -> Result<(), SfuError> {
        let (Some(to), Some(srtp)) = (self.sfu_addr, self.srtp.as_mut()) else {
            return Err(SfuError::Crypto("not connected".into()));
        };
        let data = if rtcp {
            srtp.outbound.encrypt_rtcp(packet)
        } else {
            srtp.outbound.encrypt_rtp(packet)
        }
        .map_err(|e| SfuError::Crypto(e.to_string()))?;
        self.transmits.push_back(Transmit {
            to,
            from: self.local,
            data: Vec::from(data),
        });
        Ok(())
    }

    /// The next decrypted RTP packet received.
    pub fn poll_rtp(&mut self) -> Option<Vec<u8>> {
        self.rtp_in.pop_front()
    }

    /// The next decrypted RTCP compound received.
    pub fn poll_rtcp(&mut self) -> Option<Vec<u8>> {
        self.rtcp_in.pop_front()
    }

    fn drain(&mut self, now: Instant) {
        while let Some(t) = self.agent.poll_write() {
            self.transmits.push_back(Transmit {
                to: t.transport.peer_addr,
                from: t.transport.local_addr,
                data: Vec::from(t.message),
            });
        }
        while let Some(e) = self.agent.poll_event() {
            if let IceEvent::SelectedCandidatePairChange(_, remote) = e.event {
                self.sfu_addr = Some(remote.addr());
            }
        }
        if !self.dtls_started
            && let (Some(sfu), Some(config)) = (self.sfu_addr, self.dtls_config.clone())
        {
            self.dtls_started = true;
            if let Err(e) = self.dtls.connect(now, sfu, config, None) {
                tracing::warn!("client dtls connect: {e}");
            }
        }
        while let Some(t) = self.dtls.poll_transmit() {
            if let Some(to) = self.sfu_addr {
                self.transmits.push_back(Transmit {
                    to,
                    from: self.local,
                    data: Vec::from(t.message),
                });
            }
        }
    }
}
