//! Discovery (RFC 7644 §4): what `/ServiceProviderConfig`, `/Schemas` and
//! `/ResourceTypes` serve, rendered from the same static definitions in
//! [`crate::schema`] that validation, filtering and PATCH read, so what a
//! client discovers is what the server enforces.
//!
//! `/Schemas` lists the schemas of the resource types a server offers and
//! the three service provider schemas of RFC 7643 §8.7.2 (ServiceProviderConfig,
//! ResourceType, Schema), which describe the discovery resources themselves.

use serde_json::{Map, Value, json};

use crate::error::ScimError;
use crate::list;
use crate::schema::{
    Attribute, AttributeType, Mutability, RESOURCE_TYPE_SCHEMA_ID, ResourceSchema, SCHEMA_SCHEMA_ID, Schema, attr,
};

/// The ServiceProviderConfig schema URN (RFC 7643 §5).
pub const SERVICE_PROVIDER_CONFIG_SCHEMA_ID: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

/// The bearer token specification (RFC 6750), the `specUri` of `oauthbearertoken`.
pub const BEARER_TOKEN_SPEC_URI: &str = "https://www.rfc-editor.org/info/rfc6750";

/// One way clients may authenticate (RFC 7643 §5, `authenticationSchemes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticationScheme {
    /// The scheme type: `oauth`, `oauth2`, `oauthbearertoken`, `httpbasic` or `httpdigest`.
    pub kind: &'static str,
    /// The scheme's common name.
    pub name: &'static str,
    /// What the scheme is and how to obtain credentials.
    pub description: &'static str,
    /// Where the scheme is specified.
    pub spec_uri: Option<&'static str>,
    /// Whether this is the scheme clients should prefer.
    pub primary: bool,
}

impl AuthenticationScheme {
    fn to_json(self) -> Value {
        let mut out = Map::new();
        out.insert("type".into(), self.kind.into());
        out.insert("name".into(), self.name.into());
        out.insert("description".into(), self.description.into());
        if let Some(uri) = self.spec_uri {
            out.insert("specUri".into(), uri.into());
        }
        out.insert("primary".into(), self.primary.into());
        Value::Object(out)
    }
}

/// Limits of the bulk endpoint (RFC 7644 §3.7), for a server that has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkLimits {
    /// The most operations one bulk request may carry.
    pub max_operations: u32,
    /// The largest bulk request body, in bytes.
    pub max_payload_size: u64,
}

/// How a server pages lists (RFC 9865 §3): by `startIndex` (RFC 7644
/// §3.4.2.4), by `cursor`, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    pub cursor: bool,
    pub index: bool,
    /// What a list request that names neither gets: `"index"` or `"cursor"`.
    pub default_method: &'static str,
    pub default_page_size: u32,
    pub max_page_size: u32,
}

/// The SCIM features a server implements (RFC 7643 §5). Every flag must be
/// true to what the server does: IdPs decide from it whether to PATCH or
/// PUT, whether to send `If-Match`, and how many results to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// PATCH (RFC 7644 §3.5.2).
    pub patch: bool,
    /// The bulk endpoint and its limits; `None` when there is none.
    pub bulk: Option<BulkLimits>,
    /// Filtering, with the most results one response holds; `None` when
    /// filters are not supported.
    pub filter_max_results: Option<u32>,
    /// Whether a client may change a password (by PUT or PATCH).
    pub change_password: bool,
    /// `sortBy` and `sortOrder`.
    pub sort: bool,
    /// ETags, `If-Match` and `If-None-Match` (RFC 7644 §3.14).
    pub etag: bool,
    /// Paging methods (RFC 9865); `None` leaves `pagination` out, which
    /// means index paging only.
    pub pagination: Option<Pagination>,
    /// How clients authenticate, the preferred scheme marked primary.
    pub authentication_schemes: &'static [AuthenticationScheme],
}

/// Everything a server tells clients about itself: its features and the
/// resource types it serves. Offering a new resource type is adding it to
/// `resource_types`; its schemas follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceProvider {
    pub features: Features,
    /// The resource types served, in the order `/ResourceTypes` lists them.
    pub resource_types: &'static [&'static ResourceSchema],
}

impl ServiceProvider {
    /// The `/ServiceProviderConfig` resource of the server whose SCIM base
    /// URL is `base_url` (no trailing slash).
    pub fn service_provider_config(&self, base_url: &str) -> Value {
        let f = &self.features;
        let bulk = f.bulk.map_or_else(
            || json!({"supported": false, "maxOperations": 0, "maxPayloadSize": 0}),
            |limits| {
                json!({
                    "supported": true,
                    "maxOperations": limits.max_operations,
                    "maxPayloadSize": limits.max_payload_size,
                })
            },
        );
        let schemes: Vec<Value> = f.authentication_schemes.iter().map(|scheme| scheme.to_json()).collect();
        let mut config = json!({
            "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA_ID],
            "patch": {"supported": f.patch},
            "bulk": bulk,
            "filter": {
                "supported": f.filter_max_results.is_some(),
                "maxResults": f.filter_max_results.unwrap_or(0),
            },
            "changePassword": {"supported": f.change_password},
            "sort": {"supported": f.sort},
            "etag": {"supported": f.etag},
            "authenticationSchemes": schemes,
            "meta": meta("ServiceProviderConfig", format!("{base_url}/ServiceProviderConfig")),
        });
        if let Some(pagination) = f.pagination {
            // RFC 9865 §3: no `cursorTimeout`, since these cursors name a
            // position by id and never expire.
            config["pagination"] = json!({
                "cursor": pagination.cursor,
                "index": pagination.index,
                "defaultPaginationMethod": pagination.default_method,
                "defaultPageSize": pagination.default_page_size,
                "maxPageSize": pagination.max_page_size,
            });
        }
        config
    }

    /// Every schema a client may meet: those of the resource types served
    /// (core first, then extensions, each once) and the service provider
    /// schemas.
    pub fn schemas(&self) -> Vec<&'static Schema> {
        let mut schemas: Vec<&'static Schema> = Vec::new();
        let resource_schemas = self
            .resource_types
            .iter()
            .flat_map(|rt| std::iter::once(rt.core).chain(rt.extensions.iter().copied()));
        for schema in resource_schemas.chain(SERVICE_PROVIDER_SCHEMAS.iter().copied()) {
            if !schemas.iter().any(|known| known.id == schema.id) {
                schemas.push(schema);
            }
        }
        schemas
    }

    /// The `/Schemas` ListResponse.
    pub fn schemas_list(&self, base_url: &str) -> Value {
        let resources: Vec<Value> = self
            .schemas()
            .into_iter()
            .map(|schema| schema_resource(schema, base_url))
            .collect();
        full_list(resources)
    }

    /// `/Schemas/{id}`; the URN matches in any case, as URNs do (RFC 8141).
    pub fn schema(&self, id: &str, base_url: &str) -> Result<Value, ScimError> {
        self.schemas()
            .into_iter()
            .find(|schema| schema.id.eq_ignore_ascii_case(id))
            .map(|schema| schema_resource(schema, base_url))
            .ok_or_else(|| ScimError::not_found(format!("no schema {id}")))
    }

    /// The `/ResourceTypes` ListResponse.
    pub fn resource_types_list(&self, base_url: &str) -> Value {
        let resources: Vec<Value> = self
            .resource_types
            .iter()
            .map(|rt| resource_type_resource(rt, base_url))
            .collect();
        full_list(resources)
    }

    /// `/ResourceTypes/{id}`; the id (the type's name) matches in any case.
    pub fn resource_type(&self, id: &str, base_url: &str) -> Result<Value, ScimError> {
        self.resource_types
            .iter()
            .find(|rt| rt.name.eq_ignore_ascii_case(id))
            .map(|rt| resource_type_resource(rt, base_url))
            .ok_or_else(|| ScimError::not_found(format!("no resource type {id}")))
    }
}

/// Discovery lists are small and never paged: every entry, from index 1.
fn full_list(resources: Vec<Value>) -> Value {
    let total = u64::try_from(resources.len()).unwrap_or(u64::MAX);
    list::list_response(resources, total, 1)
}

fn meta(resource_type: &str, location: String) -> Value {
    json!({"resourceType": resource_type, "location": location})
}

fn with_meta(mut resource: Value, meta: Value) -> Value {
    if let Value::Object(object) = &mut resource {
        object.insert("meta".to_owned(), meta);
    }
    resource
}

fn schema_resource(schema: &Schema, base_url: &str) -> Value {
    let location = format!("{base_url}/Schemas/{}", schema.id);
    with_meta(schema.to_json(), meta("Schema", location))
}

fn resource_type_resource(rt: &ResourceSchema, base_url: &str) -> Value {
    let location = format!("{base_url}/ResourceTypes/{}", rt.name);
    with_meta(rt.to_json(), meta("ResourceType", location))
}

/// The service provider schemas of RFC 7643 §8.7.2, which describe the
/// discovery resources.
pub static SERVICE_PROVIDER_SCHEMAS: [&Schema; 3] = [&SERVICE_PROVIDER_CONFIG, &RESOURCE_TYPE, &SCHEMA];

/// The ServiceProviderConfig schema (RFC 7643 §5).
pub static SERVICE_PROVIDER_CONFIG: Schema = Schema {
    id: SERVICE_PROVIDER_CONFIG_SCHEMA_ID,
    name: "Service Provider Configuration",
    description: "Schema for representing the service provider's configuration",
    attributes: SERVICE_PROVIDER_CONFIG_ATTRIBUTES,
};

/// The ResourceType schema (RFC 7643 §6).
pub static RESOURCE_TYPE: Schema = Schema {
    id: RESOURCE_TYPE_SCHEMA_ID,
    name: "ResourceType",
    description: "Specifies the schema that describes a SCIM resource type",
    attributes: RESOURCE_TYPE_ATTRIBUTES,
};

/// The Schema schema (RFC 7643 §7).
pub static SCHEMA: Schema = Schema {
    id: SCHEMA_SCHEMA_ID,
    name: "Schema",
    description: "Specifies the schema attribute structure",
    attributes: SCHEMA_ATTRIBUTES,
};

// Every attribute of a service provider schema is readOnly: clients discover
// these resources, they never write them.

const fn read_only(name: &'static str, kind: AttributeType, description: &'static str) -> Attribute {
    Attribute {
        mutability: Mutability::ReadOnly,
        ..attr(name, kind, description)
    }
}

const fn required(attribute: Attribute) -> Attribute {
    Attribute {
        required: true,
        ..attribute
    }
}

const fn case_exact(attribute: Attribute) -> Attribute {
    Attribute {
        case_exact: true,
        ..attribute
    }
}

const fn multi(attribute: Attribute) -> Attribute {
    Attribute {
        multi_valued: true,
        ..attribute
    }
}

const fn complex(name: &'static str, description: &'static str, sub_attributes: &'static [Attribute]) -> Attribute {
    Attribute {
        sub_attributes,
        ..read_only(name, AttributeType::Complex, description)
    }
}

const fn reference(
    name: &'static str,
    reference_types: &'static [&'static str],
    description: &'static str,
) -> Attribute {
    Attribute {
        reference_types,
        ..read_only(name, AttributeType::Reference, description)
    }
}

const fn canonical(attribute: Attribute, canonical_values: &'static [&'static str]) -> Attribute {
    Attribute {
        canonical_values,
        ..attribute
    }
}

const SUPPORTED: Attribute = required(read_only(
    "supported",
    AttributeType::Boolean,
    "A Boolean value specifying whether or not the operation is supported.",
));

const ONLY_SUPPORTED: &[Attribute] = &[SUPPORTED];

const BULK_SUBS: &[Attribute] = &[
    SUPPORTED,
    required(read_only(
        "maxOperations",
        AttributeType::Integer,
        "An integer value specifying the maximum number of operations.",
    )),
    required(read_only(
        "maxPayloadSize",
        AttributeType::Integer,
        "An integer value specifying the maximum payload size in bytes.",
    )),
];

const FILTER_SUBS: &[Attribute] = &[
    SUPPORTED,
    required(read_only(
        "maxResults",
        AttributeType::Integer,
        "An integer value specifying the maximum number of resources returned in a response.",
    )),
];

const PAGINATION_SUBS: &[Attribute] = &[
    read_only(
        "cursor",
        AttributeType::Boolean,
        "A Boolean value specifying support of cursor-based pagination.",
    ),
    read_only(
        "index",
        AttributeType::Boolean,
        "A Boolean value specifying support of index-based pagination.",
    ),
    canonical(
        read_only(
            "defaultPaginationMethod",
            AttributeType::String,
            "The pagination method used when a list request names none.",
        ),
        &["cursor", "index"],
    ),
    read_only(
        "defaultPageSize",
        AttributeType::Integer,
        "The number of results per page when a request names no count.",
    ),
    read_only(
        "maxPageSize",
        AttributeType::Integer,
        "The largest number of results one page holds.",
    ),
    read_only(
        "cursorTimeout",
        AttributeType::Integer,
        "How many seconds a cursor stays valid; absent when cursors do not expire.",
    ),
];

const AUTHENTICATION_SCHEME_SUBS: &[Attribute] = &[
    required(canonical(
        read_only(
            "type",
            AttributeType::String,
            "The authentication scheme, e.g., 'oauthbearertoken' or 'httpbasic'.",
        ),
        &["oauth", "oauth2", "oauthbearertoken", "httpbasic", "httpdigest"],
    )),
    required(read_only(
        "name",
        AttributeType::String,
        "The common authentication scheme name, e.g., HTTP Basic.",
    )),
    required(read_only(
        "description",
        AttributeType::String,
        "A description of the authentication scheme.",
    )),
    reference(
        "specUri",
        &["external"],
        "An HTTP-addressable URL pointing to the authentication scheme's specification.",
    ),
    reference(
        "documentationUri",
        &["external"],
        "An HTTP-addressable URL pointing to the authentication scheme's usage documentation.",
    ),
    read_only(
        "primary",
        AttributeType::Boolean,
        "A Boolean value indicating the preferred authentication scheme.",
    ),
];

const SERVICE_PROVIDER_CONFIG_ATTRIBUTES: &[Attribute] = &[
    reference(
        "documentationUri",
        &["external"],
        "An HTTP-addressable URL pointing to the service provider's human-consumable help documentation.",
    ),
    required(complex(
        "patch",
        "A complex type that specifies PATCH configuration options.",
        ONLY_SUPPORTED,
    )),
    required(complex(
        "bulk",
        "A complex type that specifies bulk configuration options.",
        BULK_SUBS,
    )),
    required(complex(
        "filter",
        "A complex type that specifies FILTER options.",
        FILTER_SUBS,
    )),
    required(complex(
        "changePassword",
        "A complex type that specifies configuration options related to changing a password.",
        ONLY_SUPPORTED,
    )),
    required(complex(
        "sort",
        "A complex type that specifies sort result options.",
        ONLY_SUPPORTED,
    )),
    required(complex(
        "etag",
        "A complex type that specifies ETag configuration options.",
        ONLY_SUPPORTED,
    )),
    complex(
        "pagination",
        "A complex type that specifies pagination options (RFC 9865).",
        PAGINATION_SUBS,
    ),
    required(multi(complex(
        "authenticationSchemes",
        "A complex type that specifies supported authentication scheme properties.",
        AUTHENTICATION_SCHEME_SUBS,
    ))),
];

const SCHEMA_EXTENSION_SUBS: &[Attribute] = &[
    required(case_exact(reference(
        "schema",
        &["uri"],
        "The URI of a schema extension.",
    ))),
    required(read_only(
        "required",
        AttributeType::Boolean,
        "A Boolean value that specifies whether or not the schema extension is required for the resource type. If true, a resource of this type MUST include this schema extension and also include any attributes declared as required in this schema extension. If false, a resource of this type MAY omit this schema extension.",
    )),
];

const RESOURCE_TYPE_ATTRIBUTES: &[Attribute] = &[
    read_only(
        "id",
        AttributeType::String,
        "The resource type's server unique id. May be the same as the 'name' attribute.",
    ),
    required(read_only(
        "name",
        AttributeType::String,
        "The resource type name. When applicable, service providers MUST specify the name, e.g., 'User'.",
    )),
    read_only(
        "description",
        AttributeType::String,
        "The resource type's human-readable description. When applicable, service providers MUST specify the description.",
    ),
    required(reference(
        "endpoint",
        &["uri"],
        "The resource type's HTTP-addressable endpoint relative to the Base URL, e.g., '/Users'.",
    )),
    required(case_exact(reference(
        "schema",
        &["uri"],
        "The resource type's primary/base schema URI.",
    ))),
    multi(complex(
        "schemaExtensions",
        "A list of URIs of the resource type's schema extensions.",
        SCHEMA_EXTENSION_SUBS,
    )),
];

/// The characteristics every attribute definition has (RFC 7643 §7), which
/// `attributes` and `subAttributes` share.
macro_rules! attribute_characteristics {
    ($($sub_attributes:expr)?) => {
        &[
            required(case_exact(read_only("name", AttributeType::String, "The attribute's name."))),
            required(canonical(
                read_only(
                    "type",
                    AttributeType::String,
                    "The attribute's data type. Valid values include 'string', 'complex', 'boolean', 'decimal', 'integer', 'dateTime', 'reference', 'binary'.",
                ),
                &["string", "complex", "boolean", "decimal", "integer", "dateTime", "reference", "binary"],
            )),
            required(read_only(
                "multiValued",
                AttributeType::Boolean,
                "A Boolean value indicating an attribute's plurality.",
            )),
            case_exact(read_only(
                "description",
                AttributeType::String,
                "A human-readable description of the attribute.",
            )),
            read_only(
                "required",
                AttributeType::Boolean,
                "A Boolean value indicating whether or not the attribute is required.",
            ),
            multi(case_exact(read_only(
                "canonicalValues",
                AttributeType::String,
                "A collection of canonical values. When applicable, service providers MUST specify the canonical types, e.g., 'work', 'home'.",
            ))),
            read_only(
                "caseExact",
                AttributeType::Boolean,
                "A Boolean value indicating whether or not a string attribute is case sensitive.",
            ),
            canonical(
                case_exact(read_only("mutability", AttributeType::String, "Indicates whether or not an attribute is modifiable.")),
                &["readOnly", "readWrite", "immutable", "writeOnly"],
            ),
            canonical(
                case_exact(read_only(
                    "returned",
                    AttributeType::String,
                    "Indicates when an attribute is returned in a response (e.g., to a query).",
                )),
                &["always", "never", "default", "request"],
            ),
            canonical(
                case_exact(read_only("uniqueness", AttributeType::String, "Indicates how unique a value must be.")),
                &["none", "server", "global"],
            ),
            multi(case_exact(read_only(
                "referenceTypes",
                AttributeType::String,
                "Used only with an attribute of type 'reference'. Specifies a SCIM resourceType that a reference attribute MAY refer to, e.g., 'User'.",
            ))),
            $($sub_attributes,)?
        ]
    };
}

/// Sub-attributes are described like attributes, without further nesting
/// (RFC 7643 §2.3.8: a sub-attribute is never complex).
const SUB_ATTRIBUTE_SUBS: &[Attribute] = attribute_characteristics!();

const ATTRIBUTE_SUBS: &[Attribute] = attribute_characteristics!(multi(complex(
    "subAttributes",
    "Used to define the sub-attributes of a complex attribute.",
    SUB_ATTRIBUTE_SUBS,
)));

const SCHEMA_ATTRIBUTES: &[Attribute] = &[
    required(read_only(
        "id",
        AttributeType::String,
        "The unique URI of the schema. When applicable, service providers MUST specify the URI.",
    )),
    required(read_only(
        "name",
        AttributeType::String,
        "The schema's human-readable name. When applicable, service providers MUST specify the name, e.g., 'User'.",
    )),
    read_only(
        "description",
        AttributeType::String,
        "The schema's human-readable description. When applicable, service providers MUST specify the description.",
    ),
    required(multi(complex(
        "attributes",
        "A complex attribute that includes the attributes of a schema.",
        ATTRIBUTE_SUBS,
    ))),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA_ID, USER_RESOURCE, USER_SCHEMA_ID, Uniqueness};

    const BASE: &str = "https://scim.example.com/scim/v2/d1";

    static BEARER: AuthenticationScheme = AuthenticationScheme {
        kind: "oauthbearertoken",
        name: "OAuth Bearer Token",
        description: "A bearer token issued for the directory.",
        spec_uri: Some(BEARER_TOKEN_SPEC_URI),
        primary: true,
    };

    static PROVIDER: ServiceProvider = ServiceProvider {
        features: Features {
            patch: true,
            bulk: None,
            filter_max_results: Some(list::MAX_COUNT),
            change_password: true,
            sort: false,
            etag: true,
            pagination: Some(Pagination {
                cursor: true,
                index: true,
                default_method: "index",
                default_page_size: list::DEFAULT_COUNT,
                max_page_size: list::MAX_COUNT,
            }),
            authentication_schemes: std::slice::from_ref(&BEARER),
        },
        resource_types: &[&USER_RESOURCE],
    };

    fn ids(list: &Value) -> Vec<&str> {
        list["Resources"]
            .as_array()
            .map(|resources| resources.iter().filter_map(|r| r["id"].as_str()).collect())
            .unwrap_or_default()
    }

    /// Every key of `value` is an attribute `attributes` declares, recursively,
    /// with single or multiple values as declared.
    fn assert_conforms(value: &Value, attributes: &[Attribute], at: &str) {
        let Value::Object(object) = value else {
            panic!("{at} is not an object: {value}");
        };
        for (key, value) in object {
            if matches!(key.as_str(), "schemas" | "meta") && at.is_empty() {
                continue;
            }
            let Some(attribute) = attributes.iter().find(|a| a.name == key) else {
                panic!("{at}.{key} is not in the schema");
            };
            let values: Vec<&Value> = match value {
                Value::Array(items) => {
                    assert!(attribute.multi_valued, "{at}.{key} is single-valued");
                    items.iter().collect()
                }
                single => {
                    assert!(!attribute.multi_valued, "{at}.{key} is multi-valued");
                    vec![single]
                }
            };
            for value in values {
                let well_typed = match attribute.kind {
                    AttributeType::Complex => {
                        assert_conforms(value, attribute.sub_attributes, &format!("{at}.{key}"));
                        true
                    }
                    AttributeType::Boolean => value.is_boolean(),
                    AttributeType::Integer => value.is_u64() || value.is_i64(),
                    AttributeType::Decimal => value.is_number(),
                    _ => value.is_string(),
                };
                assert!(well_typed, "{at}.{key} is not a {}: {value}", attribute.kind.as_str());
            }
        }
        for attribute in attributes.iter().filter(|a| a.required) {
            assert!(
                object.contains_key(attribute.name),
                "{at}.{} is required",
                attribute.name
            );
        }
    }

    #[test]
    fn service_provider_config_says_what_is_supported() {
        let spc = PROVIDER.service_provider_config(BASE);
        assert_eq!(spc["schemas"], json!([SERVICE_PROVIDER_CONFIG_SCHEMA_ID]));
        assert_eq!(spc["patch"], json!({"supported": true}));
        assert_eq!(
            spc["bulk"],
            json!({"supported": false, "maxOperations": 0, "maxPayloadSize": 0})
        );
        assert_eq!(spc["filter"], json!({"supported": true, "maxResults": 1000}));
        assert_eq!(spc["changePassword"], json!({"supported": true}));
        assert_eq!(spc["sort"], json!({"supported": false}));
        assert_eq!(spc["etag"], json!({"supported": true}));
        assert_eq!(
            spc["authenticationSchemes"],
            json!([{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A bearer token issued for the directory.",
                "specUri": BEARER_TOKEN_SPEC_URI,
                "primary": true,
            }])
        );
        assert_eq!(
            spc["meta"],
            json!({"resourceType": "ServiceProviderConfig", "location": format!("{BASE}/ServiceProviderConfig")})
        );
    }

    #[test]
    fn bulk_limits_and_missing_filter_support_are_rendered() {
        let provider = ServiceProvider {
            features: Features {
                bulk: Some(BulkLimits {
                    max_operations: 100,
                    max_payload_size: 1_048_576,
                }),
                filter_max_results: None,
                ..PROVIDER.features
            },
            ..PROVIDER
        };
        let spc = provider.service_provider_config(BASE);
        assert_eq!(
            spc["bulk"],
            json!({"supported": true, "maxOperations": 100, "maxPayloadSize": 1_048_576})
        );
        assert_eq!(spc["filter"], json!({"supported": false, "maxResults": 0}));
        assert_eq!(
            PROVIDER.service_provider_config(BASE)["pagination"],
            json!({"cursor": true, "index": true, "defaultPaginationMethod": "index",
                   "defaultPageSize": 100, "maxPageSize": 1000})
        );
        let index_only = ServiceProvider {
            features: Features {
                pagination: None,
                ..PROVIDER.features
            },
            ..PROVIDER
        };
        assert!(index_only.service_provider_config(BASE).get("pagination").is_none());
    }

    #[test]
    fn every_discovery_resource_conforms_to_its_own_schema() {
        let spc = PROVIDER.service_provider_config(BASE);
        assert_conforms(&spc, SERVICE_PROVIDER_CONFIG.attributes, "");
        for rt in PROVIDER.resource_types_list(BASE)["Resources"]
            .as_array()
            .expect("list")
        {
            assert_conforms(rt, RESOURCE_TYPE.attributes, "");
        }
        // The Schema schema is the exception: RFC 7643 §8.7.2 nests the
        // complex `subAttributes` inside the complex `attributes`, a depth
        // that no finite description of itself can cover.
        for schema in PROVIDER.schemas().into_iter().filter(|s| s.id != SCHEMA_SCHEMA_ID) {
            assert_conforms(&schema_resource(schema, BASE), SCHEMA.attributes, "");
        }
    }

    #[test]
    fn schemas_are_those_of_the_resource_types_then_the_service_provider_ones() {
        let list = PROVIDER.schemas_list(BASE);
        assert_eq!(
            ids(&list),
            [
                USER_SCHEMA_ID,
                ENTERPRISE_USER_SCHEMA_ID,
                SERVICE_PROVIDER_CONFIG_SCHEMA_ID,
                RESOURCE_TYPE_SCHEMA_ID,
                SCHEMA_SCHEMA_ID,
            ]
        );
        assert_eq!(list["totalResults"], json!(5));
        assert_eq!(list["itemsPerPage"], json!(5));
        assert_eq!(list["startIndex"], json!(1));
        assert_eq!(list["schemas"], json!([list::LIST_RESPONSE_SCHEMA]));
    }

    #[test]
    fn a_schema_shared_by_two_resource_types_is_listed_once() {
        static TWICE: [&ResourceSchema; 2] = [&USER_RESOURCE, &USER_RESOURCE];
        let provider = ServiceProvider {
            resource_types: &TWICE,
            ..PROVIDER
        };
        assert_eq!(provider.schemas().len(), 5);
        assert_eq!(provider.resource_types_list(BASE)["totalResults"], json!(2));
    }

    #[test]
    fn a_schema_is_found_by_its_urn_in_any_case_and_located() {
        let user = PROVIDER
            .schema(&USER_SCHEMA_ID.to_uppercase(), BASE)
            .expect("the User schema");
        assert_eq!(user["id"], USER_SCHEMA_ID);
        assert_eq!(
            user["meta"],
            json!({"resourceType": "Schema", "location": format!("{BASE}/Schemas/{USER_SCHEMA_ID}")})
        );
        let user_name = &user["attributes"][0];
        assert_eq!(
            (&user_name["name"], &user_name["caseExact"], &user_name["uniqueness"]),
            (&json!("userName"), &json!(false), &json!("server"))
        );
    }

    #[test]
    fn unknown_schemas_and_resource_types_are_404() {
        let schema = PROVIDER
            .schema("urn:ietf:params:scim:schemas:core:2.0:Group", BASE)
            .expect_err("Group is not served");
        assert_eq!((schema.status, schema.scim_type), (404, None));
        let rt = PROVIDER.resource_type("Widget", BASE).expect_err("no Widgets");
        assert_eq!(rt.status, 404);
        assert_eq!(rt.detail, "no resource type Widget");
    }

    #[test]
    fn resource_type_user_declares_the_enterprise_extension() {
        let user = PROVIDER.resource_type("user", BASE).expect("User");
        assert_eq!(user["id"], "User");
        assert_eq!(user["endpoint"], "/Users");
        assert_eq!(user["schema"], USER_SCHEMA_ID);
        assert_eq!(
            user["schemaExtensions"],
            json!([{"schema": ENTERPRISE_USER_SCHEMA_ID, "required": false}])
        );
        assert_eq!(
            user["meta"],
            json!({"resourceType": "ResourceType", "location": format!("{BASE}/ResourceTypes/User")})
        );
    }

    #[test]
    fn the_schema_schema_describes_sub_attributes_one_level_deep() {
        let attributes = SCHEMA.attribute("attributes").expect("attributes");
        let sub_attributes = attributes.sub_attribute("subAttributes").expect("subAttributes");
        assert!(sub_attributes.multi_valued);
        assert!(sub_attributes.sub_attribute("subAttributes").is_none());
        assert_eq!(attributes.sub_attributes.len(), sub_attributes.sub_attributes.len() + 1);
        assert!(
            SERVICE_PROVIDER_SCHEMAS
                .iter()
                .flat_map(|s| s.attributes)
                .all(|a| a.mutability == Mutability::ReadOnly && a.uniqueness == Uniqueness::None)
        );
    }
}
