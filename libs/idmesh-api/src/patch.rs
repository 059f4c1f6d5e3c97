//! SCIM PATCH operations ↔ `idmesh.v1.PatchOperation`.

use idmesh_proto::v1 as proto;
use scim::ScimError;
use scim::patch::{PatchOpKind, PatchOperation};
use serde_json::Value;

/// One operation as it travels: how Rust callers of the gRPC API write one.
pub fn operation(kind: PatchOpKind, path: &str, value: Option<&Value>) -> proto::PatchOperation {
    let op = match kind {
        PatchOpKind::Add => proto::PatchOp::Add,
        PatchOpKind::Replace => proto::PatchOp::Replace,
        PatchOpKind::Remove => proto::PatchOp::Remove,
    };
    proto::PatchOperation {
        op: op.into(),
        path: path.to_owned(),
        value_json: value.map(ToString::to_string).unwrap_or_default(),
    }
}

/// The operations as they travel, in order.
pub fn to_proto(operations: &[PatchOperation]) -> Vec<proto::PatchOperation> {
    operations
        .iter()
        .map(|op| operation(op.op, op.path.as_deref().unwrap_or_default(), op.value.as_ref()))
        .collect()
}

/// The operations a caller sent, checked: a known op, a path for every
/// remove, a value that is JSON for every add and replace. Errors name the
/// operation by its index, as the gateway's parser does.
pub fn from_proto(operations: Vec<proto::PatchOperation>) -> Result<Vec<PatchOperation>, ScimError> {
    operations
        .into_iter()
        .enumerate()
        .map(|(index, operation)| {
            let in_operation = |err: ScimError| {
                ScimError::new(err.status, err.scim_type, format!("operation {index}: {}", err.detail))
            };
            let kind = match operation.op() {
                proto::PatchOp::Add => PatchOpKind::Add,
                proto::PatchOp::Replace => PatchOpKind::Replace,
                proto::PatchOp::Remove => PatchOpKind::Remove,
                proto::PatchOp::Unspecified => {
                    return Err(in_operation(ScimError::invalid_syntax(
                        "the op must be add, replace or remove",
                    )));
                }
            };
            let value = match operation.value_json.as_str() {
                "" => None,
                text => Some(serde_json::from_str(text).map_err(|err| {
                    in_operation(ScimError::invalid_syntax(format!("the value is not valid JSON: {err}")))
                })?),
            };
            let path = Some(operation.path).filter(|path| !path.is_empty());
            PatchOperation::of_kind(kind, path, value).map_err(in_operation)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use scim::ScimType;
    use serde_json::json;

    use super::*;

    #[test]
    fn operations_arrive_as_they_were_sent() {
        let sent = vec![
            PatchOperation::new("Replace", Some("active".to_owned()), Some(json!("False"))).expect("valid"),
            PatchOperation::new("add", None, Some(json!({"x-big": 9_007_199_254_740_993_u64}))).expect("valid"),
            PatchOperation::new("remove", Some("emails[type eq \"work\"]".to_owned()), None).expect("valid"),
            PatchOperation::new("replace", Some("nickName".to_owned()), Some(json!(null))).expect("valid"),
        ];
        assert_eq!(from_proto(to_proto(&sent)).expect("valid"), sent);
    }

    #[test]
    fn an_unspecified_op_is_invalid_syntax_naming_the_operation() {
        let err = from_proto(vec![
            proto::PatchOperation {
                op: proto::PatchOp::Add.into(),
                path: "nickName".to_owned(),
                value_json: "\"a\"".to_owned(),
            },
            proto::PatchOperation::default(),
        ])
        .expect_err("op 1 has no kind");
        assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax));
        assert!(err.detail.starts_with("operation 1:"), "{}", err.detail);
    }

    #[test]
    fn a_remove_without_a_path_is_no_target() {
        let err = from_proto(vec![proto::PatchOperation {
            op: proto::PatchOp::Remove.into(),
            ..Default::default()
        }])
        .expect_err("no path");
        assert_eq!(err.scim_type, Some(ScimType::NoTarget));
    }

    #[test]
    fn a_value_that_is_not_json_is_invalid_syntax() {
        let err = from_proto(vec![proto::PatchOperation {
            op: proto::PatchOp::Add.into(),
            path: "nickName".to_owned(),
            value_json: "not json".to_owned(),
        }])
        .expect_err("bad value");
        assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax));
    }
}
