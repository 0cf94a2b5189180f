//! A TCP proxy on loopback in front of a real server, which a test can make hang: while
//! frozen it keeps every connection open and accepts new ones, but forwards nothing, as a
//! frozen process or a silent network does. Thawed, it forwards again. Cut, it closes every
//! connection and every new one at once, as a server that is down does; restored, it
//! forwards again. (Postgres is shared by every test run, so it cannot be SIGSTOPped or
//! stopped itself.)

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct HangingProxy {
    address: SocketAddr,
    frozen: watch::Sender<bool>,
    down: watch::Sender<bool>,
}

impl HangingProxy {
    /// Listens on a free loopback port and forwards each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> HangingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (frozen, watching) = watch::channel(false);
        let (down, watching_down) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *watching_down.borrow() {
                    continue; // closed at once
                }
                let watching = watching.clone();
                let mut watching_down = watching_down.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    // Both directions end (both sockets close) when the proxy is cut.
                    tokio::select! {
                        _ = async {
                            tokio::join!(
                                pump(client_read, server_write, watching.clone()),
                                pump(server_read, client_write, watching),
                            )
                        } => {}
                        _ = watching_down.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        HangingProxy {
            address,
            frozen,
            down,
        }
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// From now on nothing is forwarded either way; connections stay open.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }

    /// From now on every connection is closed, open ones and new ones, as by a server that
    /// is down.
    pub fn cut(&self) {
        self.down.send_replace(true);
    }

    /// New connections are forwarded again.
    pub fn restore(&self) {
        self.down.send_replace(false);
    }
}

/// Copies `from` to `to`, holding whatever it read while the proxy is frozen.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        // Held, not dropped: a thaw delivers it (a frozen process answers late, not never).
        if frozen.wait_for(|frozen| !*frozen).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// How long a test waits for an answer from a node whose Postgres hangs: several times the
/// node's own deadline, so only a missing deadline makes the request fail.
pub const PATIENCE: Duration = Duration::from_secs(20);
