//! A TCP proxy on 127.0.0.1 that a story can cut: a network partition between one process and a server.
//!
//! Owns: listening on a free loopback port, forwarding each connection to the target port, and, once cut,
//! forwarding nothing more: bytes already sent stay unanswered and new connections are accepted but never
//! forwarded, as a silent partition does (no reset, so the client only learns by timing out). Must never:
//! listen anywhere but 127.0.0.1, or outlive its handle (dropping it closes everything it holds).
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy. Dropping it closes every connection it holds.
pub struct Proxy {
    port: u16,
    cut: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding a free 127.0.0.1 port to 127.0.0.1:`target`.
    pub async fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("cannot bind the proxy on 127.0.0.1");
        let port = listener.local_addr().expect("the proxy's address").port();
        let cut = Arc::new(watch::channel(false).0);
        let c = Arc::clone(&cut);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(forward(client, target, c.subscribe()));
                // Reap finished connections as we go.
                while connections.try_join_next().is_some() {}
            }
        });
        Proxy { port, cut, task }
    }

    /// The port clients connect to instead of the target's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// From now on nothing is forwarded, in either direction, on any connection.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// New connections are forwarded again (connections made or cut before stay silent).
    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

async fn forward(client: TcpStream, target: u16, mut cut: watch::Receiver<bool>) {
    if *cut.borrow_and_update() {
        // Accepted, never forwarded: hold the socket until the proxy goes.
        let _held = client;
        return std::future::pending().await;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else { return };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let (mut up, mut down) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        tokio::select! {
            n = cr.read(&mut up) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => if sw.write_all(&up[..n]).await.is_err() { return },
            },
            n = sr.read(&mut down) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => if cw.write_all(&down[..n]).await.is_err() { return },
            },
            _ = async { let _ = cut.wait_for(|c| *c).await; } => {
                // Partitioned: keep both sockets open and silent until the proxy goes.
                let _held = (cr, cw, sr, sw);
                return std::future::pending().await;
            }
        }
    }
}
