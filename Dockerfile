# ragd: multi-stage build. The dependency layer is cached until Cargo.toml/Cargo.lock change.
FROM rust:1-bookworm AS build
WORKDIR /src
# 1. Dependencies only: a placeholder crate with the real manifest.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches tests/api \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs && echo '' > tests/api/main.rs \
    && for bench in $(sed -n 's/^name = "\(.*\)"/\1/p' Cargo.toml | tail -n +2); do echo 'fn main() {}' > "benches/$bench.rs"; done \
    && cargo build --release --locked --bin ragd || true
# 2. The application.
COPY . .
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin ragd

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/ragd --uid 10001 ragd
COPY --from=build /src/target/release/ragd /usr/local/bin/ragd
USER ragd
WORKDIR /var/lib/ragd
ENV HOST=0.0.0.0 PORT=8000 DATA_DIR=/var/lib/ragd/data DATABASE_URL=sqlite:///var/lib/ragd/data/ragd.db LOG_FORMAT=json
VOLUME ["/var/lib/ragd/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["ragd", "healthcheck"]
ENTRYPOINT ["ragd"]
CMD ["serve"]
