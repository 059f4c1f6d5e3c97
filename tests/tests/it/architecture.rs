//! The house rules on which crate may depend on which, checked against
//! `cargo metadata`, so that a dependency that breaks them fails here
//! rather than in review:
//!
//! - `scim` is pure: it depends on no crate of ours;
//! - `idmesh-runtime` depends on neither `scim` nor `idmesh-store`;
//! - the gateway speaks SCIM and gRPC, never SQL: no `idmesh-store`;
//! - services meet over gRPC only: no service crate depends on another
//!   (dev-dependencies aside, where tests start a peer).
//!
//! Dependencies are followed transitively through our own crates, so a
//! rule cannot be broken by going through a third crate.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Each crate of the workspace with the crates of the workspace it depends
/// on directly (normal and build dependencies, not dev-dependencies).
fn workspace_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let packages = metadata["packages"].as_array().expect("a package list");
    let ours: BTreeSet<String> = packages
        .iter()
        .filter_map(|package| package["name"].as_str().map(str::to_owned))
        .collect();
    packages
        .iter()
        .map(|package| {
            let name = package["name"].as_str().expect("a package name").to_owned();
            let dependencies = package["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|dependency| dependency["kind"].as_str() != Some("dev"))
                .filter_map(|dependency| dependency["name"].as_str())
                .filter(|dependency| ours.contains(*dependency))
                .map(str::to_owned)
                .collect();
            (name, dependencies)
        })
        .collect()
}

/// Every crate of ours that `name` depends on, directly or through others.
fn closure(graph: &BTreeMap<String, BTreeSet<String>>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![name.to_owned()];
    while let Some(next) = stack.pop() {
        for dependency in graph.get(&next).into_iter().flatten() {
            if seen.insert(dependency.clone()) {
                stack.push(dependency.clone());
            }
        }
    }
    seen
}

/// The service crates: what `idmesh serve --targets` can run, each owning
/// its data. The `idmesh` binary assembles them and is no service.
const SERVICES: &[&str] = &[
    "directory-service",
    "user-service",
    "group-service",
    "session-service",
    "role-mapping-service",
    "events-service",
    "scim-gateway",
];

#[test]
fn scim_depends_on_no_crate_of_ours() {
    let graph = workspace_dependencies();
    assert_eq!(closure(&graph, "scim"), BTreeSet::new());
}

#[test]
fn the_runtime_depends_on_neither_scim_nor_the_store() {
    let graph = workspace_dependencies();
    let reached = closure(&graph, "idmesh-runtime");
    for forbidden in ["scim", "idmesh-store"] {
        assert!(
            !reached.contains(forbidden),
            "idmesh-runtime depends on {forbidden}: {reached:?}"
        );
    }
}

#[test]
fn the_gateway_never_reaches_the_store() {
    let graph = workspace_dependencies();
    let reached = closure(&graph, "scim-gateway");
    assert!(
        !reached.contains("idmesh-store"),
        "scim-gateway depends on the store: {reached:?}"
    );
}

#[test]
fn no_service_depends_on_another() {
    let graph = workspace_dependencies();
    for service in SERVICES {
        assert!(graph.contains_key(*service), "{service} is a crate of the workspace");
        let reached = closure(&graph, service);
        let others: Vec<&&str> = SERVICES.iter().filter(|other| reached.contains(**other)).collect();
        assert!(others.is_empty(), "{service} depends on {others:?}");
    }
}
