//! Attribute paths (RFC 7644 §3.10): `userName`, `name.givenName`, and the
//! URN-qualified forms such as
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
//!
//! A path here is syntax only; which attribute it names is the schema's
//! business ([`crate::schema::ResourceSchema::resolve`]).

use std::fmt;

use crate::error::ScimError;

/// A parsed attribute path: an optional schema URN, an attribute name and an
/// optional sub-attribute name, all as written by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN the attribute belongs to, when the path is qualified.
    pub urn: Option<String>,
    /// The attribute name.
    pub attr: String,
    /// The sub-attribute name, for complex attributes.
    pub sub_attr: Option<String>,
}

impl AttrPath {
    /// Parses `attr`, `attr.sub`, `urn:...:attr` or `urn:...:attr.sub`.
    ///
    /// A URN-qualified path splits at its last colon, so a bare schema URN
    /// parses as an attribute named after its last segment; callers that
    /// accept a whole extension as a target check for it before parsing.
    pub fn parse(s: &str) -> Result<AttrPath, ScimError> {
        if s.is_empty() {
            return Err(ScimError::invalid_path("empty attribute path"));
        }
        let (urn, names) = if is_urn(s) {
            let Some(colon) = s.rfind(':').filter(|&i| i > "urn:".len()) else {
                return Err(ScimError::invalid_path(format!(
                    "{s:?} is a URN without an attribute name"
                )));
            };
            let urn = &s[..colon];
            if urn.chars().any(|c| c.is_whitespace() || "[]()\"".contains(c)) {
                return Err(ScimError::invalid_path(format!(
                    "{s:?} does not start with a valid URN"
                )));
            }
            (Some(urn.to_owned()), &s[colon + 1..])
        } else {
            (None, s)
        };
        let (attr, sub_attr) = match names.split_once('.') {
            Some((attr, sub)) => (attr, Some(sub)),
            None => (names, None),
        };
        if !is_attr_name(attr) || !sub_attr.is_none_or(is_attr_name) {
            return Err(ScimError::invalid_path(format!("{s:?} is not a valid attribute path")));
        }
        Ok(AttrPath {
            urn,
            attr: attr.to_owned(),
            sub_attr: sub_attr.map(str::to_owned),
        })
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// Whether `s` is an RFC 7643 ATTRNAME (`ALPHA *(ALPHA / DIGIT / "-" / "_")`),
/// also allowing the leading `$` of `$ref`.
pub(crate) fn is_attr_name(s: &str) -> bool {
    let name = s.strip_prefix('$').unwrap_or(s);
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether `s` starts like a URN (`urn:`, any case).
pub(crate) fn is_urn(s: &str) -> bool {
    s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

    fn path(urn: Option<&str>, attr: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            urn: urn.map(str::to_owned),
            attr: attr.to_owned(),
            sub_attr: sub.map(str::to_owned),
        }
    }

    #[test]
    fn plain_attribute_parses() {
        assert_eq!(AttrPath::parse("userName"), Ok(path(None, "userName", None)));
    }

    #[test]
    fn sub_attribute_parses() {
        assert_eq!(
            AttrPath::parse("name.givenName"),
            Ok(path(None, "name", Some("givenName")))
        );
    }

    #[test]
    fn enterprise_attribute_keeps_its_urn() {
        let p = AttrPath::parse(&format!("{ENTERPRISE}:department"));
        assert_eq!(p, Ok(path(Some(ENTERPRISE), "department", None)));
    }

    #[test]
    fn enterprise_sub_attribute_splits_after_the_last_colon() {
        let p = AttrPath::parse(&format!("{ENTERPRISE}:manager.value"));
        assert_eq!(p, Ok(path(Some(ENTERPRISE), "manager", Some("value"))));
    }

    #[test]
    fn core_urn_prefix_is_kept_as_given() {
        let p = AttrPath::parse(&format!("{CORE}:userName"));
        assert_eq!(p, Ok(path(Some(CORE), "userName", None)));
        let upper = AttrPath::parse("URN:ietf:params:scim:schemas:core:2.0:User:userName");
        assert_eq!(
            upper.map(|p| p.urn),
            Ok(Some("URN:ietf:params:scim:schemas:core:2.0:User".to_owned()))
        );
    }

    #[test]
    fn dollar_ref_is_an_attribute_name() {
        assert_eq!(AttrPath::parse("manager.$ref"), Ok(path(None, "manager", Some("$ref"))));
    }

    #[test]
    fn malformed_paths_are_invalid_path() {
        for bad in [
            "",
            "1abc",
            "name.",
            ".name",
            "a.b.c",
            "user name",
            "emails[type eq \"work\"]",
            "urn:",
            "urn:x",
            "urn:a b:c",
            "urn:a:",
            "na$me",
            "$",
        ] {
            let err = AttrPath::parse(bad).expect_err(bad);
            assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{bad}");
            assert_eq!(err.status, 400);
        }
    }

    #[test]
    fn display_writes_the_path_back() {
        for s in [
            "userName",
            "name.givenName",
            &format!("{ENTERPRISE}:manager.value"),
            "manager.$ref",
        ] {
            let parsed = AttrPath::parse(s).expect(s);
            assert_eq!(parsed.to_string(), s);
        }
    }
}
