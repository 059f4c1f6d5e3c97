//! PATCH (RFC 7644 §3.5.2): parsing a PatchOp request body and applying its
//! operations to a stored document, all or nothing.
//!
//! Beyond the RFC, the dialects real IdPs speak are accepted here, so every
//! caller gets them: Okta's path-less `replace` with an object value (whose
//! read-only keys such as `id` are ignored), Microsoft Entra ID's
//! capitalised ops, boolean strings, URN-qualified keys in path-less values,
//! bare ids for `manager`, `remove` with a value listing the members to
//! remove, and value-filter paths that name an element which does not
//! exist yet (see [`apply`]).

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::{self, CompValue, CompareOp, Filter, matches_element};
use crate::json::{ValueIndex, as_bool, content_hash, get_ci, insert_ci, is_primary, is_true, key_ci, remove_ci};
use crate::path::{AttrPath, is_attr_name, is_urn};
use crate::schema::{Attribute, AttributeType, Container, Mutability, ResourceSchema, Schema};

/// The schema URN of a PatchOp request body.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The three PATCH operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    Add,
    Replace,
    Remove,
}

impl PatchOpKind {
    /// The operation name in lower case, as RFC 7644 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Replace => "replace",
            PatchOpKind::Remove => "remove",
        }
    }

    /// The operation for its name in any case (Entra ID sends "Replace").
    pub fn parse(s: &str) -> Option<PatchOpKind> {
        match s.to_ascii_lowercase().as_str() {
            "add" => Some(PatchOpKind::Add),
            "replace" => Some(PatchOpKind::Replace),
            "remove" => Some(PatchOpKind::Remove),
            _ => None,
        }
    }
}

/// One PATCH operation, as the client sent it; the path is parsed when the
/// operation is applied, against the resource's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOpKind,
    /// The attribute path; `None` for a path-less add or replace.
    pub path: Option<String>,
    /// The value; `Some(Value::Null)` when the client sent an explicit null.
    pub value: Option<Value>,
}

impl PatchOperation {
    /// Checks and builds one operation from its parts, as a gRPC caller
    /// sends them: `op` in any case (else 400 `invalidSyntax`); an empty path
    /// is no path; `remove` needs a path (else 400 `noTarget`, RFC 7644
    /// §3.5.2.2); `add` and `replace` need a value (else 400 `invalidValue`).
    pub fn new(op: &str, path: Option<String>, value: Option<Value>) -> Result<PatchOperation, ScimError> {
        let kind = PatchOpKind::parse(op).ok_or_else(|| {
            ScimError::invalid_syntax(format!("unknown PATCH op {op:?}; expected add, replace or remove"))
        })?;
        PatchOperation::of_kind(kind, path, value)
    }

    /// [`PatchOperation::new`] for an operation whose kind is already known
    /// (a typed gRPC field): the same checks of path and value.
    pub fn of_kind(kind: PatchOpKind, path: Option<String>, value: Option<Value>) -> Result<PatchOperation, ScimError> {
        let path = path.filter(|p| !p.trim().is_empty());
        match (kind, &path, &value) {
            (PatchOpKind::Remove, None, _) => Err(ScimError::no_target("a remove operation needs a path")),
            (PatchOpKind::Add | PatchOpKind::Replace, _, None) => Err(ScimError::invalid_value(format!(
                "an {} operation needs a value",
                kind.as_str()
            ))),
            _ => Ok(PatchOperation { op: kind, path, value }),
        }
    }
}

/// Parses a PatchOp request body: an object with an `Operations` array (key
/// in any case), each operation with an `op` in any case and, depending on
/// the op, a `path` and a `value`. `schemas` may be left out (some clients
/// do), but when present it must list [`PATCH_OP_SCHEMA`]. Errors name the
/// operation by its index.
pub fn parse_request(body: &Value) -> Result<Vec<PatchOperation>, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax("a PATCH request body must be a JSON object"));
    };
    if let Some(schemas) = get_ci(body, "schemas") {
        let listed = schemas.as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA)))
        });
        if !listed {
            return Err(ScimError::invalid_syntax(format!(
                "the schemas of a PATCH request must contain {PATCH_OP_SCHEMA}"
            )));
        }
    }
    let operations = get_ci(body, "Operations")
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH request needs an Operations array"))?
        .as_array()
        .ok_or_else(|| ScimError::invalid_syntax("Operations must be an array"))?;
    operations
        .iter()
        .enumerate()
        .map(|(i, op)| {
            parse_operation(op)
                .map_err(|e| ScimError::new(e.status, e.scim_type, format!("operation {i}: {}", e.detail)))
        })
        .collect()
}

fn parse_operation(op: &Value) -> Result<PatchOperation, ScimError> {
    let Value::Object(op) = op else {
        return Err(ScimError::invalid_syntax("an operation must be a JSON object"));
    };
    let kind = get_ci(op, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_syntax("an operation needs an \"op\" string"))?;
    let path = match get_ci(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(path)) => Some(path.clone()),
        Some(_) => return Err(ScimError::invalid_path("path must be a string")),
    };
    PatchOperation::new(kind, path, get_ci(op, "value").cloned())
}

/// Applies `ops` in order to a copy of `doc` (a stored, normalised document
/// without `id` and `meta`) and returns the result, or the first error and
/// nothing else: a failed request never leaves a half-applied document.
/// The caller normalises the result (types, booleans from strings, schemas).
///
/// Paths: `attr`, `attr.sub`, URN-qualified (core or extension, any case),
/// a whole extension URN, and value filters `attr[filter]` and
/// `attr[filter].sub`. A path-less `add`/`replace` takes an object whose
/// keys are such paths (`name.givenName`, `urn:...:User:department`) or
/// whole extension objects; read-only keys in it (`id`, `meta`) are ignored,
/// as Okta sends the group `id` along with a rename.
///
/// Semantics: `add` appends to a multi-valued attribute (skipping exact
/// duplicates), merges into a complex one and sets a simple one; `replace`
/// sets, except that a complex single-valued attribute given an object is
/// merged (RFC 7644 §3.5.2.3) and a filtered element is replaced whole;
/// `replace` with null unassigns; `remove` deletes, and removing what is
/// not there is fine. `remove` of a multi-valued attribute with a value
/// removes only the listed values (Entra ID removes group members so).
/// An element whose `value` is removed is removed with it.
///
/// A value filter that matches nothing is fine for `remove`. For `add` and
/// `replace` it is 400 `noTarget` (RFC 7644 §3.5.2.3 asks this of
/// `replace`) unless the filter is made of `eq` comparisons joined by `and`
/// (`emails[type eq "work"].value`, as Entra ID sends for a user without a
/// work email): then a new element is created from those comparisons plus
/// the value — so the operation does what the IdP means instead of failing
/// a whole provisioning run. This departs from the RFC on purpose.
///
/// When an operation makes an element primary, every other element of that
/// attribute loses its `primary`: the new one wins.
///
/// Errors: unknown attribute or malformed path → 400 `invalidPath`; a path
/// to a readOnly attribute, or to an immutable one that has a value → 400
/// `mutability`.
pub fn apply(
    doc: &Map<String, Value>,
    ops: &[PatchOperation],
    schema: &ResourceSchema,
) -> Result<Map<String, Value>, ScimError> {
    let mut work = doc.clone();
    for op in ops {
        apply_op(&mut work, op, schema)?;
    }
    Ok(work)
}

fn apply_op(doc: &mut Map<String, Value>, op: &PatchOperation, schema: &ResourceSchema) -> Result<(), ScimError> {
    match (&op.path, op.op, &op.value) {
        (Some(path), _, value) => {
            let target = resolve(path, schema, doc, value.as_ref())?;
            apply_target(doc, target, op.op, value.as_ref(), schema)
        }
        (None, PatchOpKind::Remove, _) => Err(ScimError::no_target("a remove operation needs a path")),
        (None, kind, Some(value)) => apply_pathless(doc, kind, value, schema),
        (None, kind, None) => Err(ScimError::invalid_value(format!(
            "an {} operation needs a value",
            kind.as_str()
        ))),
    }
}

/// Where an operation acts.
enum Target {
    /// A whole declared extension object.
    Extension(&'static Schema),
    /// A whole object under an undeclared URN, by its key in the document.
    UnknownObject(String),
    /// An attribute, possibly narrowed by a value filter and a sub-attribute.
    Attr(AttrTarget),
}

struct AttrTarget {
    /// The path as the client wrote it, for error messages.
    path: String,
    /// The key of the object the attribute lives in; `None` for the top level.
    container: Option<String>,
    /// The attribute's name: its schema spelling when it is defined.
    name: String,
    def: Option<&'static Attribute>,
    filter: Option<Filter>,
    sub: Option<SubTarget>,
}

struct SubTarget {
    name: String,
    def: Option<&'static Attribute>,
}

impl AttrTarget {
    fn multi_valued(&self, current: Option<&Value>) -> bool {
        self.def
            .map_or_else(|| current.is_some_and(Value::is_array), |d| d.multi_valued)
    }

    /// Whether removing `value` from an element removes the element: an
    /// element of an attribute with a `value` sub-attribute is nothing
    /// without it.
    fn removing_sub_drops_element(&self) -> bool {
        self.sub.as_ref().is_some_and(|s| s.name.eq_ignore_ascii_case("value"))
            && self.def.is_some_and(|d| d.sub_attribute("value").is_some())
    }
}

/// Resolves a path against the schema and the document. A URN that is not
/// a declared extension names a whole undeclared extension object when the
/// document has one under it or when the value written is an object, and
/// otherwise an attribute under its parent URN.
fn resolve(
    path: &str,
    schema: &ResourceSchema,
    doc: &Map<String, Value>,
    value: Option<&Value>,
) -> Result<Target, ScimError> {
    let text = path.trim();
    if text.is_empty() {
        return Err(ScimError::invalid_path("empty path"));
    }
    if is_urn(text) && !text.contains('[') {
        if let Some(ext) = schema.extension(text) {
            return Ok(Target::Extension(ext));
        }
        if text.eq_ignore_ascii_case(schema.core.id) {
            return Err(ScimError::invalid_path(format!(
                "{text} names the whole resource; use an operation without a path"
            )));
        }
        if let Some(key) = key_ci(doc, text).filter(|k| doc.get(*k).is_some_and(Value::is_object)) {
            return Ok(Target::UnknownObject(key.to_owned()));
        }
        let names_known_attribute =
            AttrPath::parse(text).is_ok_and(|p| !matches!(schema.container(p.urn.as_deref()), Container::Unknown(_)));
        if !names_known_attribute && value.is_some_and(Value::is_object) {
            return Ok(Target::UnknownObject(text.to_owned()));
        }
    }
    let PatchPath {
        attr: attr_path,
        filter,
    } = PatchPath::parse(text)?;
    let (container, def) = match schema.container(attr_path.urn.as_deref()) {
        Container::Core => (None, Some(schema.core_attribute(&attr_path.attr))),
        Container::Extension(ext) => (Some(ext.id.to_owned()), Some(ext.attribute(&attr_path.attr))),
        Container::Unknown(urn) => (Some(key_ci(doc, urn).unwrap_or(urn).to_owned()), None),
    };
    let def = match def {
        None => None,
        Some(Some(def)) => Some(def),
        Some(None) => {
            return Err(ScimError::invalid_path(format!(
                "{text:?}: {} has no attribute {:?}",
                schema.name, attr_path.attr
            )));
        }
    };
    let sub = match (attr_path.sub_attr, def) {
        (None, _) => None,
        (Some(name), None) => Some(SubTarget { name, def: None }),
        (Some(name), Some(def)) => {
            let sub = def.sub_attribute(&name).ok_or_else(|| {
                ScimError::invalid_path(format!("{text:?}: {} has no sub-attribute {name:?}", def.name))
            })?;
            Some(SubTarget {
                name: sub.name.to_owned(),
                def: Some(sub),
            })
        }
    };
    if filter.is_some() && def.is_some_and(|d| !d.multi_valued) {
        return Err(ScimError::invalid_path(format!(
            "{text:?}: a value filter needs a multi-valued attribute"
        )));
    }
    Ok(Target::Attr(AttrTarget {
        path: text.to_owned(),
        container,
        name: def.map_or(attr_path.attr, |d| d.name.to_owned()),
        def,
        filter,
        sub,
    }))
}

/// A PATCH path taken apart, without a schema: the attribute (whose
/// sub-attribute may come after a value filter, as in
/// `emails[type eq "work"].value`) and the value filter, if any.
///
/// For services that keep an attribute outside the stored document (group
/// members are rows) and must tell which operations act on it before
/// handing the others to [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute, with the sub-attribute named after the filter.
    pub attr: AttrPath,
    /// The value filter between brackets.
    pub filter: Option<Filter>,
}

impl PatchPath {
    /// Parses `attr`, `attr.sub`, `attr[filter]` and `attr[filter].sub`,
    /// each optionally URN-qualified. Malformed paths and filters are 400
    /// `invalidPath`.
    pub fn parse(text: &str) -> Result<PatchPath, ScimError> {
        let text = text.trim();
        let (attr_text, filter, sub) = split_value_filter(text)?;
        let mut attr = AttrPath::parse(attr_text)?;
        if filter.is_some() {
            if attr.sub_attr.is_some() {
                return Err(ScimError::invalid_path(format!(
                    "{text:?}: a value filter applies to an attribute, not a sub-attribute"
                )));
            }
            attr.sub_attr = sub;
        }
        Ok(PatchPath { attr, filter })
    }
}

/// Splits `attr[filter].sub` into its three parts.
fn split_value_filter(text: &str) -> Result<(&str, Option<Filter>, Option<String>), ScimError> {
    let Some(open) = text.find('[') else {
        if text.contains(']') {
            return Err(ScimError::invalid_path(format!("{text:?}: ']' without '['")));
        }
        return Ok((text, None, None));
    };
    let close = text
        .rfind(']')
        .filter(|&close| close > open)
        .ok_or_else(|| ScimError::invalid_path(format!("{text:?}: '[' without ']'")))?;
    let sub = match &text[close + 1..] {
        "" => None,
        rest => match rest.strip_prefix('.') {
            Some(name) if is_attr_name(name) => Some(name.to_owned()),
            _ => {
                return Err(ScimError::invalid_path(format!(
                    "{text:?}: only a .subAttribute may follow a value filter"
                )));
            }
        },
    };
    let filter = filter::parse(&text[open + 1..close])
        .map_err(|e| ScimError::invalid_path(format!("{text:?}: invalid value filter: {}", e.detail)))?;
    Ok((&text[..open], Some(filter), sub))
}

fn apply_pathless(
    doc: &mut Map<String, Value>,
    kind: PatchOpKind,
    value: &Value,
    schema: &ResourceSchema,
) -> Result<(), ScimError> {
    let Value::Object(entries) = value else {
        return Err(ScimError::invalid_value(format!(
            "an {} operation without a path needs an object value",
            kind.as_str()
        )));
    };
    for (key, value) in entries {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if key.eq_ignore_ascii_case(schema.core.id) {
            apply_pathless(doc, kind, value, schema)?;
            continue;
        }
        apply_entry(doc, key, kind, value, schema)?;
    }
    Ok(())
}

/// Applies one entry of an object value (path-less, or for a whole
/// extension). Read-only attributes are ignored here, as in a PUT: Okta
/// sends the group `id` along with a rename.
fn apply_entry(
    doc: &mut Map<String, Value>,
    path: &str,
    kind: PatchOpKind,
    value: &Value,
    schema: &ResourceSchema,
) -> Result<(), ScimError> {
    let target = resolve(path, schema, doc, Some(value))?;
    if let Target::Attr(t) = &target
        && read_only(t).is_some()
    {
        return Ok(());
    }
    apply_target(doc, target, kind, Some(value), schema)
}

fn apply_target(
    doc: &mut Map<String, Value>,
    target: Target,
    kind: PatchOpKind,
    value: Option<&Value>,
    schema: &ResourceSchema,
) -> Result<(), ScimError> {
    match target {
        Target::Extension(ext) => match (kind, value) {
            (PatchOpKind::Remove, _) | (PatchOpKind::Replace, None | Some(Value::Null)) => {
                remove_ci(doc, ext.id);
                Ok(())
            }
            (PatchOpKind::Add, None | Some(Value::Null)) => Ok(()),
            (_, Some(Value::Object(entries))) => {
                // Clients copy the extension object from a resource they
                // read, `schemas` and all; it names no attribute to write.
                for (key, value) in entries.iter().filter(|(key, _)| !key.eq_ignore_ascii_case("schemas")) {
                    apply_entry(doc, &format!("{}:{key}", ext.id), kind, value, schema)?;
                }
                Ok(())
            }
            (_, Some(_)) => Err(ScimError::invalid_value(format!(
                "the value for {} must be an object",
                ext.id
            ))),
        },
        Target::UnknownObject(key) => match (kind, value) {
            (PatchOpKind::Remove, _) | (PatchOpKind::Replace, None | Some(Value::Null)) => {
                remove_ci(doc, &key);
                Ok(())
            }
            (PatchOpKind::Add, None | Some(Value::Null)) => Ok(()),
            (_, Some(Value::Object(entries))) => {
                with_object(doc, &key, |obj| {
                    for (k, v) in entries {
                        insert_ci(obj, k, v.clone());
                    }
                });
                Ok(())
            }
            (_, Some(_)) => Err(ScimError::invalid_value(format!(
                "the value for {key} must be an object"
            ))),
        },
        Target::Attr(target) => apply_attr(doc, &target, kind, value),
    }
}

/// The readOnly definition a target writes, if any.
fn read_only(t: &AttrTarget) -> Option<&'static Attribute> {
    [t.def, t.sub.as_ref().and_then(|s| s.def)]
        .into_iter()
        .flatten()
        .find(|d| d.mutability == Mutability::ReadOnly)
}

fn apply_attr(
    doc: &mut Map<String, Value>,
    t: &AttrTarget,
    kind: PatchOpKind,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if let Some(def) = read_only(t) {
        return Err(ScimError::mutability(format!("{}: {} is readOnly", t.path, def.name)));
    }
    let container = match &t.container {
        None => Some(&*doc),
        Some(key) => get_ci(doc, key).and_then(Value::as_object),
    };
    let immutable = match &t.sub {
        Some(sub) => sub.def,
        None => t.def,
    }
    .is_some_and(|d| d.mutability == Mutability::Immutable);
    if immutable && has_value(container, t) {
        return Err(ScimError::mutability(format!(
            "{}: {} is immutable and already set",
            t.path, t.name
        )));
    }

    let value = match (kind, value) {
        (PatchOpKind::Remove, value) => {
            return within(doc, t, false, |c| {
                remove(c, t, value.filter(|v| !v.is_null()));
                Ok(())
            });
        }
        (PatchOpKind::Add, None | Some(Value::Null)) => return Ok(()),
        (PatchOpKind::Replace, None | Some(Value::Null)) => {
            return within(doc, t, false, |c| {
                remove(c, t, None);
                Ok(())
            });
        }
        (_, Some(value)) => value,
    };
    within(doc, t, true, |c| match (&t.filter, &t.sub) {
        (None, None) => {
            set_attribute(c, t, kind, value);
            Ok(())
        }
        (None, Some(sub)) => {
            set_sub_everywhere(c, t, sub, value);
            Ok(())
        }
        (Some(filter), sub) => set_filtered(c, t, kind, filter, sub.as_ref(), value),
    })
}

/// Runs `f` on the object the target's attribute lives in, creating it
/// when `create` is set, and drops an extension object left empty.
fn within(
    doc: &mut Map<String, Value>,
    t: &AttrTarget,
    create: bool,
    f: impl FnOnce(&mut Map<String, Value>) -> Result<(), ScimError>,
) -> Result<(), ScimError> {
    let Some(key) = &t.container else {
        return f(doc);
    };
    let exists = get_ci(doc, key).is_some_and(Value::is_object);
    if !exists && !create {
        return Ok(());
    }
    let mut result = Ok(());
    with_object(doc, key, |c| result = f(c));
    result
}

/// Whether the target currently has a value, for the immutability check.
fn has_value(container: Option<&Map<String, Value>>, t: &AttrTarget) -> bool {
    let Some(current) = container.and_then(|c| get_ci(c, &t.name)) else {
        return false;
    };
    let elements: Vec<&Value> = match (current, &t.filter) {
        (Value::Array(items), Some(filter)) => items.iter().filter(|e| matches_element(filter, e, t.def)).collect(),
        (Value::Array(items), None) => items.iter().collect(),
        (single, _) => vec![single],
    };
    match &t.sub {
        None => elements.iter().any(|e| !e.is_null()),
        Some(sub) => elements.iter().any(|e| {
            e.as_object()
                .and_then(|o| get_ci(o, &sub.name))
                .is_some_and(|v| !v.is_null())
        }),
    }
}

fn set_attribute(c: &mut Map<String, Value>, t: &AttrTarget, kind: PatchOpKind, value: &Value) {
    let current = get_ci(c, &t.name);
    if t.multi_valued(current) {
        let items: Vec<Value> = match value {
            Value::Array(items) => items.iter().map(|v| prepare_element(t.def, v)).collect(),
            single => vec![prepare_element(t.def, single)],
        };
        with_array(c, &t.name, |arr| {
            if kind == PatchOpKind::Replace {
                arr.clear();
            }
            let mut present = ValueIndex::of(arr);
            let mut touched = Vec::new();
            for item in items {
                if item.is_null() || present.contains(arr, &item) {
                    continue;
                }
                present.insert(arr.len(), &item);
                arr.push(item);
                touched.push(arr.len() - 1);
            }
            if kind == PatchOpKind::Add {
                keep_single_primary(arr, &touched);
            }
        });
        return;
    }
    let merge = value.is_object()
        && current.is_some_and(Value::is_object)
        && t.def.is_none_or(|d| d.kind == AttributeType::Complex);
    if merge {
        if let Value::Object(entries) = prepare_element(t.def, value) {
            with_object(c, &t.name, |obj| {
                for (k, v) in entries {
                    insert_ci(obj, &k, v);
                }
            });
        }
    } else {
        insert_ci(c, &t.name, prepare_element(t.def, value));
    }
}

fn set_sub_everywhere(c: &mut Map<String, Value>, t: &AttrTarget, sub: &SubTarget, value: &Value) {
    let value = prepare_element(sub.def, value);
    if t.multi_valued(get_ci(c, &t.name)) {
        with_array(c, &t.name, |arr| {
            if arr.is_empty() {
                let mut element = Map::new();
                element.insert(sub.name.clone(), value);
                arr.push(Value::Object(element));
                return;
            }
            for element in arr.iter_mut() {
                if let Value::Object(obj) = element {
                    insert_ci(obj, &sub.name, value.clone());
                }
            }
        });
    } else {
        with_object(c, &t.name, |obj| insert_ci(obj, &sub.name, value));
    }
}

fn set_filtered(
    c: &mut Map<String, Value>,
    t: &AttrTarget,
    kind: PatchOpKind,
    filter: &Filter,
    sub: Option<&SubTarget>,
    value: &Value,
) -> Result<(), ScimError> {
    let template = equality_template(filter, t.def);
    let new_element = |base: Map<String, Value>| -> Result<Value, ScimError> {
        let mut element = base;
        match sub {
            Some(sub) => insert_ci(&mut element, &sub.name, prepare_element(sub.def, value)),
            None => match prepare_element(t.def, value) {
                Value::Object(entries) => {
                    for (k, v) in entries {
                        insert_ci(&mut element, &k, v);
                    }
                }
                other if t.def.is_none() && element.is_empty() => return Ok(other),
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "{}: the value must be an object",
                        t.path
                    )));
                }
            },
        }
        Ok(Value::Object(element))
    };
    let mut result = Ok(());
    with_array(c, &t.name, |arr| {
        let matched: Vec<usize> = (0..arr.len())
            .filter(|&i| arr.get(i).is_some_and(|e| matches_element(filter, e, t.def)))
            .collect();
        if matched.is_empty() {
            let Some(template) = template.clone() else {
                result = Err(ScimError::no_target(format!(
                    "{}: no value of {} matches the filter",
                    t.path, t.name
                )));
                return;
            };
            match new_element(template) {
                Ok(element) => {
                    arr.push(element);
                    let added = arr.len() - 1;
                    keep_single_primary(arr, &[added]);
                }
                Err(e) => result = Err(e),
            }
            return;
        }
        for &i in &matched {
            let Some(element) = arr.get_mut(i) else { continue };
            let updated = match (sub, kind, &mut *element) {
                (None, PatchOpKind::Replace, _) => {
                    let base = template.clone().unwrap_or_default();
                    let mut replacement = new_element(Map::new());
                    if let Ok(Value::Object(obj)) = &mut replacement {
                        for (k, v) in base {
                            if key_ci(obj, &k).is_none() {
                                obj.insert(k, v);
                            }
                        }
                    }
                    replacement
                }
                (_, _, Value::Object(existing)) => new_element(existing.clone()),
                (_, _, _) => new_element(Map::new()),
            };
            match updated {
                Ok(updated) => *element = updated,
                Err(e) => {
                    result = Err(e);
                    return;
                }
            }
        }
        keep_single_primary(arr, &matched);
    });
    result
}

fn remove(c: &mut Map<String, Value>, t: &AttrTarget, value: Option<&Value>) {
    let current = get_ci(c, &t.name);
    match (&t.filter, &t.sub) {
        (None, None) => match value {
            Some(listed) if t.multi_valued(current) => {
                let listed: Vec<Value> = match listed {
                    Value::Array(items) => items.iter().map(|v| prepare_element(t.def, v)).collect(),
                    single => vec![prepare_element(t.def, single)],
                };
                let unwanted = Unwanted::of(&listed);
                with_array(c, &t.name, |arr| arr.retain(|e| !unwanted.matches(&listed, e)));
            }
            _ => {
                remove_ci(c, &t.name);
            }
        },
        (filter, Some(sub)) => {
            if current.is_some_and(Value::is_object) && filter.is_none() {
                with_object(c, &t.name, |obj| {
                    remove_ci(obj, &sub.name);
                });
                return;
            }
            if current.is_none() {
                return;
            }
            let drops = t.removing_sub_drops_element();
            with_array(c, &t.name, |arr| {
                arr.retain_mut(|e| {
                    if filter.as_ref().is_some_and(|f| !matches_element(f, e, t.def)) {
                        return true;
                    }
                    if drops {
                        return false;
                    }
                    match e {
                        Value::Object(obj) => {
                            remove_ci(obj, &sub.name);
                            !obj.is_empty()
                        }
                        _ => true,
                    }
                });
            });
        }
        (Some(filter), None) => {
            if current.is_some() {
                with_array(c, &t.name, |arr| arr.retain(|e| !matches_element(filter, e, t.def)));
            }
        }
    }
}

/// The values a `remove` lists, indexed: an element goes when it equals a
/// listed value, or when a listed object's `value` equals the element's
/// `value` (`{"value": "id"}` removes the member whatever else it says).
struct Unwanted {
    whole: ValueIndex,
    /// The `value` of each listed object, by the object's position.
    by_value: std::collections::HashMap<u64, Vec<usize>>,
}

impl Unwanted {
    fn of(listed: &[Value]) -> Unwanted {
        let mut by_value: std::collections::HashMap<u64, Vec<usize>> = std::collections::HashMap::new();
        for (position, value) in listed.iter().enumerate() {
            if let Some(inner) = value.as_object().and_then(|l| get_ci(l, "value")) {
                by_value.entry(content_hash(inner)).or_default().push(position);
            }
        }
        Unwanted {
            whole: ValueIndex::of(listed),
            by_value,
        }
    }

    fn matches(&self, listed: &[Value], element: &Value) -> bool {
        if self.whole.contains(listed, element) {
            return true;
        }
        let Some(inner) = element.as_object().and_then(|e| get_ci(e, "value")) else {
            return false;
        };
        self.by_value.get(&content_hash(inner)).is_some_and(|positions| {
            positions
                .iter()
                .any(|&p| listed[p].as_object().and_then(|l| get_ci(l, "value")) == Some(inner))
        })
    }
}

/// The element a filter of `eq` comparisons joined by `and` describes,
/// e.g. `{"type": "work"}` for `type eq "work"`.
fn equality_template(filter: &Filter, def: Option<&'static Attribute>) -> Option<Map<String, Value>> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.urn.is_none() && path.sub_attr.is_none() => {
            let value = match value {
                CompValue::Str(s) => Value::from(s.as_str()),
                CompValue::Num(n) => Value::Number(n.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Null => return None,
            };
            let name = def
                .and_then(|d| d.sub_attribute(&path.attr))
                .map_or_else(|| path.attr.clone(), |s| s.name.to_owned());
            let mut element = Map::new();
            element.insert(name, value);
            Some(element)
        }
        Filter::And(left, right) => {
            let mut element = equality_template(left, def)?;
            for (k, v) in equality_template(right, def)? {
                insert_ci(&mut element, &k, v);
            }
            Some(element)
        }
        _ => None,
    }
}

/// A value about to be written, in the shape stored documents have: known
/// sub-attribute names in schema spelling, boolean strings as booleans, and
/// a bare value for a complex attribute with a `value` sub-attribute
/// wrapped as `{"value": ...}` (Entra ID sends the manager's id alone).
fn prepare_element(def: Option<&'static Attribute>, value: &Value) -> Value {
    let Some(def) = def else {
        return value.clone();
    };
    match value {
        Value::Object(entries) if def.kind == AttributeType::Complex => {
            let mut out = Map::new();
            for (k, v) in entries {
                let sub = def.sub_attribute(k);
                let name = sub.map_or(k.as_str(), |s| s.name);
                let v = match (sub.map(|s| s.kind), as_bool(v)) {
                    (Some(AttributeType::Boolean), Some(b)) => Value::Bool(b),
                    _ => v.clone(),
                };
                insert_ci(&mut out, name, v);
            }
            Value::Object(out)
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_)
            if def.kind == AttributeType::Complex && def.sub_attribute("value").is_some() =>
        {
            let mut out = Map::new();
            out.insert("value".to_owned(), value.clone());
            Value::Object(out)
        }
        Value::String(_) if def.kind == AttributeType::Boolean => {
            as_bool(value).map_or_else(|| value.clone(), Value::Bool)
        }
        _ => value.clone(),
    }
}

/// Makes the touched primary elements the only primary ones.
fn keep_single_primary(arr: &mut [Value], touched: &[usize]) {
    let winners: std::collections::HashSet<usize> = touched
        .iter()
        .copied()
        .filter(|&i| arr.get(i).is_some_and(is_primary))
        .collect();
    if winners.is_empty() {
        return;
    }
    for (i, element) in arr.iter_mut().enumerate() {
        if !winners.contains(&i)
            && let Value::Object(obj) = element
            && is_true(get_ci(obj, "primary"))
        {
            remove_ci(obj, "primary");
        }
    }
}

/// Runs `f` on the array under `name` (a missing or null entry is empty, a
/// single value becomes a one-element array) and stores the result in
/// place, removing the entry when it ends up empty.
fn with_array<R>(c: &mut Map<String, Value>, name: &str, f: impl FnOnce(&mut Vec<Value>) -> R) -> R {
    let key = key_ci(c, name).unwrap_or(name).to_owned();
    let mut items = match c.get_mut(&key).map(Value::take) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(single) => vec![single],
    };
    let result = f(&mut items);
    if items.is_empty() {
        c.shift_remove(&key);
    } else {
        c.insert(key, Value::Array(items));
    }
    result
}

/// Runs `f` on the object under `name` (created when missing; a bare value
/// becomes `{"value": ...}`) and stores it in place, removing the entry
/// when it ends up empty.
fn with_object<R>(c: &mut Map<String, Value>, name: &str, f: impl FnOnce(&mut Map<String, Value>) -> R) -> R {
    let key = key_ci(c, name).unwrap_or(name).to_owned();
    let mut obj = match c.get_mut(&key).map(Value::take) {
        Some(Value::Object(obj)) => obj,
        None | Some(Value::Null | Value::Array(_)) => Map::new(),
        Some(bare) => {
            let mut obj = Map::new();
            obj.insert("value".to_owned(), bare);
            obj
        }
    };
    let result = f(&mut obj);
    if obj.is_empty() {
        c.shift_remove(&key);
    } else {
        c.insert(key, Value::Object(obj));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::resource::normalize;
    use crate::schema::{ENTERPRISE_USER_SCHEMA_ID, GROUP_RESOURCE, USER_RESOURCE, USER_SCHEMA_ID};
    use serde_json::json;

    #[test]
    fn patch_paths_split_into_attribute_filter_and_sub_attribute() {
        let plain = PatchPath::parse(" members ").expect("a path");
        assert_eq!(
            (plain.attr.attr.as_str(), plain.attr.sub_attr, plain.filter),
            ("members", None, None)
        );
        let filtered = PatchPath::parse(r#"members[value eq "a" or type eq "Group"]"#).expect("a path");
        assert_eq!(filtered.attr.attr, "members");
        assert_eq!(filtered.attr.sub_attr, None);
        assert_eq!(
            filtered.filter.map(|f| f.to_string()).as_deref(),
            Some(r#"value eq "a" or type eq "Group""#)
        );
        let sub = PatchPath::parse(r#"urn:ietf:params:scim:schemas:core:2.0:Group:members[value eq "x"].display"#)
            .expect("a path");
        assert_eq!(
            sub.attr.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:core:2.0:Group")
        );
        assert_eq!(
            (sub.attr.attr.as_str(), sub.attr.sub_attr.as_deref()),
            ("members", Some("display"))
        );
        assert!(sub.filter.is_some());
        let dotted = PatchPath::parse("members.value").expect("a path");
        assert_eq!(dotted.attr.sub_attr.as_deref(), Some("value"));
    }

    #[test]
    fn malformed_patch_paths_are_invalid_path() {
        for bad in [
            "members[value eq",
            "members]",
            "members.value[type pr]",
            "members[value eq \"x\"]x",
            "",
        ] {
            let err = PatchPath::parse(bad).expect_err(bad);
            assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{bad}");
        }
    }

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            other => panic!("not an object: {other}"),
        }
    }

    fn user() -> Map<String, Value> {
        object(json!({
            "schemas": [USER_SCHEMA_ID, ENTERPRISE_USER_SCHEMA_ID],
            "externalId": "00u1dhhb1fkIGP7RL1d8",
            "userName": "bjensen@example.com",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            ENTERPRISE_USER_SCHEMA_ID: {"department": "Tour Operations", "manager": {"value": "m-1"}}
        }))
    }

    fn op(op: &str, path: Option<&str>, value: Option<Value>) -> PatchOperation {
        PatchOperation::new(op, path.map(str::to_owned), value).expect("valid operation")
    }

    fn patch(doc: &Map<String, Value>, ops: Vec<PatchOperation>) -> Map<String, Value> {
        apply(doc, &ops, &USER_RESOURCE).expect("patch applies")
    }

    fn patch_err(doc: &Map<String, Value>, ops: Vec<PatchOperation>) -> ScimError {
        apply(doc, &ops, &USER_RESOURCE).expect_err("patch fails")
    }

    fn body(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
    }

    // --- parse_request ---

    #[test]
    fn okta_deactivate_request_parses() {
        let ops = parse_request(&body(json!([{"op": "replace", "value": {"active": false}}])));
        assert_eq!(ops, Ok(vec![op("replace", None, Some(json!({"active": false})))]));
    }

    #[test]
    fn entra_capitalised_ops_parse() {
        let ops = parse_request(&body(json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "name.givenName", "value": "X"},
            {"op": "REMOVE", "path": "title"}
        ])))
        .expect("valid");
        let kinds: Vec<PatchOpKind> = ops.iter().map(|o| o.op).collect();
        assert_eq!(kinds, [PatchOpKind::Replace, PatchOpKind::Add, PatchOpKind::Remove]);
    }

    #[test]
    fn operations_key_and_schemas_are_lenient() {
        assert!(parse_request(&json!({"operations": [{"op": "add", "path": "title", "value": "x"}]})).is_ok());
        assert!(parse_request(&json!({"schemas": [PATCH_OP_SCHEMA.to_uppercase()], "Operations": []})).is_ok());
    }

    #[test]
    fn request_shape_errors_are_invalid_syntax() {
        for bad in [
            json!([]),
            json!({}),
            json!({"Operations": {}}),
            json!({"schemas": ["urn:wrong"], "Operations": []}),
            json!({"schemas": PATCH_OP_SCHEMA, "Operations": []}),
            body(json!([1])),
            body(json!([{"path": "title", "value": "x"}])),
            body(json!([{"op": "merge", "path": "title", "value": "x"}])),
            body(json!([{"op": 1, "path": "title", "value": "x"}])),
        ] {
            let err = parse_request(&bad).expect_err("invalid");
            assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax), "{bad}: {err}");
        }
    }

    #[test]
    fn remove_without_path_is_no_target() {
        let err = parse_request(&body(json!([{"op": "remove"}]))).expect_err("invalid");
        assert_eq!(err.scim_type, Some(ScimType::NoTarget));
        assert!(err.detail.starts_with("operation 0:"), "{}", err.detail);
        let err = parse_request(&body(
            json!([{"op": "add", "path": "title", "value": "x"}, {"op": "remove", "path": ""}]),
        ))
        .expect_err("invalid");
        assert!(err.detail.starts_with("operation 1:"), "{}", err.detail);
    }

    #[test]
    fn add_and_replace_need_a_value() {
        for kind in ["add", "replace"] {
            let err = parse_request(&body(json!([{"op": kind, "path": "title"}]))).expect_err("invalid");
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        }
        let explicit_null = parse_request(&body(json!([{"op": "replace", "path": "title", "value": null}])));
        assert_eq!(explicit_null, Ok(vec![op("replace", Some("title"), Some(Value::Null))]));
    }

    #[test]
    fn non_string_path_is_invalid_path() {
        let err = parse_request(&body(json!([{"op": "add", "path": 5, "value": "x"}]))).expect_err("invalid");
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
    }

    #[test]
    fn op_kind_names_round_trip() {
        for kind in [PatchOpKind::Add, PatchOpKind::Replace, PatchOpKind::Remove] {
            assert_eq!(PatchOpKind::parse(kind.as_str()), Some(kind));
        }
    }

    // --- apply: IdP shapes ---

    #[test]
    fn okta_pathless_replace_deactivates() {
        let out = patch(&user(), vec![op("replace", None, Some(json!({"active": false})))]);
        assert_eq!(out["active"], json!(false));
    }

    #[test]
    fn entra_replace_active_with_boolean_string_becomes_a_bool() {
        let out = patch(&user(), vec![op("Replace", Some("active"), Some(json!("False")))]);
        assert_eq!(out["active"], json!(false));
        let normalized = normalize(Value::Object(out), &USER_RESOURCE).expect("valid");
        assert_eq!(normalized.doc["active"], json!(false));
    }

    #[test]
    fn entra_add_work_email_value_creates_the_element_when_missing() {
        let mut doc = user();
        doc.shift_remove("emails");
        let out = patch(
            &doc,
            vec![op(
                "Add",
                Some(r#"emails[type eq "work"].value"#),
                Some(json!("a@b.com")),
            )],
        );
        assert_eq!(out["emails"], json!([{"type": "work", "value": "a@b.com"}]));
    }

    #[test]
    fn entra_replace_work_email_value_updates_the_existing_element() {
        let out = patch(
            &user(),
            vec![op(
                "Replace",
                Some(r#"emails[type eq "work"].value"#),
                Some(json!("new@example.com")),
            )],
        );
        assert_eq!(
            out["emails"][0],
            json!({"value": "new@example.com", "type": "work", "primary": true})
        );
        assert_eq!(out["emails"][1], json!({"value": "babs@jensen.org", "type": "home"}));
    }

    #[test]
    fn entra_replace_manager_with_bare_id_sets_manager_value() {
        let path = format!("{ENTERPRISE_USER_SCHEMA_ID}:manager");
        let out = patch(&user(), vec![op("Replace", Some(&path), Some(json!("m-2")))]);
        assert_eq!(out[ENTERPRISE_USER_SCHEMA_ID]["manager"], json!({"value": "m-2"}));
    }

    #[test]
    fn entra_add_manager_in_its_list_form_stores_the_manager_value() {
        let path = format!("{ENTERPRISE_USER_SCHEMA_ID}:manager");
        for value in [json!([{"$ref": null, "value": "m-7"}]), json!("m-7")] {
            let out = patch(&user(), vec![op("Add", Some(&path), Some(value.clone()))]);
            let normalized = normalize(Value::Object(out), &USER_RESOURCE).expect("valid");
            assert_eq!(
                normalized.doc[ENTERPRISE_USER_SCHEMA_ID]["manager"],
                json!({"value": "m-7"}),
                "{value}"
            );
        }
    }

    #[test]
    fn entra_add_manager_to_user_without_enterprise_extension() {
        let mut doc = user();
        doc.shift_remove(ENTERPRISE_USER_SCHEMA_ID);
        let path = format!("{ENTERPRISE_USER_SCHEMA_ID}:manager");
        let out = patch(&doc, vec![op("Add", Some(&path), Some(json!("m-9")))]);
        assert_eq!(out[ENTERPRISE_USER_SCHEMA_ID], json!({"manager": {"value": "m-9"}}));
        let normalized = normalize(Value::Object(out), &USER_RESOURCE).expect("valid");
        assert_eq!(
            normalized.doc["schemas"],
            json!([USER_SCHEMA_ID, ENTERPRISE_USER_SCHEMA_ID])
        );
    }

    #[test]
    fn add_name_given_name_sets_the_sub_attribute() {
        let out = patch(&user(), vec![op("Add", Some("name.givenName"), Some(json!("X")))]);
        assert_eq!(out["name"], json!({"familyName": "Jensen", "givenName": "X"}));
        let mut doc = user();
        doc.shift_remove("name");
        let out = patch(&doc, vec![op("Add", Some("name.givenName"), Some(json!("X")))]);
        assert_eq!(out["name"], json!({"givenName": "X"}));
    }

    #[test]
    fn entra_address_locality_and_dotted_pathless_keys() {
        let doc = patch(
            &user(),
            vec![
                op(
                    "Add",
                    Some(r#"addresses[type eq "work"].locality"#),
                    Some(json!("Paris")),
                ),
                op(
                    "Replace",
                    Some(r#"addresses[type eq "work"].locality"#),
                    Some(json!("Lyon")),
                ),
                op(
                    "replace",
                    None,
                    Some(json!({"name.givenName": "Babs", "emails[type eq \"work\"].primary": "True"})),
                ),
            ],
        );
        assert_eq!(doc["addresses"], json!([{"type": "work", "locality": "Lyon"}]));
        assert_eq!(doc["name"]["givenName"], "Babs");
        let work = doc["emails"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["type"] == "work"))
            .cloned();
        assert_eq!(work.map(|w| w["primary"].clone()), Some(json!(true)));
    }

    #[test]
    fn a_whole_extension_value_may_carry_schemas() {
        let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        for kind in ["add", "replace"] {
            let value = json!({"schemas": [ext], "department": "R&D"});
            let patched = patch(&user(), vec![op(kind, Some(ext), Some(value))]);
            assert_eq!(patched[ext]["department"], json!("R&D"), "{kind}");
            assert_eq!(patched[ext].get("schemas"), None, "{kind}");
        }
    }

    #[test]
    fn entra_pathless_replace_with_urn_keys_sets_enterprise_department() {
        let out = patch(
            &user(),
            vec![op(
                "Replace",
                None,
                Some(json!({
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Finance",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value": "m-3",
                    "name.givenName": "Babs",
                    "displayName": "Babs Jensen"
                })),
            )],
        );
        assert_eq!(
            out[ENTERPRISE_USER_SCHEMA_ID],
            json!({"department": "Finance", "manager": {"value": "m-3"}})
        );
        assert_eq!(out["name"]["givenName"], json!("Babs"));
        assert_eq!(out["displayName"], json!("Babs Jensen"));
    }

    #[test]
    fn pathless_add_with_whole_extension_object_merges_it() {
        let out = patch(
            &user(),
            vec![op(
                "add",
                None,
                Some(json!({ENTERPRISE_USER_SCHEMA_ID: {"costCenter": "4130", "Department": "Sales"}})),
            )],
        );
        assert_eq!(
            out[ENTERPRISE_USER_SCHEMA_ID],
            json!({"department": "Sales", "manager": {"value": "m-1"}, "costCenter": "4130"})
        );
    }

    #[test]
    fn pathless_value_under_the_core_urn_applies_to_core_attributes() {
        let out = patch(
            &user(),
            vec![op("replace", None, Some(json!({USER_SCHEMA_ID: {"title": "CEO"}})))],
        );
        assert_eq!(out["title"], json!("CEO"));
    }

    #[test]
    fn okta_group_rename_ignores_the_id_it_sends_along() {
        let group = object(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Old"}));
        let ops = [op(
            "replace",
            None,
            Some(json!({"id": "abf4dd94", "displayName": "New"})),
        )];
        let out = apply(&group, &ops, &GROUP_RESOURCE).expect("applies");
        assert_eq!(
            Value::Object(out),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "New"})
        );
    }

    #[test]
    fn okta_pathless_replace_with_the_users_own_id_deactivates() {
        let out = patch(
            &user(),
            vec![op(
                "replace",
                None,
                Some(json!({"id": "2819c223", "active": false, "meta": {"version": "W/\"1\""}, "groups": []})),
            )],
        );
        let mut expected = user();
        expected.insert("active".to_owned(), json!(false));
        assert_eq!(
            out, expected,
            "read-only keys in a path-less value are ignored, as in a PUT"
        );
    }

    #[test]
    fn boolean_strings_are_read_in_any_case() {
        let out = patch(
            &user(),
            vec![
                op("replace", None, Some(json!({"active": "FALSE"}))),
                op(
                    "add",
                    Some("emails"),
                    Some(json!({"value": "c@x.org", "primary": "true"})),
                ),
            ],
        );
        assert_eq!(out["active"], json!(false));
        assert_eq!(out["emails"][2], json!({"value": "c@x.org", "primary": true}));
        assert!(out["emails"][0].get("primary").is_none());
    }

    #[test]
    fn entra_group_member_add_and_remove_by_value() {
        let group = object(json!({"displayName": "G", "members": [{"value": "u1"}, {"value": "u2"}]}));
        let ops = [
            op("Add", Some("members"), Some(json!([{"value": "u3"}, {"value": "u1"}]))),
            op("Remove", Some("members"), Some(json!([{"value": "u2"}]))),
        ];
        let out = apply(&group, &ops, &GROUP_RESOURCE).expect("applies");
        assert_eq!(out["members"], json!([{"value": "u1"}, {"value": "u3"}]));
    }

    #[test]
    fn group_member_remove_by_filter() {
        let group = object(json!({"displayName": "G", "members": [{"value": "u1"}, {"value": "u2"}]}));
        let ops = [op("remove", Some(r#"members[value eq "u1"]"#), None)];
        let out = apply(&group, &ops, &GROUP_RESOURCE).expect("applies");
        assert_eq!(out["members"], json!([{"value": "u2"}]));
    }

    #[test]
    fn removing_the_last_member_removes_the_attribute() {
        let group = object(json!({"displayName": "G", "members": [{"value": "u1"}]}));
        let ops = [op("remove", Some(r#"members[value eq "u1"]"#), None)];
        let out = apply(&group, &ops, &GROUP_RESOURCE).expect("applies");
        assert!(!out.contains_key("members"));
    }

    #[test]
    fn changing_an_immutable_member_value_is_mutability() {
        let group = object(json!({"displayName": "G", "members": [{"value": "u1"}]}));
        let ops = [op(
            "replace",
            Some(r#"members[value eq "u1"].value"#),
            Some(json!("u9")),
        )];
        let err = apply(&group, &ops, &GROUP_RESOURCE).expect_err("immutable");
        assert_eq!(err.scim_type, Some(ScimType::Mutability));
    }

    // --- apply: RFC semantics ---

    #[test]
    fn add_to_multi_valued_appends_and_skips_exact_duplicates() {
        let out = patch(
            &user(),
            vec![op(
                "add",
                Some("emails"),
                Some(json!([{"value": "babs@jensen.org", "type": "home"}, {"value": "b@other.org", "type": "other"}])),
            )],
        );
        let emails = out["emails"].as_array().expect("array");
        assert_eq!(emails.len(), 3);
        assert_eq!(emails[2], json!({"value": "b@other.org", "type": "other"}));
    }

    #[test]
    fn add_single_value_to_multi_valued_appends_it() {
        let out = patch(
            &user(),
            vec![op(
                "add",
                Some("phoneNumbers"),
                Some(json!({"value": "+1 555", "type": "work"})),
            )],
        );
        assert_eq!(out["phoneNumbers"], json!([{"value": "+1 555", "type": "work"}]));
    }

    #[test]
    fn new_primary_wins_over_the_old_one() {
        let out = patch(
            &user(),
            vec![op(
                "add",
                Some("emails"),
                Some(json!([{"value": "new@example.com", "type": "work", "primary": "True"}])),
            )],
        );
        let emails = out["emails"].as_array().expect("array");
        assert_eq!(emails.iter().filter(|e| is_primary(e)).count(), 1);
        assert_eq!(emails[2]["primary"], json!(true));
        assert!(emails[0].get("primary").is_none());
        normalize(Value::Object(out), &USER_RESOURCE).expect("one primary");
    }

    #[test]
    fn setting_primary_through_a_filter_clears_the_others() {
        let out = patch(
            &user(),
            vec![op(
                "replace",
                Some(r#"emails[type eq "home"].primary"#),
                Some(json!(true)),
            )],
        );
        assert_eq!(out["emails"][1]["primary"], json!(true));
        assert!(out["emails"][0].get("primary").is_none());
    }

    #[test]
    fn replace_multi_valued_replaces_all_values() {
        let out = patch(
            &user(),
            vec![op(
                "replace",
                Some("emails"),
                Some(json!({"value": "only@example.com"})),
            )],
        );
        assert_eq!(out["emails"], json!([{"value": "only@example.com"}]));
    }

    #[test]
    fn replace_complex_merges_sub_attributes() {
        let out = patch(
            &user(),
            vec![op(
                "replace",
                Some("name"),
                Some(json!({"GivenName": "Babs", "middleName": "J"})),
            )],
        );
        assert_eq!(
            out["name"],
            json!({"familyName": "Jensen", "givenName": "Babs", "middleName": "J"})
        );
    }

    #[test]
    fn replace_with_value_filter_replaces_the_whole_element() {
        let out = patch(
            &user(),
            vec![op(
                "replace",
                Some(r#"emails[type eq "home"]"#),
                Some(json!({"value": "babs@new.org"})),
            )],
        );
        assert_eq!(out["emails"][1], json!({"value": "babs@new.org", "type": "home"}));
    }

    #[test]
    fn add_with_value_filter_merges_into_matching_elements() {
        let out = patch(
            &user(),
            vec![op(
                "add",
                Some(r#"emails[type eq "home"]"#),
                Some(json!({"display": "Home"})),
            )],
        );
        assert_eq!(
            out["emails"][1],
            json!({"value": "babs@jensen.org", "type": "home", "display": "Home"})
        );
    }

    #[test]
    fn replace_with_filter_matching_nothing_is_no_target() {
        let err = patch_err(
            &user(),
            vec![op(
                "replace",
                Some(r#"emails[value co "nowhere"].type"#),
                Some(json!("x")),
            )],
        );
        assert_eq!(err.scim_type, Some(ScimType::NoTarget));
        let err = patch_err(
            &user(),
            vec![op(
                "replace",
                Some(r#"emails[type eq "pager" or type eq "other"].value"#),
                Some(json!("x")),
            )],
        );
        assert_eq!(err.scim_type, Some(ScimType::NoTarget));
    }

    #[test]
    fn add_with_filter_matching_nothing_is_no_target_unless_the_filter_describes_the_element() {
        for path in [
            r#"emails[value co "nowhere"].type"#,
            r#"emails[not (type eq "work" or type eq "home")].display"#,
        ] {
            let err = patch_err(&user(), vec![op("add", Some(path), Some(json!("x")))]);
            assert_eq!(err.scim_type, Some(ScimType::NoTarget), "{path}");
        }
        let out = patch(
            &user(),
            vec![op(
                "add",
                Some(r#"emails[type eq "other"].value"#),
                Some(json!("o@x.org")),
            )],
        );
        assert_eq!(out["emails"][2], json!({"type": "other", "value": "o@x.org"}));
    }

    #[test]
    fn a_new_element_made_primary_through_a_filter_takes_primary_from_the_old_one() {
        let out = patch(
            &user(),
            vec![op(
                "add",
                Some(r#"emails[type eq "other"]"#),
                Some(json!({"value": "o@x.org", "primary": true})),
            )],
        );
        let primaries: Vec<&Value> = out["emails"]
            .as_array()
            .expect("array")
            .iter()
            .filter(|e| is_primary(e))
            .collect();
        assert_eq!(
            primaries,
            [&json!({"type": "other", "value": "o@x.org", "primary": true})]
        );
    }

    #[test]
    fn filter_with_several_equalities_creates_an_element_with_all_of_them() {
        let out = patch(
            &user(),
            vec![op(
                "add",
                Some(r#"addresses[type eq "work" and country eq "NL"].locality"#),
                Some(json!("Utrecht")),
            )],
        );
        assert_eq!(
            out["addresses"],
            json!([{"type": "work", "country": "NL", "locality": "Utrecht"}])
        );
        let again = patch(
            &out,
            vec![op(
                "add",
                Some(r#"addresses[type eq "work" and country eq "NL"].postalCode"#),
                Some(json!("3511")),
            )],
        );
        assert_eq!(
            again["addresses"],
            json!([{"type": "work", "country": "NL", "locality": "Utrecht", "postalCode": "3511"}])
        );
    }

    #[test]
    fn remove_with_value_filter_removes_only_matching_emails() {
        let out = patch(&user(), vec![op("remove", Some(r#"emails[type eq "work"]"#), None)]);
        assert_eq!(out["emails"], json!([{"value": "babs@jensen.org", "type": "home"}]));
    }

    #[test]
    fn remove_with_filter_matching_nothing_is_fine() {
        let doc = user();
        let out = patch(&doc, vec![op("remove", Some(r#"emails[type eq "other"]"#), None)]);
        assert_eq!(out, doc);
    }

    #[test]
    fn remove_of_a_missing_attribute_is_fine() {
        let doc = user();
        assert_eq!(patch(&doc, vec![op("remove", Some("nickName"), None)]), doc);
        assert_eq!(
            patch(&doc, vec![op("remove", Some("phoneNumbers[type eq \"work\"]"), None)]),
            doc
        );
        let mut bare = doc.clone();
        bare.shift_remove(ENTERPRISE_USER_SCHEMA_ID);
        let path = format!("{ENTERPRISE_USER_SCHEMA_ID}:department");
        assert_eq!(patch(&bare, vec![op("remove", Some(&path), None)]), bare);
    }

    #[test]
    fn remove_deletes_attributes_and_sub_attributes() {
        let out = patch(
            &user(),
            vec![
                op("remove", Some("name.givenName"), None),
                op("remove", Some("externalId"), None),
                op("remove", Some(r#"emails[type eq "home"].type"#), None),
            ],
        );
        assert_eq!(out["name"], json!({"familyName": "Jensen"}));
        assert!(!out.contains_key("externalId"));
        assert_eq!(out["emails"][1], json!({"value": "babs@jensen.org"}));
    }

    #[test]
    fn removing_an_elements_value_removes_the_element() {
        let out = patch(
            &user(),
            vec![op("remove", Some(r#"emails[type eq "home"].value"#), None)],
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "bjensen@example.com", "type": "work", "primary": true}])
        );
    }

    #[test]
    fn removing_the_last_extension_attribute_removes_the_extension() {
        let out = patch(
            &user(),
            vec![
                op("remove", Some(&format!("{ENTERPRISE_USER_SCHEMA_ID}:department")), None),
                op("remove", Some(&format!("{ENTERPRISE_USER_SCHEMA_ID}:manager")), None),
            ],
        );
        assert!(!out.contains_key(ENTERPRISE_USER_SCHEMA_ID));
    }

    #[test]
    fn remove_whole_extension_by_its_urn() {
        let out = patch(
            &user(),
            vec![op("remove", Some(&ENTERPRISE_USER_SCHEMA_ID.to_lowercase()), None)],
        );
        assert!(!out.contains_key(ENTERPRISE_USER_SCHEMA_ID));
    }

    #[test]
    fn replace_with_null_unassigns_and_add_with_null_does_nothing() {
        let out = patch(&user(), vec![op("replace", Some("name.familyName"), Some(Value::Null))]);
        assert_eq!(out["name"], json!({"givenName": "Barbara"}));
        let doc = user();
        assert_eq!(patch(&doc, vec![op("add", Some("emails"), Some(Value::Null))]), doc);
    }

    #[test]
    fn sub_attribute_of_multi_valued_without_filter_applies_to_every_value() {
        let out = patch(&user(), vec![op("replace", Some("emails.display"), Some(json!("E")))]);
        assert!(
            out["emails"]
                .as_array()
                .expect("array")
                .iter()
                .all(|e| e["display"] == "E")
        );
    }

    #[test]
    fn paths_match_in_any_case_and_are_written_in_schema_spelling() {
        let out = patch(&user(), vec![op("replace", Some("DISPLAYNAME"), Some(json!("B")))]);
        assert_eq!(out["displayName"], json!("B"));
        let path = format!("{}:NAME.GIVENNAME", USER_SCHEMA_ID.to_uppercase());
        let out = patch(&user(), vec![op("replace", Some(&path), Some(json!("G")))]);
        assert_eq!(out["name"]["givenName"], json!("G"));
    }

    #[test]
    fn unknown_extension_attributes_can_be_patched() {
        let out = patch(
            &user(),
            vec![
                op("add", Some("urn:example:custom:1.0:User:badge"), Some(json!(17))),
                op("add", None, Some(json!({"urn:example:other:1.0:User": {"level": "A"}}))),
            ],
        );
        assert_eq!(out["urn:example:custom:1.0:User"], json!({"badge": 17}));
        assert_eq!(out["urn:example:other:1.0:User"], json!({"level": "A"}));
        let out = patch(
            &out,
            vec![op("add", Some("urn:example:other:1.0:User"), Some(json!({"x": 1})))],
        );
        assert_eq!(out["urn:example:other:1.0:User"], json!({"level": "A", "x": 1}));
        let out = patch(&out, vec![op("remove", Some("urn:example:other:1.0:User"), None)]);
        assert!(!out.contains_key("urn:example:other:1.0:User"));
    }

    #[test]
    fn password_can_be_set_and_is_taken_out_by_normalize() {
        let out = patch(&user(), vec![op("replace", None, Some(json!({"password": "n3w"})))]);
        let normalized = normalize(Value::Object(out), &USER_RESOURCE).expect("valid");
        assert_eq!(normalized.password.as_deref(), Some("n3w"));
    }

    // --- apply: errors ---

    #[test]
    fn writing_read_only_attributes_is_mutability() {
        for path in [
            "id",
            "meta.lastModified",
            "groups",
            "meta",
            &format!("{ENTERPRISE_USER_SCHEMA_ID}:manager.displayName"),
        ] {
            let err = patch_err(&user(), vec![op("replace", Some(path), Some(json!("x")))]);
            assert_eq!(err.scim_type, Some(ScimType::Mutability), "{path}: {err}");
        }
        let err = patch_err(&user(), vec![op("remove", Some("groups"), None)]);
        assert_eq!(err.scim_type, Some(ScimType::Mutability));
    }

    #[test]
    fn unknown_attributes_are_invalid_path() {
        for path in [
            "shoeSize",
            "name.nickname",
            "emails.nope",
            "title.sub",
            "department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:shoeSize",
        ] {
            let err = patch_err(&user(), vec![op("add", Some(path), Some(json!("x")))]);
            assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{path}: {err}");
        }
        let err = patch_err(&user(), vec![op("replace", None, Some(json!({"shoeSize": 44})))]);
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
    }

    #[test]
    fn malformed_paths_are_invalid_path() {
        for path in [
            "emails[type eq \"work\"",
            "emails]",
            "emails[type eq]",
            "emails[type eq \"work\"]value",
            "emails[type eq \"work\"].a.b",
            "name.givenName[x pr]",
            "title[value eq \"x\"]",
            "1title",
            USER_SCHEMA_ID,
        ] {
            let err = patch_err(&user(), vec![op("add", Some(path), Some(json!("x")))]);
            assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{path}: {err}");
        }
    }

    #[test]
    fn pathless_add_needs_an_object() {
        let err = patch_err(&user(), vec![op("add", None, Some(json!("x")))]);
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        let err = patch_err(
            &user(),
            vec![op("add", None, Some(json!({ENTERPRISE_USER_SCHEMA_ID: "x"})))],
        );
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn values_of_the_wrong_shape_are_invalid_value() {
        let err = patch_err(
            &user(),
            vec![op(
                "replace",
                Some(r#"addresses[type eq "work"]"#),
                Some(json!("Paris")),
            )],
        );
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        for (path, value) in [
            ("active", json!("maybe")),
            ("name", json!(["x"])),
            ("emails", json!([[1]])),
        ] {
            let out = patch(&user(), vec![op("replace", Some(path), Some(value))]);
            let err = normalize(Value::Object(out), &USER_RESOURCE).expect_err(path);
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{path}: {err}");
        }
    }

    #[test]
    fn failed_operation_leaves_document_unchanged() {
        let doc = user();
        let ops = vec![
            op("replace", Some("displayName"), Some(json!("changed"))),
            op("remove", Some("emails"), None),
            op("replace", Some("id"), Some(json!("hijack"))),
        ];
        let err = patch_err(&doc, ops);
        assert_eq!(err.scim_type, Some(ScimType::Mutability));
        assert_eq!(doc, user());
    }

    #[test]
    fn hand_built_operations_without_path_or_value_are_rejected() {
        let remove = PatchOperation {
            op: PatchOpKind::Remove,
            path: None,
            value: None,
        };
        assert_eq!(patch_err(&user(), vec![remove]).scim_type, Some(ScimType::NoTarget));
        let add = PatchOperation {
            op: PatchOpKind::Add,
            path: None,
            value: None,
        };
        assert_eq!(patch_err(&user(), vec![add]).scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn operations_apply_in_order() {
        let out = patch(
            &user(),
            vec![
                op("add", Some("title"), Some(json!("First"))),
                op("replace", Some("title"), Some(json!("Second"))),
                op("remove", Some("title"), None),
                op("add", Some("title"), Some(json!("Third"))),
            ],
        );
        assert_eq!(out["title"], json!("Third"));
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn apply_never_panics(
            doc in crate::test_support::user_doc(),
            ops in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["add", "replace", "remove"]),
                    proptest::option::of(proptest::prop_oneof![
                        crate::test_support::key(),
                        proptest::sample::select(vec![
                            "emails[type eq \"work\"].value",
                            "emails[type eq \"work\"]",
                            "emails[value co \"a\" or primary eq true].primary",
                            "addresses[type eq \"work\"].locality",
                            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                            "urn:example:ext:1.0:User:x",
                            "members[value eq \"x\"]",
                        ]).prop_map(str::to_owned),
                    ]),
                    proptest::option::of(crate::test_support::json_value()),
                ),
                0..5,
            ),
        ) {
            let ops: Vec<PatchOperation> = ops
                .into_iter()
                .filter_map(|(kind, path, value)| PatchOperation::new(kind, path, value).ok())
                .collect();
            if let Ok(out) = apply(&doc, &ops, &USER_RESOURCE) {
                let _ = normalize(Value::Object(out), &USER_RESOURCE);
            }
        }
    }
}
