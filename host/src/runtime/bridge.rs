//! The bridge task: the SFU as the focuses see it. It owns the SFU shell (lilt-sfu's UDP
//! socket and core), turns the focuses' colibri2-shaped requests into SFU calls, answers
//! allocations back to the router, opens and closes the endpoints' bridge channels, and
//! announces the dominant speaker on them.
//!
//! Shell (tokio). Invariants: the router never waits on this task (requests arrive on a
//! bounded queue the router fills with `try_send`); this task waits on the router only to
//! hand back an allocation; an SFU error on one request is logged and changes nothing else.
//! Tests: tests/all/meeting.rs (browsers through the whole path).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use lilt_sfu::shell::{SfuHandle, Shell};
use lilt_sfu::{GroupSemantics, MediaKind, RemoteTransport, SfuEvent};
use tokio::sync::mpsc;

use super::colibri::{self, Channels};
use super::router_task::RouterCmd;
use crate::config::{Config, ListenerKind};
use crate::focus::{BridgeRequest, LocalTransport};
use crate::jingle::{Candidate, EndpointSources};

/// Requests queued for the bridge before the router drops further ones.
pub const QUEUE: usize = 16 * 1024;

/// A running bridge.
pub struct Bridge {
    /// Where the router task sends the focuses' requests.
    pub requests: mpsc::Sender<(String, BridgeRequest)>,
    /// The SFU, for statistics.
    pub handle: SfuHandle,
    /// The SFU shell's task.
    pub shell: tokio::task::JoinHandle<std::io::Result<()>>,
    /// This task.
    pub task: tokio::task::JoinHandle<()>,
}

impl Bridge {
    /// Bind the SFU's socket and start both tasks. Returns `None` when no vhost has a focus.
    ///
    /// # Errors
    /// When the UDP socket cannot be bound or the SFU cannot start.
    pub async fn start(
        config: &Config,
        router: super::router_task::Routers,
        channels: Arc<Channels>,
    ) -> anyhow::Result<Option<Bridge>> {
        if !config.vhosts.iter().any(|v| v.focus.is_some()) {
            return Ok(None);
        }
        let (shell, handle, events) =
            Shell::bind_advertised(config.sfu.bind, &config.sfu.advertise)
                .await
                .with_context(|| format!("sfu.bind: cannot use {}", config.sfu.bind))?;
        let local_addr = shell.local_addr();
        let shell = tokio::spawn(shell.run());
        let last_n = config.sfu.last_n;
        handle
            .call(move |sfu| sfu.set_last_n(last_n))
            .await
            .map_err(|_| anyhow::anyhow!("the SFU stopped at start"))?;
        tracing::info!(message = "SFU listening.", addr = %local_addr, advertise = ?config.sfu.advertise);
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = Task {
            handle: handle.clone(),
            router,
            channels,
            public_url: public_url(config),
            previous: HashMap::new(),
        };
        Ok(Some(Bridge {
            requests: tx,
            handle,
            shell,
            task: tokio::spawn(task.run(rx, events)),
        }))
    }
}

/// Where browsers open the bridge channel, per vhost: the configured URL, or an HTTP
/// listener's port on the vhost's own name: the TLS one when there is one (a page served over
/// HTTPS may not open `ws://`), else the first plain one.
enum PublicUrl {
    Configured(String),
    Listener { tls: bool, port: u16 },
    Default,
}

impl PublicUrl {
    fn base(&self, vhost: &str) -> String {
        match self {
            PublicUrl::Configured(u) => u.clone(),
            PublicUrl::Listener { tls: true, port } => format!("wss://{vhost}:{port}/colibri-ws"),
            PublicUrl::Listener { tls: false, port } => format!("ws://{vhost}:{port}/colibri-ws"),
            PublicUrl::Default => format!("wss://{vhost}/colibri-ws"),
        }
    }
}

fn public_url(config: &Config) -> PublicUrl {
    if let Some(u) = &config.sfu.public_url {
        return PublicUrl::Configured(u.clone());
    }
    let http = |tls| {
        config
            .listeners
            .iter()
            .find(|l| l.kind == ListenerKind::Http { tls })
            .map(|l| PublicUrl::Listener {
                tls,
                port: l.bind.port(),
            })
    };
    http(true)
        .or_else(|| http(false))
        .unwrap_or(PublicUrl::Default)
}

struct Task {
    handle: SfuHandle,
    router: super::router_task::Routers,
    channels: Arc<Channels>,
    public_url: PublicUrl,
    /// Recent dominant speakers per conference, newest first.
    previous: HashMap<String, Vec<String>>,
}

/// What the shell's `call` gives back when the SFU task has ended.
const GONE: &str = "the SFU is not running";

impl Task {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<(String, BridgeRequest)>,
        mut events: mpsc::UnboundedReceiver<SfuEvent>,
    ) {
        loop {
            tokio::select! {
                r = requests.recv() => match r {
                    Some((vhost, request)) => self.request(&vhost, request).await,
                    None => return,
                },
                Some(e) = events.recv() => self.event(e),
            }
        }
    }

    async fn request(&mut self, vhost: &str, request: BridgeRequest) {
        match request {
            BridgeRequest::Allocate {
                conference,
                endpoint,
            } => {
                let transport = self.allocate(vhost, &conference, &endpoint).await;
                if let Err(e) = &transport {
                    tracing::warn!(message = "SFU allocation failed.", conference, endpoint, error = %e);
                }
                let _ = self
                    .router
                    .send(RouterCmd::Allocated {
                        vhost: vhost.to_owned(),
                        conference,
                        endpoint,
                        transport: transport.map(Box::new),
                    })
                    .await;
            }
            BridgeRequest::Connect {
                conference,
                endpoint,
                ufrag,
                pwd,
                fingerprint,
                candidates,
            } => {
                let Some((hash, value)) = fingerprint else {
                    tracing::debug!(
                        message = "A transport without a DTLS fingerprint.",
                        conference,
                        endpoint
                    );
                    return;
                };
                let remote = RemoteTransport {
                    ufrag,
                    pwd,
                    fingerprint: lilt_sfu::Fingerprint { hash, value },
                };
                // Host candidates are usually mDNS names; the SFU learns those addresses from
                // the browser's checks. Literal UDP addresses are passed on.
                let addrs: Vec<SocketAddr> = candidates
                    .iter()
                    .filter(|c| c.protocol.eq_ignore_ascii_case("udp"))
                    .filter_map(|c| Some(SocketAddr::new(c.ip.parse().ok()?, c.port)))
                    .collect();
                let result = self
                    .handle
                    .call(move |sfu| {
                        sfu.set_remote_transport(&conference, &endpoint, &remote)?;
                        for a in addrs {
                            sfu.add_remote_candidate(&conference, &endpoint, a)?;
                        }
                        Ok::<_, lilt_sfu::SfuError>(())
                    })
                    .await;
                log_failure("transport", result);
            }
            BridgeRequest::Sources {
                conference,
                endpoint,
                sources,
            } => {
                let (srcs, groups) = sfu_sources(&sources);
                let result = self
                    .handle
                    .call(move |sfu| sfu.set_sources(&conference, &endpoint, srcs, groups))
                    .await;
                log_failure("sources", result);
            }
            BridgeRequest::Release {
                conference,
                endpoint,
            } => {
                self.channels.remove(&conference, &endpoint);
                let result = self
                    .handle
                    .call(move |sfu| sfu.remove_endpoint(&conference, &endpoint))
                    .await;
                log_failure("release", result);
            }
            BridgeRequest::Expire { conference } => {
                self.channels.remove_conference(&conference);
                self.previous.remove(&conference);
                let result = self
                    .handle
                    .call(move |sfu| sfu.expire_conference(&conference))
                    .await;
                // An expired conference may never have had an endpoint on the SFU.
                if let Ok(Err(lilt_sfu::SfuError::UnknownConference(_))) = result {
                    return;
                }
                log_failure("expire", result);
            }
        }
    }

    async fn allocate(
        &self,
        vhost: &str,
        conference: &str,
        endpoint: &str,
    ) -> Result<LocalTransport, String> {
        let (c, e) = (conference.to_owned(), endpoint.to_owned());
        let local = self
            .handle
            .call(move |sfu| {
                if let Err(err) = sfu.create_conference(&c)
                    && !matches!(err, lilt_sfu::SfuError::ConferenceExists(_))
                {
                    return Err(err);
                }
                sfu.allocate_endpoint(&c, &e)
            })
            .await
            .map_err(|_| GONE.to_owned())?
            .map_err(|e| e.to_string())?;
        let pwd = channel_password();
        self.channels.allow(conference, endpoint, &pwd);
        let feedback = |kind| {
            local
                .feedback_sources
                .iter()
                .find(|f| f.kind == kind)
                .map_or(0, |f| f.ssrc)
        };
        Ok(LocalTransport {
            ufrag: local.ufrag.clone(),
            pwd: local.pwd.clone(),
            fingerprint: local.fingerprint.value.clone(),
            candidates: local
                .candidates
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let ip = c.addr.ip().to_string();
                    Candidate::udp_host(
                        &format!("c{i}"),
                        &c.foundation,
                        c.priority,
                        &ip,
                        c.addr.port(),
                    )
                })
                .collect(),
            web_socket: Some(format!(
                "{}/{}/{conference}/{endpoint}?pwd={pwd}",
                self.public_url.base(vhost),
                colibri::SERVER_ID
            )),
            feedback_ssrcs: (feedback(MediaKind::Audio), feedback(MediaKind::Video)),
        })
    }

    fn event(&mut self, e: SfuEvent) {
        match e {
            SfuEvent::DominantSpeakerChanged {
                conference,
                endpoint,
            } => {
                let previous = self.previous.entry(conference.clone()).or_default();
                self.channels
                    .dominant_speaker(&conference, &endpoint, previous);
                previous.retain(|p| *p != endpoint);
                previous.insert(0, endpoint);
                previous.truncate(8);
            }
            SfuEvent::ForwardedSourcesChanged {
                conference,
                endpoint,
                sources,
            } => {
                self.channels
                    .forwarded_sources(&conference, &endpoint, &sources);
            }
            SfuEvent::EndpointConnected {
                conference,
                endpoint,
            } => {
                tracing::info!(message = "Media connected.", conference, endpoint);
            }
            SfuEvent::EndpointFailed {
                conference,
                endpoint,
                reason,
            } => {
                tracing::warn!(
                    message = "Media transport failed.",
                    conference,
                    endpoint,
                    reason
                );
            }
            SfuEvent::IceConnected {
                conference,
                endpoint,
                remote,
            } => {
                tracing::debug!(message = "ICE connected.", conference, endpoint, %remote);
            }
        }
    }
}

fn log_failure<T>(
    what: &str,
    r: Result<Result<T, lilt_sfu::SfuError>, lilt_sfu::shell::ShellGone>,
) {
    match r {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(message = "SFU request refused.", what, error = %e),
        Err(_) => tracing::error!(message = GONE, what),
    }
}

/// A participant's sources as the SFU takes them.
fn sfu_sources(s: &EndpointSources) -> (Vec<lilt_sfu::Source>, Vec<lilt_sfu::SsrcGroup>) {
    let mut sources = Vec::new();
    let mut groups = Vec::new();
    for (kind, media) in [(MediaKind::Audio, s.audio()), (MediaKind::Video, s.video())] {
        sources.extend(media.sources.iter().map(|src| lilt_sfu::Source {
            ssrc: src.ssrc,
            kind,
            name: src.name.clone(),
        }));
        groups.extend(media.groups.iter().map(|g| lilt_sfu::SsrcGroup {
            semantics: match g.semantics.as_str() {
                "SIM" => GroupSemantics::Sim,
                "FID" => GroupSemantics::Fid,
                other => GroupSemantics::Other(other.to_owned()),
            },
            ssrcs: g.ssrcs.clone(),
        }));
    }
    (sources, groups)
}

/// A bridge-channel password: 24 characters from the OS's generator (as JVB's).
fn channel_password() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    /// The focus offers the transport-wide sequence number under the id the SFU reads.
    #[test]
    fn focus_and_sfu_agree_on_the_transport_cc_extension() {
        assert_eq!(
            crate::jingle::TRANSPORT_CC_ID,
            lilt_sfu::TRANSPORT_CC_EXTENSION
        );
        let offered = crate::jingle::Codecs::default();
        for exts in [
            &offered.audio_header_extensions,
            &offered.video_header_extensions,
        ] {
            assert!(exts.iter().any(|x| x.id == lilt_sfu::TRANSPORT_CC_EXTENSION
                && x.uri == crate::jingle::TRANSPORT_CC_URI));
        }
    }
}
