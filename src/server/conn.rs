//! The listener: plain TCP, with a kill switch on every connection so that a fault can cut
//! it mid-body the way a broken network does (the peer sees the connection close without a
//! complete answer), and the peer address for rate limiting.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP stream that fails every read and write once its switch is set, so hyper drops it.
pub struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

fn cut() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "connection cut by a fault")
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::Relaxed) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.killed.load(Ordering::Relaxed) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::Relaxed) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepts TCP connections and wraps each in a [`KillableStream`].
pub struct KillableListener(pub TcpListener);

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((inner, addr)) => {
                    let _ = inner.set_nodelay(true);
                    let killed = Arc::new(AtomicBool::new(false));
                    return (KillableStream { inner, killed }, addr);
                }
                // Out of descriptors and the like: wait a little instead of spinning.
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// What a handler knows of its connection (axum `ConnectInfo`).
#[derive(Clone, Debug)]
pub struct ConnMeta {
    pub peer: SocketAddr,
    killed: Arc<AtomicBool>,
}

impl ConnMeta {
    /// Cuts the connection: nothing more is read or written on it.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnMeta {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        ConnMeta {
            peer: *stream.remote_addr(),
            killed: stream.io().killed.clone(),
        }
    }
}
