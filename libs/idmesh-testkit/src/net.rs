//! Loopback addresses and gRPC channels for services started in the test.

use std::net::{SocketAddr, TcpListener};

use tonic::transport::Channel;

/// An address on 127.0.0.1 where nothing listens: the port was free a
/// moment ago. Tests point a service at it to see how it copes with a peer
/// that is away, or start the peer there later.
pub fn unused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a bound address")
}

/// A channel to the gRPC server at `addr`, connecting on first use, as the
/// services connect to each other.
pub fn channel(addr: SocketAddr) -> Channel {
    idmesh_runtime::grpc::lazy_channel(&addr.to_string()).expect("a valid address")
}
