# The test app, FROM scratch (no registry here; the binary is static).
# Build with docker/build-test-images.sh, which prepares the context (just the binary).
#   --target nohc : no Docker HEALTHCHECK
#   --target hc   : exec-form HEALTHCHECK (there is no shell in the image)
# APP_VERSION is baked into the environment and a label so a test can tell images apart.

FROM scratch AS nohc
ARG APP_VERSION=v1
ARG BUILD_HASH=unknown
COPY testapp /testapp
ENV APP_VERSION=${APP_VERSION} PORT=8080
LABEL testapp.version=${APP_VERSION} testapp.build-hash=${BUILD_HASH}
EXPOSE 8080
ENTRYPOINT ["/testapp"]

FROM nohc AS hc
HEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD ["/testapp", "--healthcheck"]

# A bad release: healthy, but half of its app requests answer 500 (the post-restore watch).
FROM nohc AS bad
ENV FAIL_PERCENT=50
