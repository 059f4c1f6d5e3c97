//! Attribute definitions (RFC 7643 §2, §4, §7) as static data: the User and
//! Group core schemas, the Enterprise User extension, the attributes every
//! resource shares, and the resource types that tie them together.
//!
//! Validation, filtering and PATCH read these definitions for names (matched
//! case-insensitively), types, multi-valuedness, case-exactness and
//! mutability; the discovery endpoints render them with [`Schema::to_json`]
//! and [`ResourceSchema::to_json`].

use serde_json::{Map, Value, json};

use crate::path::AttrPath;

/// The core User schema URN.
pub const USER_SCHEMA_ID: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The Enterprise User extension URN.
pub const ENTERPRISE_USER_SCHEMA_ID: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The core Group schema URN.
pub const GROUP_SCHEMA_ID: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The schema of a `/Schemas` entry.
pub const SCHEMA_SCHEMA_ID: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// The schema of a `/ResourceTypes` entry.
pub const RESOURCE_TYPE_SCHEMA_ID: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";

/// An attribute's data type (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttributeType {
    /// The spelling used in schema representations.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "string",
            AttributeType::Boolean => "boolean",
            AttributeType::Decimal => "decimal",
            AttributeType::Integer => "integer",
            AttributeType::DateTime => "dateTime",
            AttributeType::Binary => "binary",
            AttributeType::Reference => "reference",
            AttributeType::Complex => "complex",
        }
    }
}

/// Whether and when a client may write an attribute (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// Set by the service provider; client values are ignored or rejected.
    ReadOnly,
    /// Freely writable.
    ReadWrite,
    /// Writable when created, never changed afterwards.
    Immutable,
    /// Writable, never returned (passwords).
    WriteOnly,
}

impl Mutability {
    /// The spelling used in schema representations.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

/// When an attribute appears in responses (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    /// The spelling used in schema representations.
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

/// The scope in which an attribute's value must be unique (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    /// The spelling used in schema representations.
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    /// The name in its schema spelling; clients may use any case.
    pub name: &'static str,
    pub kind: AttributeType,
    pub multi_valued: bool,
    pub description: &'static str,
    /// Whether a resource must have a value (checked for client-writable
    /// attributes only; `id` is required but assigned by the server).
    pub required: bool,
    /// Whether string comparisons respect case; when false, filters and
    /// uniqueness checks compare case-insensitively.
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    /// Suggested values (e.g. `work`, `home`); advisory, not enforced,
    /// since IdPs send their own.
    pub canonical_values: &'static [&'static str],
    /// For references: what they may point to (`User`, `Group`, `external`, `uri`).
    pub reference_types: &'static [&'static str],
    /// For complex attributes: their sub-attributes (never complex themselves).
    pub sub_attributes: &'static [Attribute],
}

impl Attribute {
    /// The sub-attribute called `name`, any case.
    pub fn sub_attribute(&self, name: &str) -> Option<&'static Attribute> {
        find(self.sub_attributes, name)
    }

    /// The RFC 7643 §7 representation of this attribute.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), self.name.into());
        out.insert("type".into(), self.kind.as_str().into());
        out.insert("multiValued".into(), self.multi_valued.into());
        out.insert("description".into(), self.description.into());
        out.insert("required".into(), self.required.into());
        if self.kind == AttributeType::Complex {
            let subs = self.sub_attributes.iter().map(Attribute::to_json).collect();
            out.insert("subAttributes".into(), Value::Array(subs));
        } else {
            out.insert("caseExact".into(), self.case_exact.into());
        }
        if !self.canonical_values.is_empty() {
            out.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        if self.kind == AttributeType::Reference {
            out.insert("referenceTypes".into(), json!(self.reference_types));
        }
        out.insert("mutability".into(), self.mutability.as_str().into());
        out.insert("returned".into(), self.returned.as_str().into());
        out.insert("uniqueness".into(), self.uniqueness.as_str().into());
        Value::Object(out)
    }

    const fn multi(self) -> Self {
        Self {
            multi_valued: true,
            ..self
        }
    }

    const fn required(self) -> Self {
        Self { required: true, ..self }
    }

    const fn exact(self) -> Self {
        Self {
            case_exact: true,
            ..self
        }
    }

    const fn mutability(self, mutability: Mutability) -> Self {
        Self { mutability, ..self }
    }

    const fn returned(self, returned: Returned) -> Self {
        Self { returned, ..self }
    }

    const fn unique(self, uniqueness: Uniqueness) -> Self {
        Self { uniqueness, ..self }
    }

    const fn canonical(self, canonical_values: &'static [&'static str]) -> Self {
        Self {
            canonical_values,
            ..self
        }
    }

    const fn refs(self, reference_types: &'static [&'static str]) -> Self {
        Self {
            reference_types,
            ..self
        }
    }
}

/// A schema: a named set of attribute definitions (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    /// The schema URN.
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// The top-level attributes, in the order documents are written.
    pub attributes: &'static [Attribute],
}

impl Schema {
    /// The top-level attribute called `name`, any case.
    pub fn attribute(&self, name: &str) -> Option<&'static Attribute> {
        find(self.attributes, name)
    }

    /// The RFC 7643 §7 representation served at `/Schemas/{id}` (without
    /// `meta`, which depends on the server's base URL).
    pub fn to_json(&self) -> Value {
        json!({
            "schemas": [SCHEMA_SCHEMA_ID],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(Attribute::to_json).collect::<Vec<_>>(),
        })
    }
}

/// A resource type (RFC 7643 §6): its core schema plus the extension
/// schemas it declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceSchema {
    /// The resource type name, e.g. `User`.
    pub name: &'static str,
    /// The endpoint relative to the SCIM base URL, e.g. `/Users`.
    pub endpoint: &'static str,
    /// The core schema, whose attributes live at the top level.
    pub core: &'static Schema,
    /// Extension schemas, whose attributes live in an object keyed by the
    /// extension's URN.
    pub extensions: &'static [&'static Schema],
}

/// Where an attribute named by a URN (or by none) lives in a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container<'a> {
    /// Top level of the resource: core and common attributes.
    Core,
    /// Inside the object keyed by a declared extension's URN.
    Extension(&'static Schema),
    /// Inside the object keyed by a URN this resource type does not declare.
    Unknown(&'a str),
}

impl ResourceSchema {
    /// The definition of the attribute `path` names: a core attribute, a
    /// common one (`id`, `externalId`, `meta.*`) or, when the path carries
    /// its URN, an extension attribute. Names and URNs match in any case;
    /// unqualified names only match the core schema and the common attributes.
    pub fn resolve(&self, path: &AttrPath) -> Option<&'static Attribute> {
        let top = match self.container(path.urn.as_deref()) {
            Container::Core => self.core_attribute(&path.attr),
            Container::Extension(schema) => schema.attribute(&path.attr),
            Container::Unknown(_) => None,
        }?;
        match &path.sub_attr {
            Some(sub) => top.sub_attribute(sub),
            None => Some(top),
        }
    }

    /// The declared extension schema with this URN, any case.
    pub fn extension(&self, urn: &str) -> Option<&'static Schema> {
        self.extensions.iter().copied().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// The RFC 7643 §6 representation served at `/ResourceTypes/{name}`
    /// (without `meta`). Extensions are never required here.
    pub fn to_json(&self) -> Value {
        let extensions: Vec<Value> = self
            .extensions
            .iter()
            .map(|s| json!({"schema": s.id, "required": false}))
            .collect();
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA_ID],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.core.description,
            "schema": self.core.id,
            "schemaExtensions": extensions,
        })
    }

    /// A core or common attribute by name, any case.
    pub(crate) fn core_attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.core.attribute(name).or_else(|| find(COMMON_ATTRIBUTES, name))
    }

    /// Which part of a resource a URN (or its absence) designates.
    pub(crate) fn container<'a>(&self, urn: Option<&'a str>) -> Container<'a> {
        match urn {
            None => Container::Core,
            Some(urn) if urn.eq_ignore_ascii_case(self.core.id) => Container::Core,
            Some(urn) => self
                .extension(urn)
                .map_or(Container::Unknown(urn), Container::Extension),
        }
    }
}

fn find(attributes: &'static [Attribute], name: &str) -> Option<&'static Attribute> {
    attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// A readWrite, single-valued, non-case-exact attribute returned by
/// default; the builder methods adjust the rest.
pub(crate) const fn attr(name: &'static str, kind: AttributeType, description: &'static str) -> Attribute {
    Attribute {
        name,
        kind,
        multi_valued: false,
        description,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    }
}

const fn string(name: &'static str, description: &'static str) -> Attribute {
    attr(name, AttributeType::String, description)
}

const fn complex(name: &'static str, description: &'static str, sub_attributes: &'static [Attribute]) -> Attribute {
    Attribute {
        sub_attributes,
        ..attr(name, AttributeType::Complex, description)
    }
}

const PRIMARY: Attribute = attr(
    "primary",
    AttributeType::Boolean,
    "A Boolean value indicating the 'primary' or preferred attribute value for this attribute. The primary attribute value 'true' MUST appear no more than once.",
);
const DISPLAY: Attribute = string("display", "A human-readable name, primarily used for display purposes.");

/// Attributes every resource has (RFC 7643 §3.1).
pub static COMMON_ATTRIBUTES: &[Attribute] = &[
    string(
        "id",
        "Unique identifier for the SCIM resource as defined by the service provider.",
    )
    .required()
    .exact()
    .mutability(Mutability::ReadOnly)
    .returned(Returned::Always)
    .unique(Uniqueness::Server),
    string(
        "externalId",
        "A String that is an identifier for the resource as defined by the provisioning client.",
    )
    .exact(),
    complex("meta", "A complex attribute containing resource metadata.", META_SUBS).mutability(Mutability::ReadOnly),
];

const META_SUBS: &[Attribute] = &[
    string("resourceType", "The name of the resource type of the resource.")
        .exact()
        .mutability(Mutability::ReadOnly),
    attr(
        "created",
        AttributeType::DateTime,
        "The DateTime that the resource was added to the service provider.",
    )
    .mutability(Mutability::ReadOnly),
    attr(
        "lastModified",
        AttributeType::DateTime,
        "The most recent DateTime that the details of this resource were updated at the service provider.",
    )
    .mutability(Mutability::ReadOnly),
    attr(
        "location",
        AttributeType::Reference,
        "The URI of the resource being returned.",
    )
    .exact()
    .refs(&["uri"])
    .mutability(Mutability::ReadOnly),
    string("version", "The version of the resource being returned.")
        .exact()
        .mutability(Mutability::ReadOnly),
];

const NAME_SUBS: &[Attribute] = &[
    string(
        "formatted",
        "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display.",
    ),
    string(
        "familyName",
        "The family name of the User, or last name in most Western languages.",
    ),
    string(
        "givenName",
        "The given name of the User, or first name in most Western languages.",
    ),
    string("middleName", "The middle name(s) of the User."),
    string(
        "honorificPrefix",
        "The honorific prefix(es) of the User, or title in most Western languages.",
    ),
    string(
        "honorificSuffix",
        "The honorific suffix(es) of the User, or suffix in most Western languages.",
    ),
];

const EMAIL_SUBS: &[Attribute] = &[
    string("value", "Email addresses for the user."),
    DISPLAY,
    string(
        "type",
        "A label indicating the attribute's function, e.g., 'work' or 'home'.",
    )
    .canonical(&["work", "home", "other"]),
    PRIMARY,
];

const PHONE_SUBS: &[Attribute] = &[
    string("value", "Phone number of the User."),
    DISPLAY,
    string(
        "type",
        "A label indicating the attribute's function, e.g., 'work', 'home', 'mobile'.",
    )
    .canonical(&["work", "home", "mobile", "fax", "pager", "other"]),
    PRIMARY,
];

const IM_SUBS: &[Attribute] = &[
    string("value", "Instant messaging address for the User."),
    DISPLAY,
    string(
        "type",
        "A label indicating the attribute's function, e.g., 'aim', 'gtalk', 'xmpp'.",
    )
    .canonical(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
    PRIMARY,
];

const PHOTO_SUBS: &[Attribute] = &[
    attr("value", AttributeType::Reference, "URL of a photo of the User.").refs(&["external"]),
    DISPLAY,
    string(
        "type",
        "A label indicating the attribute's function, i.e., 'photo' or 'thumbnail'.",
    )
    .canonical(&["photo", "thumbnail"]),
    PRIMARY,
];

const ADDRESS_SUBS: &[Attribute] = &[
    string(
        "formatted",
        "The full mailing address, formatted for display or use with a mailing label.",
    ),
    string(
        "streetAddress",
        "The full street address component, which may include house number, street name, P.O. box, and multi-line extended street address information.",
    ),
    string("locality", "The city or locality component."),
    string("region", "The state or region component."),
    string("postalCode", "The zip code or postal code component."),
    string("country", "The country name component."),
    string(
        "type",
        "A label indicating the attribute's function, e.g., 'work' or 'home'.",
    )
    .canonical(&["work", "home", "other"]),
    PRIMARY,
];

const USER_GROUP_SUBS: &[Attribute] = &[
    string("value", "The identifier of the User's group.").mutability(Mutability::ReadOnly),
    attr(
        "$ref",
        AttributeType::Reference,
        "The URI of the corresponding 'Group' resource to which the user belongs.",
    )
    .refs(&["User", "Group"])
    .mutability(Mutability::ReadOnly),
    DISPLAY.mutability(Mutability::ReadOnly),
    string(
        "type",
        "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.",
    )
    .canonical(&["direct", "indirect"])
    .mutability(Mutability::ReadOnly),
];

const ENTITLEMENT_SUBS: &[Attribute] = &[
    string("value", "The value of an entitlement."),
    DISPLAY,
    string("type", "A label indicating the attribute's function."),
    PRIMARY,
];

const ROLE_SUBS: &[Attribute] = &[
    string("value", "The value of a role."),
    DISPLAY,
    string("type", "A label indicating the attribute's function."),
    PRIMARY,
];

const CERTIFICATE_SUBS: &[Attribute] = &[
    attr("value", AttributeType::Binary, "The value of an X.509 certificate."),
    DISPLAY,
    string("type", "A label indicating the attribute's function."),
    PRIMARY,
];

const USER_ATTRIBUTES: &[Attribute] = &[
    string("userName", "Unique identifier for the User, typically used by the user to directly authenticate to the service provider.")
        .required()
        .unique(Uniqueness::Server),
    complex("name", "The components of the user's real name.", NAME_SUBS),
    string("displayName", "The name of the User, suitable for display to end-users."),
    string("nickName", "The casual way to address the user in real life."),
    attr("profileUrl", AttributeType::Reference, "A fully qualified URL pointing to a page representing the User's online profile.")
        .refs(&["external"]),
    string("title", "The user's title, such as \"Vice President.\""),
    string("userType", "Used to identify the relationship between the organization and the user."),
    string("preferredLanguage", "Indicates the User's preferred written or spoken language."),
    string("locale", "Used to indicate the User's default location for purposes of localizing items such as currency, date time format, or numerical representations."),
    string("timezone", "The User's time zone in the 'Olson' time zone database format, e.g., 'America/Los_Angeles'."),
    attr("active", AttributeType::Boolean, "A Boolean value indicating the User's administrative status."),
    string("password", "The User's cleartext password, used to set or compare a password; never returned.")
        .mutability(Mutability::WriteOnly)
        .returned(Returned::Never),
    complex("emails", "Email addresses for the user.", EMAIL_SUBS).multi(),
    complex("phoneNumbers", "Phone numbers for the User.", PHONE_SUBS).multi(),
    complex("ims", "Instant messaging addresses for the User.", IM_SUBS).multi(),
    complex("photos", "URLs of photos of the User.", PHOTO_SUBS).multi(),
    complex("addresses", "A physical mailing address for this User.", ADDRESS_SUBS).multi(),
    complex("groups", "A list of groups to which the user belongs, either through direct membership, through nested groups, or dynamically calculated.", USER_GROUP_SUBS)
        .multi()
        .mutability(Mutability::ReadOnly),
    complex("entitlements", "A list of entitlements for the User that represent a thing the User has.", ENTITLEMENT_SUBS).multi(),
    complex("roles", "A list of roles for the User that collectively represent who the User is.", ROLE_SUBS).multi(),
    complex("x509Certificates", "A list of certificates issued to the User.", CERTIFICATE_SUBS).multi(),
];

const MANAGER_SUBS: &[Attribute] = &[
    string("value", "The id of the SCIM resource representing the User's manager."),
    attr(
        "$ref",
        AttributeType::Reference,
        "The URI of the SCIM resource representing the User's manager.",
    )
    .refs(&["User"]),
    string("displayName", "The displayName of the User's manager.").mutability(Mutability::ReadOnly),
];

const ENTERPRISE_USER_ATTRIBUTES: &[Attribute] = &[
    string(
        "employeeNumber",
        "Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization.",
    ),
    string("costCenter", "Identifies the name of a cost center."),
    string("organization", "Identifies the name of an organization."),
    string("division", "Identifies the name of a division."),
    string("department", "Identifies the name of a department."),
    complex("manager", "The User's manager.", MANAGER_SUBS),
];

const MEMBER_SUBS: &[Attribute] = &[
    string("value", "Identifier of the member of this Group.").mutability(Mutability::Immutable),
    attr(
        "$ref",
        AttributeType::Reference,
        "The URI corresponding to a SCIM resource that is a member of this Group.",
    )
    .refs(&["User", "Group"])
    .mutability(Mutability::Immutable),
    string(
        "type",
        "A label indicating the type of resource, e.g., 'User' or 'Group'.",
    )
    .canonical(&["User", "Group"])
    .mutability(Mutability::Immutable),
    DISPLAY.mutability(Mutability::ReadOnly),
];

const GROUP_ATTRIBUTES: &[Attribute] = &[
    string("displayName", "A human-readable name for the Group.").required(),
    complex("members", "A list of members of the Group.", MEMBER_SUBS).multi(),
];

/// The core User schema (RFC 7643 §4.1).
pub static USER: Schema = Schema {
    id: USER_SCHEMA_ID,
    name: "User",
    description: "User Account",
    attributes: USER_ATTRIBUTES,
};

/// The Enterprise User extension (RFC 7643 §4.3).
pub static ENTERPRISE_USER: Schema = Schema {
    id: ENTERPRISE_USER_SCHEMA_ID,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: ENTERPRISE_USER_ATTRIBUTES,
};

/// The core Group schema (RFC 7643 §4.2).
pub static GROUP: Schema = Schema {
    id: GROUP_SCHEMA_ID,
    name: "Group",
    description: "Group",
    attributes: GROUP_ATTRIBUTES,
};

/// The User resource type: core User plus the Enterprise User extension.
pub static USER_RESOURCE: ResourceSchema = ResourceSchema {
    name: "User",
    endpoint: "/Users",
    core: &USER,
    extensions: &[&ENTERPRISE_USER],
};

/// The Group resource type, without extensions.
pub static GROUP_RESOURCE: ResourceSchema = ResourceSchema {
    name: "Group",
    endpoint: "/Groups",
    core: &GROUP,
    extensions: &[],
};

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(path: &str) -> Option<&'static Attribute> {
        USER_RESOURCE.resolve(&AttrPath::parse(path).ok()?)
    }

    #[test]
    fn user_name_is_required_unique_and_not_case_exact() {
        let a = USER.attribute("username").expect("userName");
        assert_eq!(a.name, "userName");
        assert!(a.required && !a.case_exact);
        assert_eq!(a.uniqueness, Uniqueness::Server);
    }

    #[test]
    fn email_value_is_not_case_exact() {
        let value = resolve("emails.value").expect("emails.value");
        assert!(!value.case_exact);
        assert_eq!(value.kind, AttributeType::String);
    }

    #[test]
    fn password_is_write_only_and_never_returned() {
        let a = USER.attribute("password").expect("password");
        assert_eq!((a.mutability, a.returned), (Mutability::WriteOnly, Returned::Never));
    }

    #[test]
    fn groups_and_manager_display_name_are_read_only() {
        assert_eq!(resolve("groups").map(|a| a.mutability), Some(Mutability::ReadOnly));
        let p = format!("{ENTERPRISE_USER_SCHEMA_ID}:manager.displayName");
        assert_eq!(resolve(&p).map(|a| a.mutability), Some(Mutability::ReadOnly));
    }

    #[test]
    fn addresses_have_postal_sub_attributes() {
        let addresses = USER.attribute("addresses").expect("addresses");
        for sub in [
            "formatted",
            "streetAddress",
            "locality",
            "region",
            "postalCode",
            "country",
            "type",
            "primary",
        ] {
            assert!(addresses.sub_attribute(sub).is_some(), "{sub}");
        }
        assert!(addresses.multi_valued);
    }

    #[test]
    fn resolve_finds_core_attributes_in_any_case_with_or_without_urn() {
        assert_eq!(resolve("USERNAME").map(|a| a.name), Some("userName"));
        let qualified = format!("{}:name.GIVENNAME", USER_SCHEMA_ID.to_uppercase());
        assert_eq!(resolve(&qualified).map(|a| a.name), Some("givenName"));
    }

    #[test]
    fn resolve_finds_common_attributes() {
        let id = resolve("id").expect("id");
        assert!(id.case_exact);
        assert_eq!((id.mutability, id.returned), (Mutability::ReadOnly, Returned::Always));
        assert!(resolve("externalId").is_some_and(|a| a.case_exact && a.mutability == Mutability::ReadWrite));
        assert_eq!(
            resolve("meta.lastModified").map(|a| a.kind),
            Some(AttributeType::DateTime)
        );
    }

    #[test]
    fn resolve_finds_extension_attributes_only_with_their_urn() {
        let p = format!("{ENTERPRISE_USER_SCHEMA_ID}:department");
        assert_eq!(resolve(&p).map(|a| a.name), Some("department"));
        assert_eq!(
            resolve(&format!("{ENTERPRISE_USER_SCHEMA_ID}:manager.value")).map(|a| a.name),
            Some("value")
        );
        assert_eq!(resolve("department"), None);
    }

    #[test]
    fn resolve_rejects_unknown_names_and_urns() {
        assert_eq!(resolve("shoeSize"), None);
        assert_eq!(resolve("name.nickname"), None);
        assert_eq!(resolve("urn:example:ext:1.0:User:department"), None);
    }

    #[test]
    fn extension_lookup_ignores_case() {
        let upper = ENTERPRISE_USER_SCHEMA_ID.to_uppercase();
        assert_eq!(
            USER_RESOURCE.extension(&upper).map(|s| s.id),
            Some(ENTERPRISE_USER_SCHEMA_ID)
        );
        assert_eq!(USER_RESOURCE.extension(USER_SCHEMA_ID), None);
    }

    #[test]
    fn every_attribute_name_is_unique_within_its_parent() {
        fn check(attrs: &[Attribute]) {
            for (i, a) in attrs.iter().enumerate() {
                assert!(
                    attrs[i + 1..].iter().all(|b| !b.name.eq_ignore_ascii_case(a.name)),
                    "{} is defined twice",
                    a.name
                );
                assert_eq!(
                    a.kind == AttributeType::Complex,
                    !a.sub_attributes.is_empty(),
                    "{}",
                    a.name
                );
                check(a.sub_attributes);
            }
        }
        for schema in [&USER, &ENTERPRISE_USER, &GROUP] {
            check(schema.attributes);
        }
        check(COMMON_ATTRIBUTES);
    }

    #[test]
    fn schema_representation_follows_rfc_7643_section_7() {
        let json = USER.to_json();
        assert_eq!(json["id"], USER_SCHEMA_ID);
        assert_eq!(json["schemas"][0], SCHEMA_SCHEMA_ID);
        let user_name = &json["attributes"][0];
        assert_eq!(user_name["name"], "userName");
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["caseExact"], false);
        let emails = json["attributes"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["name"] == "emails"))
            .expect("emails");
        assert_eq!(emails["multiValued"], true);
        assert_eq!(emails["subAttributes"][2]["canonicalValues"][0], "work");
    }

    #[test]
    fn resource_type_representation_lists_the_enterprise_extension() {
        let json = USER_RESOURCE.to_json();
        assert_eq!(json["endpoint"], "/Users");
        assert_eq!(json["schema"], USER_SCHEMA_ID);
        assert_eq!(json["schemaExtensions"][0]["schema"], ENTERPRISE_USER_SCHEMA_ID);
        assert_eq!(GROUP_RESOURCE.to_json()["schemaExtensions"], json!([]));
    }

    #[test]
    fn group_members_are_immutable_references() {
        let value = GROUP_RESOURCE
            .resolve(&AttrPath::parse("members.value").expect("path"))
            .expect("members.value");
        assert_eq!(value.mutability, Mutability::Immutable);
        assert!(GROUP.attribute("displayName").is_some_and(|a| a.required));
    }
}
