#!/usr/bin/env bash
# Builds the static test app and packs it into FROM scratch images:
#   haproxy-drain-testapp:hc     with a Docker HEALTHCHECK (1 s interval, 2 retries)
#   haproxy-drain-testapp:nohc   without one
#   haproxy-drain-testapp:v2     like :hc, APP_VERSION=v2 (for roll/recreate tests)
#   haproxy-drain-testapp:nohc-v2 like :nohc, APP_VERSION=v2
#   haproxy-drain-testapp:sigterm, :sigterm-v2  like :nohc / :nohc-v2, for the shutdown matrix and
#     the fault campaign (ON_SIGTERM=ignore/serve): tags of their own, so that a worktree whose
#     testapp predates those behaviours, rebuilding :nohc, cannot swap the app under them
#   haproxy-drain-testapp:bad    like :nohc, APP_VERSION=bad and FAIL_PERCENT=50 baked in: healthy,
#     but half of its app requests answer 500 (the post-restore watch's roll tests)
# Idempotent: an image is rebuilt only when the binary or the Dockerfile changed (a hash label).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
target=x86_64-unknown-linux-gnu
image=haproxy-drain-testapp

# --target keeps build scripts and proc-macros out of crt-static; a separate dir keeps these
# RUSTFLAGS from invalidating the normal builds.
RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --quiet --release -p testapp --target "$target"

binary="target/$target/release/testapp"
context="target/testapp-image"
mkdir -p "$context"
cmp -s "$binary" "$context/testapp" || cp "$binary" "$context/testapp"
hash="$(cat "$context/testapp" docker/testapp.Dockerfile | sha256sum | cut -c1-16)"

build() { # tag stage version
    local tag="$image:$1" current
    current="$(docker image inspect -f '{{index .Config.Labels "testapp.build-hash"}}' "$tag" 2>/dev/null || true)"
    if [[ "$current" == "$hash" ]]; then
        echo "$tag is up to date"
        return
    fi
    # The legacy builder (no buildx here) prints a deprecation notice: show output only on failure.
    if ! output="$(DOCKER_BUILDKIT=0 docker build --quiet --target "$2" \
        --build-arg "APP_VERSION=$3" --build-arg "BUILD_HASH=$hash" \
        -f docker/testapp.Dockerfile -t "$tag" "$context" 2>&1)"; then
        echo "$output" >&2
        echo "building $tag failed" >&2
        return 1
    fi
    echo "built $tag"
}

build hc hc v1
build nohc nohc v1
build v2 hc v2
build nohc-v2 nohc v2
build sigterm nohc v1
build sigterm-v2 nohc v2
build bad bad bad
