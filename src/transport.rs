//! The transport seam: how a node listens and how anyone dials a node.
//!
//! Outside a simulation this is tokio's TCP, as before: listeners bound by
//! `Listener::bind`, served with TCP_NODELAY, channels from
//! `Endpoint::connect`/`connect_lazy`. Inside a turmoil simulation (the
//! `simulation` feature, and only when the code runs on a simulated host)
//! the same calls bind and dial turmoil's simulated TCP, so nodes, clients
//! and the verify harness talk over a network that turmoil delays,
//! partitions and holds, in simulated time. Every place that listens or
//! dials goes through here, so one switch covers all traffic.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tonic::transport::server::{Router, TcpIncoming};
use tonic::transport::{Channel, Endpoint};

/// A bound listening socket, real or simulated.
pub enum Listener {
    Tcp(TcpListener),
    #[cfg(feature = "simulation")]
    Simulated(turmoil::net::TcpListener),
}

impl Listener {
    /// Binds `addr`: on the simulated network when this runs on a
    /// simulated host.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Listener> {
        #[cfg(feature = "simulation")]
        if turmoil::in_simulation() {
            return Ok(Listener::Simulated(
                turmoil::net::TcpListener::bind(addr).await?,
            ));
        }
        Ok(Listener::Tcp(TcpListener::bind(addr).await?))
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr(),
            #[cfg(feature = "simulation")]
            Listener::Simulated(l) => l.local_addr(),
        }
    }
}

/// Serves `router` on `listener` until `signal` resolves.
pub async fn serve(
    router: Router,
    listener: Listener,
    signal: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    match listener {
        // Accepted connections with TCP_NODELAY. `Server::tcp_nodelay`
        // applies only to listeners tonic binds itself; ours are bound
        // beforehand, and without it Nagle's algorithm meets delayed ACKs
        // and adds ~40 ms to a small response.
        Listener::Tcp(l) => {
            let incoming = TcpIncoming::from(l).with_nodelay(Some(true));
            router.serve_with_incoming_shutdown(incoming, signal).await
        }
        #[cfg(feature = "simulation")]
        Listener::Simulated(l) => {
            router
                .serve_with_incoming_shutdown(simulated::incoming(l), signal)
                .await
        }
    }
}

/// A channel that connects at its first request.
pub fn connect_lazy(endpoint: Endpoint) -> Channel {
    #[cfg(feature = "simulation")]
    if turmoil::in_simulation() {
        return endpoint.connect_with_connector_lazy(simulated::Connector);
    }
    endpoint.connect_lazy()
}

/// A channel, connected before this returns.
pub async fn connect(endpoint: Endpoint) -> Result<Channel, tonic::transport::Error> {
    #[cfg(feature = "simulation")]
    if turmoil::in_simulation() {
        return endpoint.connect_with_connector(simulated::Connector).await;
    }
    endpoint.connect().await
}

/// turmoil's TCP dressed as tonic and hyper expect a connection to be.
#[cfg(feature = "simulation")]
mod simulated {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::Stream;
    use hyper_util::client::legacy::connect::{Connected, Connection};
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tonic::codegen::http::Uri;
    use tonic::transport::server::TcpConnectInfo;

    /// One simulated TCP connection.
    pub struct SimStream(pub turmoil::net::TcpStream);

    /// Accepted connections of a simulated listener, as a stream.
    pub fn incoming(
        listener: turmoil::net::TcpListener,
    ) -> impl Stream<Item = io::Result<SimStream>> + Send {
        futures::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(|(s, _)| SimStream(s));
            Some((accepted, listener))
        })
    }

    /// Dials the authority of a URI on the simulated network.
    #[derive(Clone, Copy)]
    pub struct Connector;

    impl tonic::codegen::Service<Uri> for Connector {
        type Response = TokioIo<SimStream>;
        type Error = io::Error;
        type Future =
            Pin<Box<dyn std::future::Future<Output = io::Result<TokioIo<SimStream>>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, uri: Uri) -> Self::Future {
            Box::pin(async move {
                let authority = uri.authority().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("{uri} names no host"))
                })?;
                let stream = turmoil::net::TcpStream::connect(authority.as_str()).await?;
                Ok(TokioIo::new(SimStream(stream)))
            })
        }
    }

    impl Connection for SimStream {
        fn connected(&self) -> Connected {
            Connected::new()
        }
    }

    impl tonic::transport::server::Connected for SimStream {
        type ConnectInfo = TcpConnectInfo;

        fn connect_info(&self) -> TcpConnectInfo {
            TcpConnectInfo {
                local_addr: self.0.local_addr().ok(),
                remote_addr: self.0.peer_addr().ok(),
            }
        }
    }

    impl AsyncRead for SimStream {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for SimStream {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }
}
