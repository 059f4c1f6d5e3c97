//! How much one request may ask of the server: the bounds that keep one
//! IdP's request from costing every other directory its turn. Each bound is
//! configurable (the `[limits]` section of idmesh's configuration); the
//! defaults are far above what Okta, Entra ID, Google, OneLogin or
//! JumpCloud send.
//!
//! A request over a bound is refused whole, before anything is written,
//! with a SCIM error that names the bound: 413 for a body that is too large
//! (enforced where the body is read), 400 `invalidSyntax` for JSON nested
//! too deeply, 400 `tooMany` for too many operations, values or members.
//! Filters have fixed bounds of their own ([`crate::filter::MAX_FILTER_LEN`],
//! [`crate::filter::MAX_FILTER_DEPTH`], [`crate::filter::MAX_FILTER_TERMS`]).

use serde_json::Value;

use crate::error::ScimError;
use crate::patch::PatchOperation;

/// The bounds of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body of a single-resource request, and the
    /// largest a user or group may be as stored (its JSON text, a group's
    /// members aside), in bytes: a PATCH may not grow a resource past what
    /// an IdP could send whole in a PUT.
    pub max_document_bytes: usize,
    /// How deeply a request's JSON may nest (a SCIM user is four levels
    /// deep: the enterprise extension's `manager.value`).
    pub max_json_depth: usize,
    /// Operations in one PATCH request.
    pub max_patch_operations: usize,
    /// Values of one multi-valued attribute of a stored document (`emails`,
    /// `roles`, ...); a group's `members` are counted per request instead.
    pub max_attribute_values: usize,
    /// Members one request may add or remove.
    pub max_members_per_request: usize,
}

impl Limits {
    /// The deepest JSON serde_json itself parses; a configured depth above
    /// it could never be reached.
    pub const JSON_DEPTH_CEILING: usize = 127;

    pub const DEFAULT: Limits = Limits {
        max_document_bytes: 1_048_576,
        max_json_depth: 16,
        max_patch_operations: 1_000,
        max_attribute_values: 1_000,
        max_members_per_request: 10_000,
    };

    /// 400 `invalidSyntax` if `value` nests deeper than
    /// [`Limits::max_json_depth`] (`{"a": 1}` is one level, `{"a": {"b": 1}}` two).
    pub fn check_depth(&self, value: &Value) -> Result<(), ScimError> {
        self.check_depth_from(value, 0)
    }

    fn too_deep(&self) -> ScimError {
        ScimError::invalid_syntax(format!(
            "the request nests JSON deeper than the limit of {} levels",
            self.max_json_depth
        ))
    }

    /// The depth check of `value`, found `depth` levels down.
    fn check_depth_from(&self, value: &Value, depth: usize) -> Result<(), ScimError> {
        // Iterative: the check must not itself recurse on hostile input.
        let mut stack = vec![(value, depth)];
        while let Some((value, depth)) = stack.pop() {
            if !(value.is_array() || value.is_object()) {
                continue;
            }
            if depth >= self.max_json_depth {
                return Err(self.too_deep());
            }
            match value {
                Value::Array(items) => stack.extend(items.iter().map(|child| (child, depth + 1))),
                Value::Object(entries) => stack.extend(entries.values().map(|child| (child, depth + 1))),
                _ => {}
            }
        }
        Ok(())
    }

    /// [`Limits::check_depth`] of a JSON object.
    pub fn check_depth_of(&self, object: &serde_json::Map<String, Value>) -> Result<(), ScimError> {
        if self.max_json_depth == 0 {
            return Err(self.too_deep());
        }
        object.values().try_for_each(|value| self.check_depth_from(value, 1))
    }

    /// 400 `tooMany` for a PATCH with more than
    /// [`Limits::max_patch_operations`] operations, or with an operation
    /// that names more values of one attribute than a resource may hold
    /// ([`Limits::max_attribute_values`]; a group's `members` are bounded
    /// per request instead, [`Limits::check_members`]). Such a PATCH could
    /// not succeed, and is refused before applying it costs what its values
    /// cost.
    pub fn check_patch(&self, operations: &[PatchOperation]) -> Result<(), ScimError> {
        if operations.len() > self.max_patch_operations {
            return Err(ScimError::too_many(format!(
                "the PATCH has {} operations; the limit is {}",
                operations.len(),
                self.max_patch_operations
            )));
        }
        for operation in operations {
            let named: Vec<(&str, &Value)> = match (&operation.path, &operation.value) {
                (Some(path), Some(value)) => vec![(path.as_str(), value)],
                // Without a path the value is an object of attributes, and an
                // extension's are an object under its URN.
                (None, Some(Value::Object(attributes))) => attributes
                    .iter()
                    .flat_map(|(name, value)| match value {
                        Value::Object(extension) if name.starts_with("urn:") => {
                            extension.iter().map(|(name, value)| (name.as_str(), value)).collect()
                        }
                        _ => vec![(name.as_str(), value)],
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for (path, value) in named {
                if let Value::Array(values) = value
                    && values.len() > self.max_attribute_values
                    && !names_members(path)
                {
                    return Err(ScimError::too_many(format!(
                        "an operation names {} values of {path}; the limit is {}",
                        values.len(),
                        self.max_attribute_values
                    )));
                }
            }
        }
        Ok(())
    }

    /// 400 `tooMany` if a multi-valued attribute of `document` (at the top
    /// level or in an extension) has more than
    /// [`Limits::max_attribute_values`] values, 400 `invalidSyntax` if it
    /// nests deeper than [`Limits::max_json_depth`], and 400 `invalidValue`
    /// if its JSON text is longer than [`Limits::max_document_bytes`].
    pub fn check_document(&self, document: &serde_json::Map<String, Value>) -> Result<(), ScimError> {
        self.check_depth_of(document)?;
        let extensions = document
            .iter()
            .filter(|(name, _)| name.starts_with("urn:"))
            .filter_map(|(_, value)| value.as_object())
            .flat_map(|extension| extension.iter());
        for (name, value) in document.iter().chain(extensions) {
            if let Value::Array(values) = value
                && values.len() > self.max_attribute_values
            {
                return Err(ScimError::too_many(format!(
                    "{name} has {} values; the limit is {}",
                    values.len(),
                    self.max_attribute_values
                )));
            }
        }
        let bytes = json_len(document);
        if bytes > self.max_document_bytes {
            return Err(ScimError::invalid_value(format!(
                "the resource would be {bytes} bytes long; the limit is {}",
                self.max_document_bytes
            )));
        }
        Ok(())
    }

    /// 400 `tooMany` for a request naming more than
    /// [`Limits::max_members_per_request`] members.
    pub fn check_members(&self, members: usize) -> Result<(), ScimError> {
        if members > self.max_members_per_request {
            return Err(ScimError::too_many(format!(
                "the request names {members} members; the limit is {} per request",
                self.max_members_per_request
            )));
        }
        Ok(())
    }
}

/// Whether a PATCH path names a group's `members` (`members`,
/// `members[value eq "…"]`, the attribute qualified by its URN).
fn names_members(path: &str) -> bool {
    let unfiltered = path.split('[').next().unwrap_or_default();
    let unqualified = unfiltered.rsplit(':').next().unwrap_or_default();
    let attribute = unqualified.split('.').next().unwrap_or_default();
    attribute.eq_ignore_ascii_case("members")
}

/// The length of `value`'s JSON text (as `serde_json::to_string` writes it),
/// counted without building the text.
pub fn json_len(value: &impl serde::Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and the JSON values and objects
    // this weighs always serialise.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ScimType;
    use crate::patch::PatchOpKind;

    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!("leaf"), |inner, _| json!({ "a": inner }))
    }

    #[test]
    fn json_len_is_the_length_of_the_text() {
        let value = json!({"userName": "ada", "emails": [{"value": "ä@example.com"}], "n": 1.5});
        assert_eq!(json_len(&value), value.to_string().len());
    }

    #[test]
    fn a_document_up_to_max_document_bytes_passes_and_a_longer_one_is_invalid_value() {
        let document = |name: &str| {
            let Value::Object(doc) = json!({"userName": name}) else {
                unreachable!()
            };
            doc
        };
        // `{"userName":"…"}` is 15 bytes besides the name.
        let limits = Limits {
            max_document_bytes: 20,
            ..Limits::DEFAULT
        };
        assert_eq!(limits.check_document(&document("abcde")), Ok(()));
        let err = limits.check_document(&document("abcdef")).expect_err("one byte over");
        assert_eq!((err.status, err.scim_type), (400, Some(ScimType::InvalidValue)));
        assert!(
            err.detail.contains("21 bytes") && err.detail.contains("limit is 20"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn depth_up_to_the_limit_passes_and_one_more_is_invalid_syntax() {
        let limits = Limits::DEFAULT;
        assert!(limits.check_depth(&nested(16)).is_ok());
        let err = limits.check_depth(&nested(17)).expect_err("too deep");
        assert_eq!((err.status, err.scim_type), (400, Some(ScimType::InvalidSyntax)));
        assert!(err.detail.contains("16 levels"), "{}", err.detail);
        let arrays = (0..17).fold(json!(1), |inner, _| json!([inner]));
        assert!(limits.check_depth(&arrays).is_err());
    }

    #[test]
    fn a_real_user_is_well_within_the_depth() {
        let user = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "emails": [{"value": "a@example.com", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m"}}
        });
        assert!(
            Limits {
                max_json_depth: 3,
                ..Limits::DEFAULT
            }
            .check_depth(&user)
            .is_ok()
        );
    }

    #[test]
    fn a_patch_naming_more_values_of_one_attribute_than_a_resource_holds_is_too_many() {
        let limits = Limits {
            max_attribute_values: 2,
            max_members_per_request: 5,
            ..Limits::DEFAULT
        };
        let check = |path: Option<&str>, value: Value| {
            let op = PatchOperation {
                op: PatchOpKind::Add,
                path: path.map(str::to_owned),
                value: Some(value),
            };
            limits.check_patch(&[op]).map_err(|err| (err.status, err.scim_type))
        };
        let too_many = Err((400, Some(ScimType::TooMany)));
        assert_eq!(check(Some("emails"), json!([1, 2])), Ok(()));
        assert_eq!(check(Some("emails"), json!([1, 2, 3])), too_many);
        assert_eq!(check(None, json!({"emails": [1, 2, 3]})), too_many);
        assert_eq!(check(None, json!({"urn:example:ext": {"badges": [1, 2, 3]}})), too_many);
        assert_eq!(check(None, json!({"emails": [1, 2], "displayName": "x"})), Ok(()));
        // Members are bounded per request, by max_members_per_request.
        for path in [
            "members",
            "Members",
            "urn:ietf:params:scim:schemas:core:2.0:Group:members",
            "members[value eq \"a.b\"]",
        ] {
            assert_eq!(check(Some(path), json!([1, 2, 3])), Ok(()), "{path}");
        }
        assert_eq!(check(None, json!({"members": [1, 2, 3]})), Ok(()));
        assert_eq!(
            check(
                Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:badges"),
                json!([1, 2, 3])
            ),
            too_many
        );
    }

    #[test]
    fn counts_over_their_limits_are_too_many() {
        let limits = Limits {
            max_patch_operations: 2,
            max_attribute_values: 2,
            max_members_per_request: 2,
            ..Limits::DEFAULT
        };
        let op = PatchOperation {
            op: PatchOpKind::Add,
            path: Some("title".to_owned()),
            value: Some(json!("x")),
        };
        assert!(limits.check_patch(&[op.clone(), op.clone()]).is_ok());
        let too_many = [
            limits.check_patch(&[op.clone(), op.clone(), op]).expect_err("3 ops"),
            limits.check_members(3).expect_err("3 members"),
            limits
                .check_document(json!({"emails": [1, 2, 3]}).as_object().expect("object"))
                .expect_err("3 emails"),
            limits
                .check_document(
                    json!({"urn:example:ext": {"badges": [1, 2, 3]}})
                        .as_object()
                        .expect("object"),
                )
                .expect_err("3 values in an extension"),
        ];
        for err in too_many {
            assert_eq!((err.status, err.scim_type), (400, Some(ScimType::TooMany)), "{err}");
        }
        assert!(limits.check_members(2).is_ok());
    }
}
