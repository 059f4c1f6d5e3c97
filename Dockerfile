# One image for every idmesh service: the chart's Deployments differ only in
# `idmesh serve --targets …`. Built with BuildKit (cache mounts):
#   docker build -t idmesh .
# The toolchain is pinned to a minor release at or above the workspace's
# rust-version, on bookworm so that the binary's glibc matches the runtime's.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the build between builds; the
# binary is copied out because target/ is a cache, not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p idmesh \
    && cp target/release/idmesh /usr/local/bin/idmesh \
    && mkdir -p /var/lib/idmesh

# distroless/cc: glibc, libgcc and CA certificates, no shell, no package
# manager; its nonroot user is UID/GID 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/idmesh /usr/local/bin/idmesh
# The data dir (SQLite, when no database URL is given) is the only place
# idmesh writes, with /tmp for SQLite's temporary files: with a read-only
# root filesystem both must be volumes (the chart mounts emptyDirs there).
COPY --from=build --chown=65532:65532 /var/lib/idmesh /var/lib/idmesh
ENV IDMESH_DATA_DIR=/var/lib/idmesh
VOLUME ["/var/lib/idmesh", "/tmp"]
# Numeric, so that Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
# HTTP (SCIM), directories, users, sessions, groups, roles, events, metrics (when
# --metrics-addr asks for it).
EXPOSE 8080 50051 50052 50053 50054 50055 50056 9090
ENTRYPOINT ["/usr/local/bin/idmesh"]
# With no arguments the image runs the whole mesh on SQLite in the data dir,
# like `idmesh dev` but listening on every address; the chart always passes
# its own arguments.
CMD ["serve", "--targets", "directories,users,groups,sessions,roles,events,gateway"]
