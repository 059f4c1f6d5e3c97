//! Filter parsing and in-memory evaluation: the typical Okta lookup that
//! precedes every provisioning call, and a filter that exercises every kind
//! of node (and, or, not, a value path, an extension attribute).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use scim::filter::{matches, parse};
use scim::schema::USER_RESOURCE;
use serde_json::Value;

/// What Okta and Entra ID send before creating a user.
const OKTA_USER_NAME_EQ: &str = r#"userName eq "barbara.jensen@example.com""#;

/// and, or, not, a value path and an enterprise extension attribute; it
/// matches the sample user, so evaluation visits every node.
const COMPLEX: &str = concat!(
    r#"(userType eq "Employee" or title sw "Tour") and not (active eq false)"#,
    r#" and emails[type eq "work" and value co "@example.com"]"#,
    r#" and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Tour Operations""#,
);

fn user() -> Value {
    serde_json::from_str(include_str!("user.json")).expect("user.json is JSON")
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter_parse");
    for (name, text) in [("okta_user_name_eq", OKTA_USER_NAME_EQ), ("complex", COMPLEX)] {
        group.bench_function(name, |b| b.iter(|| parse(black_box(text)).expect("filter parses")));
    }
    group.finish();
}

fn bench_matches(c: &mut Criterion) {
    let user = user();
    let mut group = c.benchmark_group("filter_matches");
    for (name, text) in [("okta_user_name_eq", OKTA_USER_NAME_EQ), ("complex", COMPLEX)] {
        let filter = parse(text).expect("filter parses");
        assert!(
            matches(&filter, &user, &USER_RESOURCE),
            "{text} matches the sample user"
        );
        group.bench_function(name, |b| {
            b.iter(|| matches(black_box(&filter), black_box(&user), &USER_RESOURCE))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse, bench_matches);
criterion_main!(benches);
