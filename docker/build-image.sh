#!/usr/bin/env bash
# `make image`: haproxy-drain's container image without a registry. The binary is built here as a
# static-pie executable and packed FROM scratch (docker/scratch.Dockerfile) with the legacy
# builder (no buildx on this machine). Tags: haproxy-drain:latest and haproxy-drain:<version>.
# Idempotent: the image is rebuilt only when the binary or the Dockerfile changed (a hash label).
# IMAGE=name:tag overrides the first tag.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
target=x86_64-unknown-linux-gnu
image="${IMAGE:-haproxy-drain:latest}"
version="$(awk -F'"' '/^version *=/ { print $2; exit }' Cargo.toml)"

# --target keeps build scripts and proc-macros out of crt-static, and puts this build in its own
# directory, so these RUSTFLAGS do not invalidate the normal debug builds.
RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --quiet --release -p haproxy-drain --bin haproxy-drain --target "$target"

binary="target/$target/release/haproxy-drain"
context="target/drain-image"
mkdir -p "$context/rootfs/var/lib/haproxy-drain" "$context/rootfs/run/haproxy-drain"
# Stripped: the symbols are a third of the binary and nobody debugs inside a scratch image.
strip -o "$context/haproxy-drain.new" "$binary"
if cmp -s "$context/haproxy-drain.new" "$context/haproxy-drain"; then
    rm "$context/haproxy-drain.new"
else
    mv "$context/haproxy-drain.new" "$context/haproxy-drain"
fi
hash="$(cat "$context/haproxy-drain" docker/scratch.Dockerfile | sha256sum | cut -c1-16)"

current="$(docker image inspect -f '{{index .Config.Labels "haproxy-drain.build-hash"}}' "$image" 2>/dev/null || true)"
if [[ "$current" == "$hash" ]]; then
    docker tag "$image" "haproxy-drain:$version"
    echo "$image is up to date"
    exit 0
fi
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
# The legacy builder prints a deprecation notice: show its output only on failure.
if ! output="$(DOCKER_BUILDKIT=0 docker build --quiet -f docker/scratch.Dockerfile \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "BUILD_HASH=$hash" \
    -t "$image" -t "haproxy-drain:$version" "$context" 2>&1)"; then
    echo "$output" >&2
    echo "building $image failed" >&2
    exit 1
fi
echo "built $image (haproxy-drain $version, $(du -h "$context/haproxy-drain" | cut -f1) binary)"
