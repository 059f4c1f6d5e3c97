//! Resource bookkeeping (version and timestamps) ↔ `idmesh.v1.ResourceMeta`.

use idmesh_proto::v1 as proto;
use scim::ScimError;
use time::OffsetDateTime;

use crate::timestamp;

/// What every stored resource carries besides its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Increases on every write; the ETag is `W/"<version>"`.
    pub version: i64,
    pub created: OffsetDateTime,
    pub last_modified: OffsetDateTime,
}

impl Meta {
    pub fn to_proto(&self) -> proto::ResourceMeta {
        proto::ResourceMeta {
            version: self.version,
            created: Some(timestamp::to_proto(self.created)),
            last_modified: Some(timestamp::to_proto(self.last_modified)),
        }
    }

    /// The meta a service answered with. Services always set it, so a
    /// missing or unreadable one is a fault of ours: an opaque 500.
    pub fn from_service(meta: Option<proto::ResourceMeta>) -> Result<Meta, ScimError> {
        let meta = meta.ok_or_else(ScimError::internal)?;
        let instant = |ts: Option<prost_types::Timestamp>| {
            ts.as_ref()
                .and_then(timestamp::from_proto)
                .ok_or_else(ScimError::internal)
        };
        Ok(Meta {
            version: meta.version,
            created: instant(meta.created)?,
            last_modified: instant(meta.last_modified)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_survives_the_trip() {
        let meta = Meta {
            version: 7,
            created: time::macros::datetime!(2026-01-02 03:04:05.123456 UTC),
            last_modified: time::macros::datetime!(2026-02-03 04:05:06 UTC),
        };
        assert_eq!(Meta::from_service(Some(meta.to_proto())), Ok(meta));
    }

    #[test]
    fn a_missing_timestamp_is_internal() {
        let meta = proto::ResourceMeta {
            version: 1,
            created: None,
            last_modified: None,
        };
        assert_eq!(Meta::from_service(Some(meta)), Err(ScimError::internal()));
    }
}
