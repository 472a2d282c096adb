# The offline image `make image` builds (docker/build-image.sh): the static binary built on the
# host, FROM scratch. No registry is needed, so this is the image the tests and `make demo` run.
# docker/Dockerfile is the same image built from source for CI systems that can pull a builder.
#
# The build context (prepared by the script) holds:
#   haproxy-drain   the static-pie binary (RUSTFLAGS=-C target-feature=+crt-static)
#   rootfs/         the directories the non-root user writes to, owned by it
#
# Keep the runtime part in step with docker/Dockerfile (a test compares the two).

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG BUILD_HASH=unknown

COPY --chown=65532:65532 rootfs/ /
COPY haproxy-drain /haproxy-drain

# Defaults for `run`; every flag can be overridden by its HAPROXY_DRAIN_* variable or the flag.
ENV HAPROXY_DRAIN_HAPROXY=unix:///var/run/haproxy/admin.sock \
    HAPROXY_DRAIN_STATE_FILE=/var/lib/haproxy-drain/state.json \
    HAPROXY_DRAIN_CONTROL_SOCKET=/run/haproxy-drain/control.sock \
    HAPROXY_DRAIN_METRICS_LISTEN=0.0.0.0:9748

# The ownership records: without them a restarted sidecar cannot tell its own drains from an
# operator's, so keep them on a volume.
VOLUME ["/var/lib/haproxy-drain"]
EXPOSE 9748

# Not root. There is no /etc/passwd in a scratch image: numeric ids only. The Docker socket and
# the HAProxy admin socket are reached through their groups: `docker run --group-add <gid>`.
USER 65532:65532

# SIGTERM ends `run` cleanly (drains in progress are finished by the next start, from the state
# file); stated so that nobody changes it by accident.
STOPSIGNAL SIGTERM

# No shell in the image: the binary asks its own /healthz (HAPROXY_DRAIN_METRICS_LISTEN).
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/haproxy-drain", "healthcheck"]

LABEL org.opencontainers.image.title="haproxy-drain" \
      org.opencontainers.image.description="Sidecar that drains and restores HAProxy servers as their Docker containers stop and start" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="scratch" \
      haproxy-drain.build-hash="${BUILD_HASH}"

ENTRYPOINT ["/haproxy-drain"]
CMD ["run"]
