# haproxy-drain — the two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Debian packages the tests and the demo use (haproxy 2.6, wrk for load, promtool/prometheus
# for the metrics tests, socat and curl for poking sockets by hand, docker-compose for
# docker/compose.yaml, systemd for systemd-analyze verify of the unit files, etcd-server for the
# fleet budget tests, protobuf-compiler: `protoc`, which the etcd-client crate needs at build time).
PACKAGES := haproxy wrk prometheus socat curl docker-compose systemd fonts-dejavu-core etcd-server protobuf-compiler
# ansible-playbook for the fleet rollout test (ansible/), from PyPI.
ANSIBLE_CORE := ansible-core>=2.16,<2.20
CARGO ?= cargo

.PHONY: help deps images image build demo test lint bench fuzz clean-test-leftovers

help:
	@echo "make demo   - HAProxy + 3 app containers + haproxy-drain (its image) under load; restart each; report"
	@echo "make image  - the haproxy-drain container image, built offline (static binary, FROM scratch)"
	@echo "make test   - install what is missing, then fmt, clippy and the whole test suite"
	@echo "make bench  - benchmarks; BENCH=rollout / BENCH=scale write docs/bench/RESULTS.md, SCALE.md"
	@echo "make fuzz   - every fuzz target for FUZZ_SECONDS (default 60) each (results go to docs/fuzzing.md)"

deps:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v docker >/dev/null || { echo "docker is required (the engine must be running)"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "the Docker engine is not answering on its socket"; exit 1; }
	@cargo clippy --version >/dev/null 2>&1 || rustup component add clippy rustfmt
	@command -v ansible-playbook >/dev/null || { echo "installing $(ANSIBLE_CORE)"; \
	  python3 -m pip install --quiet --disable-pip-version-check '$(ANSIBLE_CORE)'; }

images: deps
	@bash docker/build-test-images.sh

# haproxy-drain:latest and haproxy-drain:<version>: the release binary, static, FROM scratch.
image: deps
	@bash docker/build-image.sh

build:
	@$(CARGO) build --quiet

demo: deps images image
	@bash scripts/demo.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets --workspace -- -D warnings

test: deps images image lint clean-test-leftovers
	$(CARGO) test --workspace --no-fail-fast

# BENCH=rollout (or any bench name) runs one; the rollout harness writes docs/bench/.
BENCH ?=
bench: deps images
	$(CARGO) bench $(if $(BENCH),--bench $(BENCH),)

# libFuzzer targets (fuzz/, outside the workspace): nightly, or stable with RUSTC_BOOTSTRAP=1.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

# Containers/networks of an earlier run that was killed before its clean-up could run.
clean-test-leftovers:
	@docker ps -aq --filter label=hdt.test=1 | xargs -r docker rm -f >/dev/null
	@docker network ls -q --filter label=hdt.test=1 | xargs -r docker network rm >/dev/null
	@docker volume ls -q --filter label=hdt.test=1 | xargs -r docker volume rm >/dev/null
