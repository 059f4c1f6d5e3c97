//! `POST /Bulk` (RFC 7644 §3.7): a BulkRequest parsed, ordered and
//! resolved by [`scim::bulk`], each operation run through the same
//! resource pipeline as a single request ([`crate::resources`]), and
//! answered with a BulkResponse listing each operation's status,
//! `location`, `version` and, for a failure, its SCIM error.
//!
//! Operations are not one transaction: each commits on its own, as RFC
//! 7644 §3.7 has it, and `failOnErrors` stops the request after that many
//! failures. The limits are [`LIMITS`], advertised in
//! `/ServiceProviderConfig`.

use std::future::Future;
use std::pin::Pin;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use idmesh_api::resource::Resource;
use scim::ScimError;
use scim::bulk::{BulkMethod, BulkOperation, BulkRequest, Created, OperationResult, Step};
use scim::discovery::BulkLimits;
use serde_json::Value;

use crate::AppState;
use crate::conditional::Preconditions;
use crate::error::ApiError;
use crate::groups::Groups;
use crate::resources::{ResourceType, create_resource, delete_resource, patch_resource, replace_resource};
use crate::response::{BaseUrl, ScimBody, parse_json};
use crate::traffic::Tenant;
use crate::users::Users;

/// The most operations and bytes one bulk request may carry: 1,000
/// operations of about 1 KiB each, under the gateway's 2 MB body limit.
pub const LIMITS: BulkLimits = BulkLimits {
    max_operations: 1_000,
    max_payload_size: 1_048_576,
};

/// `Operations`, an array, and an operation: what a bulk request adds to
/// the depth of the documents it carries.
const BULK_NESTING: usize = 3;

/// The result of an operation the directory's rate did not leave room for.
fn over_rate() -> ScimError {
    ScimError::new(
        429,
        None,
        "this directory is over its request rate; send this operation again later",
    )
}

/// One operation, its bulkId references resolved.
struct Resolved<'a> {
    method: BulkMethod,
    id: Option<String>,
    data: Option<Value>,
    preconditions: Preconditions,
    directory_id: &'a str,
}

type Outcome = Result<(u16, Option<Resource>), ApiError>;
type Run<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;
type Execute = for<'a> fn(&'a AppState, Resolved<'a>) -> Run<'a>;

/// The resource types a bulk operation may name, by endpoint.
const TYPES: [(&str, Execute); 2] = [
    ("/Users", |state, op| Box::pin(execute::<Users>(state, op))),
    ("/Groups", |state, op| Box::pin(execute::<Groups>(state, op))),
];

pub async fn bulk(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Path(directory_id): Path<String>,
    base: BaseUrl,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<ScimBody, ApiError> {
    let body = body.map_err(|rejection| {
        ScimError::new(
            413,
            None,
            format!(
                "the bulk request cannot be read ({rejection}); maxPayloadSize is {} bytes",
                LIMITS.max_payload_size
            ),
        )
    })?;
    scim::bulk::check_payload_size(body.len(), LIMITS.max_payload_size)?;
    let body = parse_json(&body)?;
    // A bulk request nests its documents one level deeper than they would
    // be on their own: `Operations[i].data`.
    let limits = scim::Limits {
        max_json_depth: state.limits.max_json_depth + BULK_NESTING,
        ..state.limits
    };
    limits.check_depth(&body)?;
    let request = BulkRequest::parse(&body, LIMITS.max_operations)?;
    let rate = tenant.rate.unwrap_or(state.traffic.default_rate);
    let mut created = Created::default();
    let mut results = Vec::with_capacity(request.operations.len());
    let mut errors = 0_u64;
    for step in scim::bulk::plan(&request.operations) {
        if request.fail_on_errors.is_some_and(|limit| errors >= limit) {
            break;
        }
        let (result, written) = match step {
            Step::Run(index) => match request.operations.get(index) {
                // Each operation counts against the directory's rate like
                // a request of its own; those beyond it answer 429 in the
                // response, and the IdP sends them again.
                Some(operation) => match state.rate_limits.admit(&tenant.directory_id, rate, tenant.resolved_at) {
                    Ok(_) => run(&state, &directory_id, &base, operation, &created).await,
                    Err(_) => (OperationResult::failed(operation, None, &over_rate()), None),
                },
                None => continue,
            },
            Step::Refuse(index, err) => match request.operations.get(index) {
                Some(operation) => (OperationResult::failed(operation, None, &err), None),
                None => continue,
            },
        };
        if let (BulkMethod::Post, Some(bulk_id)) = (result.method, result.bulk_id.as_deref()) {
            created.record(bulk_id, written);
        }
        if scim::bulk::is_error(result.status) {
            errors += 1;
        }
        results.push(result);
    }
    Ok(ScimBody(scim::bulk::bulk_response(&results)))
}

/// Runs one operation, once what it references is resolved: its result,
/// and the id of the resource it wrote (none when it failed or deleted).
async fn run(
    state: &AppState,
    directory_id: &str,
    base: &BaseUrl,
    operation: &BulkOperation,
    created: &Created,
) -> (OperationResult, Option<String>) {
    let failed = |location: Option<String>, err: &ScimError| (OperationResult::failed(operation, location, err), None);
    let (path, data) = match created.resolve(operation) {
        Ok(resolved) => resolved,
        Err(err) => return failed(None, &err),
    };
    let (endpoint, id) = match scim::bulk::target(operation.method, &path) {
        Ok(target) => target,
        Err(err) => return failed(None, &err),
    };
    let Some((endpoint, execute)) = TYPES.iter().find(|(name, _)| name.eq_ignore_ascii_case(&endpoint)) else {
        return failed(
            None,
            &ScimError::invalid_value(format!("no resource type is served at {endpoint}")),
        );
    };
    let location_of = |id: &str| format!("{}{endpoint}/{id}", base.directory(directory_id));
    let preconditions = match &operation.version {
        Some(version) => match HeaderValue::from_str(version) {
            Ok(value) => Preconditions::from_headers(&HeaderMap::from_iter([(header::IF_MATCH, value)])),
            Err(_) => {
                let err = ScimError::invalid_value(format!("version {version:?} is not an ETag"));
                return failed(id.as_deref().map(location_of), &err);
            }
        },
        None => Preconditions::default(),
    };
    let resolved = Resolved {
        method: operation.method,
        id: id.clone(),
        data,
        preconditions,
        directory_id,
    };
    match execute(state, resolved).await {
        Ok((status, resource)) => {
            let written = resource.as_ref().map(|r| r.id.clone());
            let result = OperationResult {
                method: operation.method,
                bulk_id: operation.bulk_id.clone(),
                version: resource.map(|r| scim::meta::etag(r.meta.version)),
                location: written.clone().or(id).as_deref().map(location_of),
                status,
                response: None,
            };
            (result, written)
        }
        Err(ApiError(err)) => failed(id.as_deref().map(location_of), &err),
    }
}

/// Runs one operation on a resource of type `R` through the resource
/// pipeline: the status a single request would answer, and the resource
/// written (none after DELETE).
async fn execute<R: ResourceType>(state: &AppState, op: Resolved<'_>) -> Outcome {
    let directory_id = op.directory_id.to_owned();
    let data = op.data.unwrap_or(Value::Null);
    match (op.method, op.id) {
        (BulkMethod::Post, _) => Ok((201, Some(create_resource::<R>(state, directory_id, &data).await?))),
        (BulkMethod::Put, Some(id)) => Ok((
            200,
            Some(replace_resource::<R>(state, directory_id, id, &data, &op.preconditions).await?),
        )),
        (BulkMethod::Patch, Some(id)) => Ok((
            200,
            Some(patch_resource::<R>(state, directory_id, id, &data, &op.preconditions).await?),
        )),
        (BulkMethod::Delete, Some(id)) => {
            delete_resource::<R>(state, directory_id, id, &op.preconditions).await?;
            Ok((204, None))
        }
        (method, None) => Err(ScimError::invalid_value(format!("{} needs a resource id", method.as_str())).into()),
    }
}
