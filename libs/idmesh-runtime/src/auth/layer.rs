//! The server side: a tower layer in front of every service of a server
//! (installed by [`crate::grpc::serve`], so no service is served without
//! it). It reads `authorization: Bearer <key>`, resolves the key, checks
//! the method's scope and directory rule, and hands the caller to the
//! handler in the request's extensions. Health and reflection stay open.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http;
use tower::{Layer, Service};

use super::policy::{self, DirectoryRule, POLICIES, Policy};
use super::{Authenticator, Caller, DIRECTORY_NOT_ALLOWED, MISSING_SCOPE, NO_POLICY, Principal, denied};

static BY_METHOD: LazyLock<HashMap<&'static str, &'static Policy>> =
    LazyLock::new(|| POLICIES.iter().map(|policy| (policy.method, policy)).collect());

/// Authenticates and authorises every call of the services it wraps.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    auth: Authenticator,
}

impl AuthLayer {
    pub fn new(auth: Authenticator) -> AuthLayer {
        AuthLayer { auth }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// A service behind [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: Authenticator,
}

impl<S, B> Service<http::Request<B>> for Authenticated<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone is the ready one's twin: call the one poll_ready readied.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if policy::is_open(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        let auth = self.auth.clone();
        // What the check needs, taken out of the request: the body need not
        // be Sync to be held across the key's resolution.
        let method = BY_METHOD
            .get(request.uri().path())
            .copied()
            .ok_or_else(|| request.uri().path().to_owned());
        let secret = bearer(&request).map(str::to_owned);
        Box::pin(async move {
            match check(&auth, method, secret).await {
                Ok(principal) => {
                    request.extensions_mut().insert(Caller(principal));
                    inner.call(request).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

/// The caller of `request`, if it may call the method at all.
async fn check(
    auth: &Authenticator,
    policy: Result<&'static Policy, String>,
    secret: Result<String, Status>,
) -> Result<Arc<Principal>, Status> {
    let principal = auth.authenticate(&secret?).await?;
    let policy = match policy {
        Ok(policy) => policy,
        Err(method) => {
            return Err(denied(
                NO_POLICY,
                format!("{method} has no access policy"),
                &[("method", &method)],
            ));
        }
    };
    let method = policy.method;
    if !principal.has_scope(policy.scope) {
        let scope = policy.scope.as_str();
        tracing::info!(key_id = %principal.key_id, key_name = %principal.name, %method, %scope, "refused: missing scope");
        return Err(denied(
            MISSING_SCOPE,
            format!(
                "API key {} lacks the scope {scope} that {method} needs",
                principal.key_id
            ),
            &[("scope", scope), ("method", method)],
        ));
    }
    if policy.directories == DirectoryRule::Global && principal.directories.is_some() {
        tracing::info!(key_id = %principal.key_id, key_name = %principal.name, %method, "refused: directory-limited key");
        return Err(denied(
            DIRECTORY_NOT_ALLOWED,
            format!(
                "API key {} is limited to directories, and {method} is not about one directory",
                principal.key_id
            ),
            &[("method", method)],
        ));
    }
    tracing::debug!(key_id = %principal.key_id, key_name = %principal.name, %method, "caller authorised");
    Ok(principal)
}

/// The key in `authorization: Bearer <key>`.
fn bearer<B>(request: &http::Request<B>) -> Result<&str, Status> {
    request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .ok_or_else(|| Status::unauthenticated("missing API key: send `authorization: Bearer <key>`"))
}
