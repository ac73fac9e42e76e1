# syntax=docker/dockerfile:1
# The rollgate image: one fully static binary on an empty filesystem.
#   docker build -t rollgate .
# Applications add their migrations on top:
#   FROM ghcr.io/rollgate/rollgate:0.1.0
#   COPY migrations/ /migrations/
#
# The build stage runs the same script CI runs (scripts/build-static.sh): libcurl and libpq from
# Debian's source packages, linked with Debian's static OpenSSL, libyaml, zlib and libpg_query
# (the script installs libpg-query-dev and everything else it needs). Its dependency
# prefix lives in a BuildKit cache mount, so a rebuild after a change to rollgate's own code only
# compiles rollgate.
FROM debian:bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/cache/rollgate \
    --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean && \
    apt-get update -qq && \
    RG_STATIC_CACHE_ROOT=/cache/rollgate RG_STATIC_BUILD_DIR=/out scripts/build-static.sh

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/rollgate/rollgate
LABEL org.opencontainers.image.title="rollgate" \
      org.opencontainers.image.description="Applies PostgreSQL schema migrations exactly once per rollout, coordinated by a Kubernetes Lease" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
COPY --from=build /out/rollgate.stripped /rollgate
# No /etc/passwd here: the numeric user is all Kubernetes' runAsNonRoot needs, and rollgate
# takes the database user from the URL (it says so when none is given).
USER 65532:65532
ENTRYPOINT ["/rollgate"]
CMD ["migrate"]
