# Builds both binaries; the compose file runs the control plane and the data planes from it.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin control-plane --bin data-plane

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/control-plane /src/target/release/data-plane /usr/local/bin/
USER nobody
ENTRYPOINT []
