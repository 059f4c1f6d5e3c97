//! The end-to-end tests, one module per area, in one test binary: one link
//! instead of eight, and one process per test under nextest as before.
//! Each test starts its own mesh on a database of its own (see the crate's
//! lib for the harness).

mod architecture;
mod auth;
mod bulk;
mod conditional;
mod cursor;
mod deprovisioning;
mod discovery;
mod entra;
mod events;
mod filters;
mod groups;
mod grpc;
mod idp;
mod large;
mod limits;
mod projection;
mod roles;
mod telemetry;
mod users;
mod webhooks;
