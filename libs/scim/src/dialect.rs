//! Query parameters IdPs add to SCIM requests that SCIM does not define,
//! listed here once. [`crate::list::ListQuery`] and
//! [`crate::attributes::AttributeParams`] accept and ignore them; every
//! other parameter SCIM does not define stays 400 `invalidValue`, so that a
//! misspelt `filter` or `startIndex` is never silently ignored.

/// The parameters, lower case, each with the IdP that sends it.
const IGNORED_QUERY_PARAMETERS: &[&str] = &[
    // Microsoft Entra ID: the feature flag `aadOptscim062020`, which
    // "Known issues and resolutions with SCIM 2.0 protocol compliance of the
    // Microsoft Entra user provisioning service", section "Flags to alter
    // the SCIM behavior"
    // (learn.microsoft.com/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility)
    // has admins append to the tenant URL for RFC-compliant PATCH bodies;
    // Entra then sends it on every request, GET, POST, PATCH and DELETE
    // alike, bare or as `aadOptscim062020=true`.
    "aadoptscim062020",
];

/// Whether `name` (any case) is an IdP's parameter that SCIM does not
/// define and that means nothing to the server.
pub fn ignores_query_parameter(name: &str) -> bool {
    IGNORED_QUERY_PARAMETERS
        .iter()
        .any(|ignored| ignored.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entra_feature_flag_is_ignored_in_any_case() {
        assert!(ignores_query_parameter("aadOptscim062020"));
        assert!(ignores_query_parameter("AADOPTSCIM062020"));
        assert!(!ignores_query_parameter("aadOptscim"));
        assert!(!ignores_query_parameter("page"));
    }
}
