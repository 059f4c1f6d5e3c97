//! Who calls: every gRPC call of every service carries an API key
//! (`authorization: Bearer idmk_…`), resolved to a [`Principal`] by one
//! layer ([`layer::AuthLayer`], installed by [`crate::grpc::serve`]) that
//! checks the method's scope from the [`policy`] table and puts the caller
//! into the request's extensions. Handlers of methods that name a directory
//! confirm it with [`authorize`]; the key's secret is never logged, its id
//! and name are.

pub mod credential;
pub mod layer;
pub mod policy;
pub mod resolve;
pub mod scope;
mod scoped;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tonic::{Code, Request, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::grpc::GrpcError;
pub use credential::{AuthChannel, Credential};
pub use policy::{DirectoryRule, POLICIES, Policy};
pub use resolve::{Authenticator, ResolveKey};
pub use scope::Scope;
pub use scoped::DirectoryScoped;

/// The `ErrorInfo.domain` of idmesh errors (the same as `idmesh-api`'s,
/// which this crate cannot depend on).
pub const ERROR_DOMAIN: &str = "idmesh.dev";
/// `ErrorInfo.reason`: the key lacks the method's scope.
pub const MISSING_SCOPE: &str = "MISSING_SCOPE";
/// `ErrorInfo.reason`: the key is limited to other directories, or the
/// method is not about one directory and the key is limited.
pub const DIRECTORY_NOT_ALLOWED: &str = "DIRECTORY_NOT_ALLOWED";
/// `ErrorInfo.reason`: the method has no policy, so nobody may call it.
pub const NO_POLICY: &str = "NO_POLICY";

/// How a service other than directory-service takes part: its own key, for
/// the calls it makes (to other services, and to resolve its callers), and
/// where directory-service resolves keys.
#[derive(Debug, Clone)]
pub struct ServiceIdentity {
    /// directory-service's address ("host:port" or "http://host:port").
    pub directory_addr: String,
    /// The service's own key.
    pub credential: Credential,
    /// How long a resolved caller's key is trusted without asking again.
    pub key_cache_ttl: Duration,
}

impl ServiceIdentity {
    /// The identity of a service calling with `credential`, resolving keys at
    /// `directory_addr` with the default cache time.
    pub fn new(directory_addr: impl Into<String>, credential: Credential) -> ServiceIdentity {
        ServiceIdentity {
            directory_addr: directory_addr.into(),
            credential,
            key_cache_ttl: resolve::DEFAULT_CACHE_TTL,
        }
    }

    /// What authenticates this service's callers.
    pub fn authenticator(&self) -> Result<Authenticator, GrpcError> {
        Authenticator::remote(&self.directory_addr, self.credential.clone(), self.key_cache_ttl)
    }

    /// A channel to `addr` calling as this service.
    pub fn channel(&self, addr: &str) -> Result<AuthChannel, GrpcError> {
        crate::grpc::authed_channel(addr, &self.credential)
    }
}

/// A resolved caller: an API key's id, name, scopes and directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub name: String,
    pub scopes: BTreeSet<Scope>,
    /// The directories the key is limited to; `None` when it is not limited.
    pub directories: Option<BTreeSet<String>>,
    pub expires_at: Option<OffsetDateTime>,
}

impl Principal {
    /// A caller with every scope, limited to no directory: what a bootstrap
    /// admin key resolves to.
    pub fn with_every_scope(key_id: &str, name: &str) -> Principal {
        Principal {
            key_id: key_id.to_owned(),
            name: name.to_owned(),
            scopes: Scope::ALL.into_iter().collect(),
            directories: None,
            expires_at: None,
        }
    }

    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether the key may read or change `directory_id`.
    pub fn may_access(&self, directory_id: &str) -> bool {
        self.directories
            .as_ref()
            .is_none_or(|directories| directories.contains(directory_id))
    }

    /// PERMISSION_DENIED unless the key may touch `directory_id`.
    pub fn require_directory(&self, directory_id: &str) -> Result<(), Status> {
        if self.may_access(directory_id) {
            return Ok(());
        }
        tracing::info!(key_id = %self.key_id, key_name = %self.name, %directory_id, "refused: directory not allowed");
        Err(denied(
            DIRECTORY_NOT_ALLOWED,
            format!("API key {} may not access directory {directory_id}", self.key_id),
            &[("directory_id", directory_id)],
        ))
    }

    fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// What the layer puts into a request's extensions.
#[derive(Debug, Clone)]
struct Caller(Arc<Principal>);

/// `request` as if the layer had resolved its caller to `principal`: for
/// calling a handler in the same process, as unit tests do.
pub fn with_caller<T>(mut request: Request<T>, principal: Principal) -> Request<T> {
    request.extensions_mut().insert(Caller(Arc::new(principal)));
    request
}

/// The caller of `request`, as the layer resolved it.
pub fn caller<T>(request: &Request<T>) -> Result<&Principal, Status> {
    request
        .extensions()
        .get::<Caller>()
        .map(|caller| caller.0.as_ref())
        // Only a server built without `grpc::serve` gets here: fail closed.
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

/// The caller of `request`, once it is confirmed that it may touch the
/// directory the request names: what every handler of a
/// [`DirectoryRule::One`] method calls first.
pub fn authorize<T: DirectoryScoped>(request: &Request<T>) -> Result<&Principal, Status> {
    let principal = caller(request)?;
    principal.require_directory(request.get_ref().directory_id())?;
    Ok(principal)
}

/// PERMISSION_DENIED with an `ErrorInfo` of `reason` and `metadata`.
fn denied(reason: &str, message: String, metadata: &[(&str, &str)]) -> Status {
    let metadata: std::collections::HashMap<String, String> = metadata
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    Status::with_error_details(
        Code::PermissionDenied,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}
