//! Resolving a key to its [`Principal`], cached: directory-service answers
//! from its database, every other service asks directory-service's
//! `AuthenticateApiKey` with its own credential. A resolved key is kept for
//! the cache's time to live (10 seconds unless told otherwise), which bounds
//! how long a revoked key keeps working; an expired key stops at once.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use idmesh_proto::v1::api_key_service_client::ApiKeyServiceClient;
use idmesh_proto::v1::{ApiKey, AuthenticateApiKeyRequest};
use sha2::{Digest, Sha256};
use tonic::{Code, Status};

use super::{AuthChannel, Credential, Principal, Scope};
use crate::clock::Clock;
use crate::grpc::GrpcError;

/// How long a resolved key is trusted without asking again.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(10);

/// Most resolved keys kept: a bound, not a working set (a mesh has a few
/// dozen callers).
const CACHE_CAPACITY: u64 = 10_000;

/// What resolving a key gives: its caller, `None` for an unknown, revoked
/// or expired key, or an error when the answer is not known (UNAVAILABLE).
pub type Resolution = Pin<Box<dyn Future<Output = Result<Option<Principal>, Status>> + Send>>;

/// Where keys are looked up.
pub trait ResolveKey: Send + Sync + 'static {
    fn resolve(&self, secret: &str) -> Resolution;
}

/// Resolves callers' keys, through a cache.
#[derive(Clone)]
pub struct Authenticator {
    resolver: Arc<dyn ResolveKey>,
    cache: moka::sync::Cache<[u8; 32], Arc<Principal>>,
    clock: Clock,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Resolves with `resolver`, trusting an answer for `cache_ttl`.
    pub fn new(resolver: impl ResolveKey, cache_ttl: Duration, clock: Clock) -> Authenticator {
        Authenticator {
            resolver: Arc::new(resolver),
            cache: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(cache_ttl)
                .build(),
            clock,
        }
    }

    /// Resolves by asking directory-service at `directory_addr`, as
    /// `credential` (a key with `apikeys:authenticate`).
    pub fn remote(
        directory_addr: &str,
        credential: Credential,
        cache_ttl: Duration,
    ) -> Result<Authenticator, GrpcError> {
        let channel = AuthChannel::new(crate::grpc::lazy_channel(directory_addr)?, credential);
        let resolver = Remote {
            client: crate::with_message_limits!(ApiKeyServiceClient::new(channel)),
        };
        Ok(Authenticator::new(resolver, cache_ttl, crate::clock::system()))
    }

    /// The caller whose key is `secret`: UNAUTHENTICATED for an unknown,
    /// revoked or expired key.
    pub async fn authenticate(&self, secret: &str) -> Result<Arc<Principal>, Status> {
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let now = (self.clock)();
        if let Some(principal) = self.cache.get(&digest) {
            if principal.is_expired(now) {
                self.cache.invalidate(&digest);
                return Err(unknown_key());
            }
            return Ok(principal);
        }
        let principal = self.resolver.resolve(secret).await?.ok_or_else(unknown_key)?;
        if principal.is_expired(now) {
            return Err(unknown_key());
        }
        let principal = Arc::new(principal);
        self.cache.insert(digest, Arc::clone(&principal));
        Ok(principal)
    }
}

fn unknown_key() -> Status {
    Status::unauthenticated("unknown, revoked or expired API key")
}

/// directory-service's `AuthenticateApiKey`, over gRPC.
struct Remote {
    client: ApiKeyServiceClient<AuthChannel>,
}

impl ResolveKey for Remote {
    fn resolve(&self, secret: &str) -> Resolution {
        let mut client = self.client.clone();
        let request = AuthenticateApiKeyRequest {
            secret: secret.to_owned(),
        };
        Box::pin(async move {
            match client.authenticate_api_key(request).await {
                Ok(response) => Ok(response.into_inner().api_key.map(principal_from_proto)),
                Err(status) if status.code() == Code::NotFound => Ok(None),
                Err(status) => {
                    // Fail closed, and say why in the log: a service whose own
                    // key is refused cannot let anybody in.
                    tracing::warn!(code = ?status.code(), message = %status.message(), "cannot resolve a caller's API key at directory-service");
                    Err(Status::unavailable("cannot check the caller's API key; retry later"))
                }
            }
        })
    }
}

/// The caller an `ApiKey` answer describes. A scope this build does not know
/// (from a newer directory-service) grants nothing here.
pub fn principal_from_proto(key: ApiKey) -> Principal {
    let directories: BTreeSet<String> = key.directory_ids.into_iter().collect();
    Principal {
        key_id: key.id,
        name: key.name,
        scopes: key.scopes.iter().filter_map(|name| Scope::parse(name)).collect(),
        directories: (!directories.is_empty()).then_some(directories),
        expires_at: key.expires_at.as_ref().and_then(|ts| {
            let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
            time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
        }),
    }
}
