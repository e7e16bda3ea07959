//! The tokio shell over real loopback UDP: two synthetic clients connect (ICE, DTLS, SRTP)
//! through the shell's socket and a packet from one reaches the other.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lilt_sfu::client::Client;
use lilt_sfu::shell::Shell;
use lilt_sfu::{MediaKind, SfuEvent, Source};
use tokio::net::UdpSocket;

struct Peer {
    socket: UdpSocket,
    client: Client,
}

impl Peer {
    /// Moves datagrams both ways and fires timers for up to `for_ms`.
    async fn pump(&mut self, for_ms: u64) {
        let mut buf = [0u8; 2048];
        let end = Instant::now() + Duration::from_millis(for_ms);
        while Instant::now() < end {
            while let Some(t) = self.client.poll_transmit() {
                let _ = self.socket.send_to(&t.data, t.to).await;
            }
            if let Ok(Ok((n, from))) =
                tokio::time::timeout(Duration::from_millis(2), self.socket.recv_from(&mut buf))
                    .await
            {
                self.client.handle_input(Instant::now(), from, &buf[..n]);
            }
            if self
                .client
                .poll_timeout()
                .is_some_and(|t| t <= Instant::now())
            {
                self.client.handle_timeout(Instant::now());
            }
        }
    }
}

#[tokio::test]
async fn shell_forwards_between_real_sockets() {
    let (shell, handle, mut events) = Shell::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    tokio::spawn(shell.run());
    handle
        .call(|s| s.create_conference("c"))
        .await
        .expect("shell")
        .expect("conference");
    let mut peers = Vec::new();
    for (i, id) in ["a", "b"].into_iter().enumerate() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let local: SocketAddr = socket.local_addr().expect("addr");
        let transport = handle
            .call(move |s| s.allocate_endpoint("c", id))
            .await
            .expect("shell")
            .expect("allocate");
        let mut client = Client::new(Instant::now(), local, i as u64 + 10).expect("client");
        client
            .set_remote(Instant::now(), &transport)
            .expect("remote");
        let remote = client.remote_transport();
        handle
            .call(move |s| s.set_remote_transport("c", id, &remote))
            .await
            .expect("shell")
            .expect("set remote");
        peers.push(Peer { socket, client });
    }
    handle
        .call(|s| {
            s.set_sources(
                "c",
                "a",
                vec![Source {
                    ssrc: 42,
                    kind: MediaKind::Audio,
                    name: None,
                }],
                vec![],
            )
        })
        .await
        .expect("shell")
        .expect("sources");
    for _ in 0..200 {
        for p in peers.iter_mut() {
            p.pump(10).await;
        }
        if peers.iter().all(|p| p.client.is_connected()) {
            break;
        }
    }
    assert!(peers.iter().all(|p| p.client.is_connected()));
    let mut connected = 0;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
        connected += usize::from(matches!(e, SfuEvent::EndpointConnected { .. }));
        if connected == 2 {
            break;
        }
    }
    assert_eq!(connected, 2);

    let mut pkt = vec![0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42];
    pkt.extend_from_slice(b"hello over udp");
    peers[0].client.send_rtp(&pkt).expect("send");
    peers[0].pump(20).await;
    let mut got = None;
    for _ in 0..50 {
        peers[1].pump(10).await;
        if let Some(p) = peers[1].client.poll_rtp() {
            got = Some(p);
            break;
        }
    }
    assert_eq!(got.as_deref(), Some(&pkt[..]));
    let stats = handle.call(|s| s.stats()).await.expect("shell");
    assert_eq!(stats.endpoints[1].counters.rtp_packets_out, 1);
}
