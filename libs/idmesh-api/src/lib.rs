//! The typed layer between idmesh's generated gRPC code (`idmesh-proto`)
//! and the code that uses it: the gateway on one side, the services on the
//! other. Every conversion between a SCIM value and a proto message is
//! written here once, and so is the status table, so that a PATCH
//! operation, a document or an error means the same on both ends of a hop.
//!
//! Documents travel as JSON text (see `proto/idmesh/v1/common.proto` for
//! why): [`document`] parses and writes them. PATCH operations are checked
//! when they are converted ([`patch::from_proto`]), so a service works on
//! operations that are already valid.

pub mod document;
pub mod events;
pub mod list;
pub mod meta;
pub mod patch;
pub mod resource;
pub mod status;
pub mod timestamp;
