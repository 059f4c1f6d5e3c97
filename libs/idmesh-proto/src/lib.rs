//! The idmesh gRPC contracts, generated from `proto/idmesh/v1` at build time.

/// `idmesh.v1`: directories, users, groups, sessions, roles and the types
/// they share.
pub mod v1 {
    tonic::include_proto!("idmesh.v1");
}

/// The encoded `FileDescriptorSet` of every idmesh proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/idmesh_descriptor.bin"));
