//! The client side: a caller's own API key, sent on every call of a
//! channel as `authorization: Bearer <key>`, with the request's deadline
//! and trace context.

use std::fmt;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::http::{self, HeaderValue};
use tonic::transport::Channel;
use tower::Service;

use crate::grpc::GrpcError;

/// An API key to call with. Its Debug output never shows the key.
#[derive(Clone)]
pub struct Credential {
    authorization: HeaderValue,
}

impl Credential {
    /// The credential of `secret` (an `idmk_…` key).
    pub fn new(secret: &str) -> Result<Credential, GrpcError> {
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", secret.trim())).map_err(|_| GrpcError::Credential)?;
        // Keeps it out of HPACK's dynamic table and out of debug output.
        authorization.set_sensitive(true);
        Ok(Credential { authorization })
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(***)")
    }
}

/// A channel that sends its [`Credential`] with every call, the time left
/// before the current request's [deadline](crate::deadline), and the
/// current span's [trace context](crate::telemetry::context), so that the
/// server's span continues the caller's trace.
#[derive(Debug, Clone)]
pub struct AuthChannel {
    channel: Channel,
    credential: Credential,
}

impl AuthChannel {
    pub fn new(channel: Channel, credential: Credential) -> AuthChannel {
        AuthChannel { channel, credential }
    }
}

impl Service<http::Request<Body>> for AuthChannel {
    type Response = http::Response<Body>;
    type Error = <Channel as Service<http::Request<Body>>>::Error;
    type Future = <Channel as Service<http::Request<Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<http::Request<Body>>::poll_ready(&mut self.channel, cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, self.credential.authorization.clone());
        crate::deadline::propagate(&mut request);
        crate::telemetry::context::inject_current(request.headers_mut());
        self.channel.call(request)
    }
}
