//! Bulk requests (RFC 7644 §3.7): parsing a BulkRequest, the order its
//! operations run in, `bulkId` references, and the BulkResponse. No I/O:
//! the caller runs each operation and reports what it answered.
//!
//! - `bulkId:<id>` may appear in an operation's `path`
//!   (`/Groups/bulkId:qwerty`) and anywhere in its `data`, as a whole
//!   string (`"value": "bulkId:qwerty"`) or inside one (a PATCH path
//!   `members[value eq "bulkId:qwerty"]`). It names the resource that the
//!   POST carrying that `bulkId` creates, wherever that POST sits in the
//!   request: operations run in request order, except that an operation
//!   waits for the POSTs it references ([`plan`]).
//! - References that form a cycle (a group whose members name a group
//!   whose members name the first) are not resolved: RFC 7644 §3.7.2 lets
//!   a server stop there with 409 Conflict, and each operation of the cycle
//!   is answered 409. A reference to a `bulkId` no POST of the request
//!   carries is 400 `invalidValue` for that operation; one to a POST that
//!   failed is 409.
//! - `failOnErrors` stops the request after that many failed operations;
//!   the response lists the operations that ran.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use crate::error::ScimError;

/// The schema URN of a BulkRequest.
pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// The schema URN of a BulkResponse.
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// What references another operation's resource.
const REFERENCE_PREFIX: &str = "bulkId:";

/// The HTTP method of one bulk operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkMethod {
    Post,
    Put,
    Patch,
    Delete,
}

impl BulkMethod {
    /// The method as RFC 7644 writes it in BulkResponses.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkMethod::Post => "POST",
            BulkMethod::Put => "PUT",
            BulkMethod::Patch => "PATCH",
            BulkMethod::Delete => "DELETE",
        }
    }

    fn parse(text: &str) -> Option<BulkMethod> {
        [BulkMethod::Post, BulkMethod::Put, BulkMethod::Patch, BulkMethod::Delete]
            .into_iter()
            .find(|method| method.as_str().eq_ignore_ascii_case(text))
    }
}

/// One operation of a BulkRequest, as the client wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperation {
    pub method: BulkMethod,
    /// Required on POST, so that the response (and other operations) can
    /// name what it created.
    pub bulk_id: Option<String>,
    /// The ETag the resource must have (`If-Match`), when given.
    pub version: Option<String>,
    /// Relative to the directory's base URL: `/Users` or `/Users/<id>`.
    pub path: String,
    /// The body: a resource for POST and PUT, a PatchOp for PATCH.
    pub data: Option<Value>,
}

/// A parsed BulkRequest.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    /// Stop after this many failed operations; `None` runs them all.
    pub fail_on_errors: Option<u64>,
    pub operations: Vec<BulkOperation>,
}

/// 413 when a request body exceeds `max_payload_size` bytes (RFC 7644
/// §3.7.4), before anything of it is read.
pub fn check_payload_size(len: usize, max_payload_size: u64) -> Result<(), ScimError> {
    if u64::try_from(len).unwrap_or(u64::MAX) > max_payload_size {
        return Err(ScimError::new(
            413,
            None,
            format!("the bulk request is larger than maxPayloadSize, {max_payload_size} bytes"),
        ));
    }
    Ok(())
}

impl BulkRequest {
    /// Reads a BulkRequest body. More than `max_operations` operations is
    /// 413 (RFC 7644 §3.7.4); a body that is not a BulkRequest (no
    /// `schemas` naming it, no `Operations` array, an operation without a
    /// method or path, a POST without `bulkId`, a bulkId used twice,
    /// `data` missing where the method needs it) is 400 naming the
    /// operation.
    pub fn parse(body: &Value, max_operations: u32) -> Result<BulkRequest, ScimError> {
        let Value::Object(members) = body else {
            return Err(ScimError::invalid_syntax("a BulkRequest must be a JSON object"));
        };
        let names_schema = crate::json::get_ci(members, "schemas")
            .and_then(Value::as_array)
            .is_some_and(|ids| {
                ids.iter().any(|id| {
                    id.as_str()
                        .is_some_and(|id| id.eq_ignore_ascii_case(BULK_REQUEST_SCHEMA))
                })
            });
        if !names_schema {
            return Err(ScimError::invalid_value(format!(
                "a BulkRequest must have \"schemas\": [\"{BULK_REQUEST_SCHEMA}\"]"
            )));
        }
        let fail_on_errors = match crate::json::get_ci(members, "failOnErrors") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| ScimError::invalid_value("failOnErrors must be an integer of at least 1"))?,
            ),
        };
        let Some(Value::Array(operations)) = crate::json::get_ci(members, "Operations") else {
            return Err(ScimError::invalid_value("a BulkRequest must have an Operations array"));
        };
        if operations.len() > usize::try_from(max_operations).unwrap_or(usize::MAX) {
            return Err(ScimError::new(
                413,
                None,
                format!(
                    "the bulk request has {} operations; maxOperations is {max_operations}",
                    operations.len()
                ),
            ));
        }
        let mut seen = BTreeSet::new();
        let mut parsed = Vec::with_capacity(operations.len());
        for (index, operation) in operations.iter().enumerate() {
            let operation = BulkOperation::parse(operation, index)?;
            if let Some(bulk_id) = &operation.bulk_id
                && !seen.insert(bulk_id.clone())
            {
                return Err(ScimError::invalid_value(format!(
                    "Operations[{index}]: bulkId {bulk_id:?} is used by an earlier operation"
                )));
            }
            parsed.push(operation);
        }
        Ok(BulkRequest {
            fail_on_errors,
            operations: parsed,
        })
    }
}

impl BulkOperation {
    fn parse(operation: &Value, index: usize) -> Result<BulkOperation, ScimError> {
        let invalid = |what: &str| ScimError::invalid_value(format!("Operations[{index}]: {what}"));
        let Value::Object(members) = operation else {
            return Err(invalid("an operation must be a JSON object"));
        };
        let text = |name: &str| -> Result<Option<String>, ScimError> {
            match crate::json::get_ci(members, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid(&format!("{name} must be a string"))),
            }
        };
        let method = text("method")?.ok_or_else(|| invalid("method is required"))?;
        let method = BulkMethod::parse(&method)
            .ok_or_else(|| invalid(&format!("method must be POST, PUT, PATCH or DELETE, not {method:?}")))?;
        let path = text("path")?.ok_or_else(|| invalid("path is required"))?;
        let bulk_id = text("bulkId")?.filter(|id| !id.is_empty());
        if method == BulkMethod::Post && bulk_id.is_none() {
            return Err(invalid("a POST needs a bulkId"));
        }
        let data = crate::json::get_ci(members, "data")
            .filter(|data| !data.is_null())
            .cloned();
        match (method, &data) {
            (BulkMethod::Delete, _) | (_, Some(Value::Object(_))) => {}
            (_, Some(_)) => return Err(invalid("data must be a JSON object")),
            (_, None) => return Err(invalid(&format!("a {} needs data", method.as_str()))),
        }
        Ok(BulkOperation {
            method,
            bulk_id,
            version: text("version")?,
            path,
            data,
        })
    }

    /// The bulkIds this operation references, in its path and its data.
    pub fn references(&self) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        collect_references(&self.path, &mut found);
        if let Some(data) = &self.data {
            visit_strings(data, &mut |text| collect_references(text, &mut found));
        }
        found
    }
}

/// Every `bulkId:<id>` in `text`; an id runs to the next quote, bracket,
/// slash, parenthesis or white space.
fn collect_references(text: &str, found: &mut BTreeSet<String>) {
    let mut rest = text;
    while let Some(at) = rest.find(REFERENCE_PREFIX) {
        let tail = &rest[at + REFERENCE_PREFIX.len()..];
        let end = tail.find(ends_reference).unwrap_or(tail.len());
        if end > 0 {
            found.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
}

fn ends_reference(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '[' | ']' | '/' | '(' | ')')
}

fn visit_strings(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|item| visit_strings(item, f)),
        Value::Object(members) => members.values().for_each(|member| visit_strings(member, f)),
        _ => {}
    }
}

/// What becomes of one operation, in the order [`plan`] gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run operation `index` (once its references resolve).
    Run(usize),
    /// Answer operation `index` without running it: its references form a
    /// cycle, or name a bulkId that no POST of the request carries.
    Refuse(usize, ScimError),
}

/// The order to run `operations` in: request order, except that an
/// operation comes after each POST whose bulkId it references. Operations
/// on a reference cycle, and those waiting on them, are refused with 409;
/// a reference to a bulkId no operation carries is refused with 400.
pub fn plan(operations: &[BulkOperation]) -> Vec<Step> {
    let creator: HashMap<&str, usize> = operations
        .iter()
        .enumerate()
        .filter_map(|(index, op)| op.bulk_id.as_deref().map(|id| (id, index)))
        .filter(|(_, index)| operations.get(*index).is_some_and(|op| op.method == BulkMethod::Post))
        .collect();
    let mut waits_on: Vec<BTreeSet<usize>> = Vec::with_capacity(operations.len());
    let mut steps = Vec::with_capacity(operations.len());
    let mut refused = vec![false; operations.len()];
    for (index, op) in operations.iter().enumerate() {
        let mut deps = BTreeSet::new();
        let mut refusal = None;
        for reference in op.references() {
            match creator.get(reference.as_str()) {
                Some(&creator) if creator != index => {
                    deps.insert(creator);
                }
                Some(_) => {
                    refusal.get_or_insert_with(|| conflict(&format!("it references its own bulkId {reference}")));
                }
                None => {
                    refusal.get_or_insert_with(|| {
                        ScimError::invalid_value(format!("bulkId:{reference} names no POST of this request"))
                    });
                }
            }
        }
        if let Some(err) = refusal {
            refused[index] = true;
            steps.push(Step::Refuse(index, err));
        }
        waits_on.push(deps);
    }
    // Kahn's algorithm, always taking the earliest ready operation, so that
    // operations without references keep request order.
    let mut done = refused.clone();
    loop {
        let ready = (0..operations.len()).find(|&index| {
            !done[index]
                && waits_on
                    .get(index)
                    .is_some_and(|deps| deps.iter().all(|dep| done[*dep] && !refused[*dep]))
        });
        match ready {
            Some(index) => {
                done[index] = true;
                steps.push(Step::Run(index));
            }
            None => break,
        }
    }
    // What is left waits on a cycle or on a refused operation.
    for (index, _) in done.iter().enumerate().filter(|(_, done)| !**done) {
        let why = if on_cycle(index, &waits_on) {
            "its bulkId references form a cycle, which this server does not resolve (RFC 7644 §3.7.2)"
        } else {
            "it references an operation that cannot run"
        };
        steps.push(Step::Refuse(index, conflict(why)));
    }
    steps
}

/// Whether `start` reaches itself through `waits_on`.
fn on_cycle(start: usize, waits_on: &[BTreeSet<usize>]) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<usize> = waits_on.get(start).into_iter().flatten().copied().collect();
    while let Some(index) = stack.pop() {
        if index == start {
            return true;
        }
        if seen.insert(index) {
            stack.extend(waits_on.get(index).into_iter().flatten().copied());
        }
    }
    false
}

fn conflict(detail: &str) -> ScimError {
    ScimError::new(409, None, format!("cannot run this operation: {detail}"))
}

/// The ids of the resources the request's POSTs created, by bulkId.
#[derive(Debug, Clone, Default)]
pub struct Created {
    ids: HashMap<String, Option<String>>,
}

impl Created {
    /// Records what the POST carrying `bulk_id` created (`None`: it failed).
    pub fn record(&mut self, bulk_id: &str, id: Option<String>) {
        self.ids.insert(bulk_id.to_owned(), id);
    }

    /// `operation`'s path and data with every `bulkId:<id>` replaced by the
    /// id the referenced POST created; 409 when that POST failed.
    pub fn resolve(&self, operation: &BulkOperation) -> Result<(String, Option<Value>), ScimError> {
        for reference in operation.references() {
            match self.ids.get(&reference) {
                Some(Some(_)) => {}
                _ => {
                    return Err(conflict(&format!(
                        "the operation with bulkId {reference} did not create a resource"
                    )));
                }
            }
        }
        let path = self.substitute(&operation.path);
        let data = operation.data.as_ref().map(|data| self.substitute_value(data));
        Ok((path, data))
    }

    fn substitute(&self, text: &str) -> String {
        if !text.contains(REFERENCE_PREFIX) {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(REFERENCE_PREFIX) {
            out.push_str(&rest[..at]);
            let tail = &rest[at + REFERENCE_PREFIX.len()..];
            let end = tail.find(ends_reference).unwrap_or(tail.len());
            match self.ids.get(&tail[..end]) {
                Some(Some(id)) => out.push_str(id),
                _ => out.push_str(&rest[at..at + REFERENCE_PREFIX.len() + end]),
            }
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    }

    fn substitute_value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.substitute(s)),
            Value::Array(items) => Value::Array(items.iter().map(|item| self.substitute_value(item)).collect()),
            Value::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(key, member)| (key.clone(), self.substitute_value(member)))
                    .collect::<Map<String, Value>>(),
            ),
            other => other.clone(),
        }
    }
}

/// The resource endpoint and id an operation's (resolved) path names:
/// `/Users` → (`/Users`, None), `/Users/<id>` → (`/Users`, Some(id)). POST
/// must name an endpoint, the others one resource; anything else is 400
/// `invalidValue`.
pub fn target(method: BulkMethod, path: &str) -> Result<(String, Option<String>), ScimError> {
    let invalid = || ScimError::invalid_value(format!("{} cannot be sent to {path:?}", method.as_str()));
    let trimmed = path.strip_prefix('/').ok_or_else(invalid)?;
    let mut segments = trimmed.split('/');
    let endpoint = segments.next().filter(|s| !s.is_empty()).ok_or_else(invalid)?;
    let id = segments.next().filter(|s| !s.is_empty());
    if segments.next().is_some() {
        return Err(invalid());
    }
    match (method, id) {
        (BulkMethod::Post, None) => Ok((format!("/{endpoint}"), None)),
        (BulkMethod::Put | BulkMethod::Patch | BulkMethod::Delete, Some(id)) => {
            Ok((format!("/{endpoint}"), Some(id.to_owned())))
        }
        _ => Err(invalid()),
    }
}

/// What one operation answered, as a BulkResponse lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationResult {
    pub method: BulkMethod,
    pub bulk_id: Option<String>,
    /// The resource's ETag after the operation.
    pub version: Option<String>,
    /// The resource's URL, for operations on one.
    pub location: Option<String>,
    pub status: u16,
    /// The SCIM error body of a failed operation.
    pub response: Option<Value>,
}

impl OperationResult {
    /// A failed operation, answered with `error`.
    pub fn failed(operation: &BulkOperation, location: Option<String>, error: &ScimError) -> OperationResult {
        OperationResult {
            method: operation.method,
            bulk_id: operation.bulk_id.clone(),
            version: None,
            location,
            status: error.status,
            response: Some(error.to_json()),
        }
    }

    fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("method".to_owned(), Value::from(self.method.as_str()));
        if let Some(bulk_id) = &self.bulk_id {
            out.insert("bulkId".to_owned(), Value::from(bulk_id.as_str()));
        }
        if let Some(version) = &self.version {
            out.insert("version".to_owned(), Value::from(version.as_str()));
        }
        if let Some(location) = &self.location {
            out.insert("location".to_owned(), Value::from(location.as_str()));
        }
        // RFC 7644 §3.7.3 writes the status as a string ("201").
        out.insert("status".to_owned(), Value::from(self.status.to_string()));
        if let Some(response) = &self.response {
            out.insert("response".to_owned(), response.clone());
        }
        Value::Object(out)
    }
}

/// The BulkResponse listing `results` in the order they ran.
pub fn bulk_response(results: &[OperationResult]) -> Value {
    json!({
        "schemas": [BULK_RESPONSE_SCHEMA],
        "Operations": results.iter().map(OperationResult::to_json).collect::<Vec<_>>(),
    })
}

/// Whether a failed operation counts toward `failOnErrors`: any answer that
/// is not a success.
pub fn is_error(status: u16) -> bool {
    !(200..300).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;

    fn request(operations: Value) -> Result<BulkRequest, ScimError> {
        BulkRequest::parse(
            &json!({"schemas": [BULK_REQUEST_SCHEMA], "failOnErrors": 1, "Operations": operations}),
            10,
        )
    }

    fn post(bulk_id: &str, path: &str, data: Value) -> Value {
        json!({"method": "POST", "bulkId": bulk_id, "path": path, "data": data})
    }

    fn order(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|step| match step {
                Step::Run(index) => format!("run {index}"),
                Step::Refuse(index, err) => format!("refuse {index} {}", err.status),
            })
            .collect()
    }

    #[test]
    fn the_rfc_example_parses() {
        let parsed = request(json!([
            post("qwerty", "/Users", json!({"userName": "Alice"})),
            {"method": "PUT", "path": "/Users/b7c14771", "version": "W/\"3\"", "data": {"userName": "Bob"}},
            {"method": "patch", "path": "/Users/5d8d29d3", "data": {"Operations": []}},
            {"method": "DELETE", "path": "/Users/e9025315", "version": "W/\"0\""}
        ]))
        .expect("valid");
        assert_eq!(parsed.fail_on_errors, Some(1));
        let methods: Vec<BulkMethod> = parsed.operations.iter().map(|op| op.method).collect();
        assert_eq!(
            methods,
            [BulkMethod::Post, BulkMethod::Put, BulkMethod::Patch, BulkMethod::Delete]
        );
        assert_eq!(parsed.operations[1].version.as_deref(), Some("W/\"3\""));
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        let invalid = |body: Value| BulkRequest::parse(&body, 10).expect_err("invalid");
        assert_eq!(invalid(json!([])).scim_type, Some(ScimType::InvalidSyntax));
        assert!(invalid(json!({"Operations": []})).detail.contains("schemas"));
        assert!(
            invalid(json!({"schemas": [BULK_REQUEST_SCHEMA]}))
                .detail
                .contains("Operations")
        );
        for (operations, mentions) in [
            (json!([{"method": "POST", "path": "/Users", "data": {}}]), "bulkId"),
            (json!([{"method": "GET", "path": "/Users"}]), "GET"),
            (json!([{"method": "PUT", "path": "/Users/1"}]), "data"),
            (json!([{"path": "/Users/1"}]), "method"),
            (json!([{"method": "DELETE"}]), "path"),
            (
                json!([post("a", "/Users", json!({})), post("a", "/Users", json!({}))]),
                "earlier",
            ),
            (json!(["x"]), "object"),
        ] {
            let err = request(operations.clone()).expect_err("invalid");
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{operations}");
            assert!(err.detail.contains(mentions), "{operations}: {}", err.detail);
        }
        let err = BulkRequest::parse(
            &json!({"schemas": [BULK_REQUEST_SCHEMA], "failOnErrors": 0, "Operations": []}),
            10,
        )
        .expect_err("failOnErrors 0");
        assert!(err.detail.contains("failOnErrors"));
    }

    #[test]
    fn too_many_operations_or_bytes_are_413() {
        let ops: Vec<Value> = (0..3)
            .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
            .collect();
        let err =
            BulkRequest::parse(&json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": ops}), 2).expect_err("too many");
        assert_eq!(err.status, 413);
        assert_eq!(check_payload_size(10, 10), Ok(()));
        assert_eq!(check_payload_size(11, 10).map_err(|e| e.status), Err(413));
    }

    #[test]
    fn an_operation_runs_after_the_posts_it_references_even_later_ones() {
        let parsed = request(json!([
            post("group", "/Groups", json!({"displayName": "G", "members": [{"value": "bulkId:user"}]})),
            {"method": "DELETE", "path": "/Users/other"},
            post("user", "/Users", json!({"userName": "u"})),
            {"method": "PATCH", "path": "/Groups/bulkId:group", "data": {"Operations": [
                {"op": "remove", "path": "members[value eq \"bulkId:user\"]"}
            ]}}
        ]))
        .expect("valid");
        assert_eq!(
            parsed.operations[3].references(),
            BTreeSet::from(["group".to_owned(), "user".to_owned()])
        );
        assert_eq!(order(&plan(&parsed.operations)), ["run 1", "run 2", "run 0", "run 3"]);
    }

    #[test]
    fn cycles_are_409_and_unknown_bulk_ids_400() {
        let parsed = request(json!([
            post(
                "a",
                "/Groups",
                json!({"displayName": "A", "members": [{"value": "bulkId:b"}]})
            ),
            post(
                "b",
                "/Groups",
                json!({"displayName": "B", "members": [{"value": "bulkId:a"}]})
            ),
            post(
                "c",
                "/Groups",
                json!({"displayName": "C", "members": [{"value": "bulkId:a"}]})
            ),
            post("d", "/Users", json!({"userName": "bulkId:nowhere"})),
            post("e", "/Users", json!({"userName": "e"})),
            post(
                "f",
                "/Groups",
                json!({"displayName": "F", "members": [{"value": "bulkId:f"}]})
            ),
        ]))
        .expect("valid");
        let steps = plan(&parsed.operations);
        assert_eq!(
            order(&steps),
            [
                "refuse 3 400",
                "refuse 5 409",
                "run 4",
                "refuse 0 409",
                "refuse 1 409",
                "refuse 2 409"
            ]
        );
        let Some(Step::Refuse(_, cycle)) = steps.get(3) else {
            panic!("a refusal");
        };
        assert!(cycle.detail.contains("cycle"), "{}", cycle.detail);
        let Some(Step::Refuse(_, waiting)) = steps.get(5) else {
            panic!("a refusal");
        };
        assert!(!waiting.detail.contains("cycle"), "c only waits on the cycle");
    }

    #[test]
    fn references_resolve_to_the_created_ids_or_409_when_the_post_failed() {
        let parsed = request(json!([
            {"method": "PATCH", "path": "/Groups/bulkId:g", "data": {"Operations": [
                {"op": "add", "path": "members", "value": [{"value": "bulkId:u"}]},
                {"op": "remove", "path": "members[value eq \"bulkId:u\"]"}
            ]}}
        ]))
        .expect("valid");
        let mut created = Created::default();
        created.record("g", Some("G1".to_owned()));
        created.record("u", Some("U1".to_owned()));
        let (path, data) = created.resolve(&parsed.operations[0]).expect("resolved");
        assert_eq!(path, "/Groups/G1");
        assert_eq!(
            data,
            Some(json!({"Operations": [
                {"op": "add", "path": "members", "value": [{"value": "U1"}]},
                {"op": "remove", "path": "members[value eq \"U1\"]"}
            ]}))
        );
        created.record("u", None);
        assert_eq!(created.resolve(&parsed.operations[0]).map_err(|e| e.status), Err(409));
    }

    #[test]
    fn paths_name_an_endpoint_for_post_and_a_resource_otherwise() {
        assert_eq!(target(BulkMethod::Post, "/Users"), Ok(("/Users".to_owned(), None)));
        assert_eq!(
            target(BulkMethod::Delete, "/Groups/g1"),
            Ok(("/Groups".to_owned(), Some("g1".to_owned())))
        );
        for (method, path) in [
            (BulkMethod::Post, "/Users/1"),
            (BulkMethod::Put, "/Users"),
            (BulkMethod::Patch, "Users/1"),
            (BulkMethod::Delete, "/Users/1/x"),
            (BulkMethod::Delete, "/"),
        ] {
            let err = target(method, path).expect_err(path);
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        }
    }

    #[test]
    fn the_response_lists_what_ran_with_string_statuses() {
        let op = BulkOperation {
            method: BulkMethod::Post,
            bulk_id: Some("q".to_owned()),
            version: None,
            path: "/Users".to_owned(),
            data: Some(json!({})),
        };
        let ok = OperationResult {
            method: BulkMethod::Post,
            bulk_id: Some("q".to_owned()),
            version: Some("W/\"1\"".to_owned()),
            location: Some("https://x/Users/1".to_owned()),
            status: 201,
            response: None,
        };
        let failed = OperationResult::failed(&op, None, &ScimError::uniqueness("taken"));
        let body = bulk_response(&[ok, failed]);
        assert_eq!(body["schemas"], json!([BULK_RESPONSE_SCHEMA]));
        assert_eq!(body["Operations"][0]["status"], json!("201"));
        assert_eq!(body["Operations"][0]["location"], json!("https://x/Users/1"));
        assert_eq!(body["Operations"][1]["status"], json!("409"));
        assert_eq!(body["Operations"][1]["response"]["scimType"], json!("uniqueness"));
        assert!(is_error(409) && !is_error(204));
    }
}
