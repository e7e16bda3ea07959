//! Owns the thin tokio shell around the sans-IO core: one UDP socket shared by all endpoints,
//! real time (`Instant::now()`), the core's timer, and a control channel. Control commands are
//! closures run on the core ([`SfuHandle::call`]), so the control API is exactly [`Sfu`]'s and
//! the shell stays small; events flow out on an unbounded channel.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::{DtlsCertificate, Sfu, SfuConfig, SfuError, SfuEvent};

type Command = Box<dyn FnOnce(&mut Sfu) + Send>;

/// Sends control commands to a running shell.
#[derive(Clone)]
pub struct SfuHandle {
    commands: mpsc::UnboundedSender<Command>,
}

/// The shell stopped (its task ended or the socket failed).
#[derive(Debug, thiserror::Error)]
#[error("the SFU shell is not running")]
pub struct ShellGone;

impl SfuHandle {
    /// Runs `f` on the core and returns its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Sfu) -> R + Send + 'static,
    ) -> Result<R, ShellGone> {
        self.enqueue(f)?.await.map_err(|_| ShellGone)
    }

    /// [`Self::call`] from a thread outside the runtime (tests, benches).
    pub fn call_blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Sfu) -> R + Send + 'static,
    ) -> Result<R, ShellGone> {
        self.enqueue(f)?.blocking_recv().map_err(|_| ShellGone)
    }

    /// Queues `f` for the core; its result arrives on the receiver.
    fn enqueue<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Sfu) -> R + Send + 'static,
    ) -> Result<oneshot::Receiver<R>, ShellGone> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Box::new(move |sfu| {
                let _ = tx.send(f(sfu));
            }))
            .map_err(|_| ShellGone)?;
        Ok(rx)
    }
}

/// Errors starting the shell.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// Binding or querying the socket failed.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// Building the core failed.
    #[error("sfu: {0}")]
    Sfu(#[from] SfuError),
}

/// A bound shell, ready to [`Shell::run`].
pub struct Shell {
    socket: UdpSocket,
    local: SocketAddr,
    sfu: Sfu,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<SfuEvent>,
}

impl Shell {
    /// Binds `bind` (a concrete address: it is also the advertised host candidate), generates a
    /// certificate and an OS-seeded RNG, and builds the core. Returns the shell, a handle for
    /// control, and the event stream.
    pub async fn bind(
        bind: SocketAddr,
    ) -> Result<(Self, SfuHandle, mpsc::UnboundedReceiver<SfuEvent>), ShellError> {
        Self::bind_advertised(bind, &[]).await
    }

    /// Binds `bind` (which may be `0.0.0.0`) and advertises `advertise` (with the bound port)
    /// as the host candidates instead: the address browsers reach, e.g. the public one behind a
    /// NAT. Datagrams are fed to the core as received on the first advertised address. With
    /// `advertise` empty, the bound address itself is advertised.
    pub async fn bind_advertised(
        bind: SocketAddr,
        advertise: &[std::net::IpAddr],
    ) -> Result<(Self, SfuHandle, mpsc::UnboundedReceiver<SfuEvent>), ShellError> {
        let socket = UdpSocket::bind(bind).await?;
        let bound = socket.local_addr()?;
        let host_addrs: Vec<SocketAddr> = if advertise.is_empty() {
            vec![bound]
        } else {
            advertise
                .iter()
                .map(|ip| SocketAddr::new(*ip, bound.port()))
                .collect()
        };
        let local = host_addrs.first().copied().unwrap_or(bound);
        let config = SfuConfig::new(host_addrs, DtlsCertificate::generate()?);
        let sfu = Sfu::new(config, Box::new(StdRng::from_os_rng()), Instant::now())?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        Ok((
            Self {
                socket,
                local,
                sfu,
                commands: cmd_rx,
                events: ev_tx,
            },
            SfuHandle { commands: cmd_tx },
            ev_rx,
        ))
    }

    /// The first advertised address (the bound port on it).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Runs until every [`SfuHandle`] is dropped. Socket errors on single datagrams are logged
    /// and skipped.
    pub async fn run(mut self) -> io::Result<()> {
        let mut buf = vec![0u8; 2048];
        loop {
            let deadline = self
                .sfu
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    match r {
                        Ok((n, from)) => {
                            self.sfu.handle_input(Instant::now(), from, self.local, &buf[..n]);
                        }
                        // A datagram-level error (e.g. an ICMP report surfacing) concerns one
                        // peer, not the SFU: note it and keep serving.
                        Err(e) => tracing::debug!("sfu recv: {e}"),
                    }
                    // Drain what else is queued without going back through the select.
                    for _ in 0..64 {
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((n, from)) => {
                                self.sfu.handle_input(Instant::now(), from, self.local, &buf[..n]);
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => {
                                tracing::debug!("sfu recv: {e}");
                                break;
                            }
                        }
                    }
                }
                cmd = self.commands.recv() => {
                    match cmd {
                        Some(f) => {
                            // Control calls take effect at the core's current time: bring it
                            // up to now first.
                            self.sfu.handle_timeout(Instant::now());
                            f(&mut self.sfu)
                        }
                        None => return Ok(()),
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.sfu.handle_timeout(Instant::now());
                }
            }
            while let Some(t) = self.sfu.poll_transmit() {
                if let Err(e) = self.socket.send_to(&t.data, t.to).await {
                    // A single unreachable peer must not stop the SFU.
                    tracing::debug!("send to {}: {e}", t.to);
                }
            }
            while let Some(e) = self.sfu.poll_event() {
                let _ = self.events.send(e);
            }
        }
    }
}
