# PLATO EAS recipes. `just --list` shows them all.
# Python of the active environment; override with `just python=python3.12 test`.
python := "python3"

# Install the project and run the demo on the embedded default (SQLite, local store).
demo:
    {{python}} -m pip install -e . && eas demo

# Run the embedded pipeline (broker, functions, index site) until Ctrl-C.
up *ARGS:
    eas up {{ARGS}}

# Install what the tests need (MinIO, PostgreSQL, Chromium) and run the whole suite.
test *ARGS:
    {{python}} -m pip install -q -e '.[test]' -c constraints.txt && {{python}} -m eas_runtime.devservers install && {{python}} -m pytest {{ARGS}}

# Pin every installed package's version into constraints.txt (images and the test command use it);
# `just lock --check` only compares.
lock *ARGS:
    {{python}} -m eas_runtime.deploy.lock {{ARGS}}

# Only the fast tiers (no real servers, no long science runs).
test-fast:
    {{python}} -m pytest -m "not slow and not minio and not postgres and not browser" -q

# Static checks: manifests against the Knative CRD schemas and the project's own rules, then with
# Knative's own admission code (knative-validate, needs Go), ruff, and mypy (its settings in
# pyproject.toml, [tool.mypy]).
lint:
    {{python}} -m eas_runtime.manifests knative broker_config storage
    just knative-validate
    {{python}} -m ruff check eas_runtime functions tests benchmarks
    {{python}} -m mypy

# Knative's own code on the manifests (knative/validate, needs Go): every object of both
# deployments (laptop, cluster: Services, Broker config, storage) through Serving's and Eventing's SetDefaults and Validate, every event
# the pipeline sends routed by Eventing's filters. The first build takes minutes; later ones reuse
# Go's cache. ARGS go to the program (e.g. --config my-config-defaults.yaml).
knative-validate *ARGS:
    mkdir -p .eas/build
    {{python}} -m eas_runtime.deploy.event_catalogue > .eas/build/events.json
    cd knative/validate && go build -o ../../.eas/build/eas-knative-validate .
    .eas/build/eas-knative-validate -events .eas/build/events.json {{ARGS}} knative/overlays/laptop broker_config storage
    .eas/build/eas-knative-validate -events .eas/build/events.json {{ARGS}} knative/overlays/cluster knative/overlays/cluster/broker storage

# Benchmarks: prints a table (events/s, latencies, wrapper overhead, search speed).
bench *ARGS:
    {{python}} -m benchmarks {{ARGS}}

# A real MinIO server on loopback (built from the pinned commit when missing), in the foreground,
# notifying the storage adapter of `EAS_STORE=minio eas up` (port 8472, the default token).
minio DIR=".eas/minio" PORT="9000" TOKEN="eas-adapter-token":
    {{python}} -m eas_runtime.devservers minio --dir {{DIR}} --port {{PORT}} --webhook http://127.0.0.1:8472/minio --webhook-token {{TOKEN}}

# A real PostgreSQL server on loopback (Debian packages), in the foreground.
postgres DIR=".eas/postgres" PORT="5433":
    {{python}} -m eas_runtime.devservers postgres --dir {{DIR}} --port {{PORT}}

# ------------------------------------------------------------------ Knative deployment
# Registry (and prefix) of the images, their tag (empty: the git commit, plus a hash of
# uncommitted changes), the kustomize overlay of knative/ (laptop, cluster, base), and extra
# arguments of `images` when `deploy` builds them (--push for a remote registry, --kind-load
# CLUSTER for a kind cluster). Override on the command line:
#   just REGISTRY=ghcr.io/me/plato-eas OVERLAY=cluster IMAGES_ARGS=--push deploy
REGISTRY := env_var_or_default("REGISTRY", "dev.local/plato-eas")
TAG := env_var_or_default("TAG", "")
OVERLAY := env_var_or_default("OVERLAY", "laptop")
IMAGES_ARGS := env_var_or_default("IMAGES_ARGS", "")

# Knative Services, Triggers and Containerfiles from the descriptors (functions/*/func.yaml).
generate:
    {{python}} -m eas_runtime.cli deploy generate

# Build the base image and each function's image with docker or podman (--only FUNCTION, --push, --kind-load CLUSTER).
images *ARGS:
    {{python}} -m eas_runtime.cli deploy images --registry "{{REGISTRY}}" --tag "{{TAG}}" {{IMAGES_ARGS}} {{ARGS}}

# Build the images, then deploy storage, broker config and services to the current kubectl context (--only SERVICE, --no-kn).
deploy *ARGS: images
    {{python}} -m eas_runtime.cli deploy apply --overlay "{{OVERLAY}}" --registry "{{REGISTRY}}" --tag "{{TAG}}" {{ARGS}}

# Print every command and manifest of `deploy` (image builds included); needs no cluster, kn, kubectl or engine.
deploy-dry-run *ARGS:
    {{python}} -m eas_runtime.cli deploy images --dry-run --registry "{{REGISTRY}}" --tag "{{TAG}}" {{IMAGES_ARGS}}
    {{python}} -m eas_runtime.cli deploy apply --dry-run --overlay "{{OVERLAY}}" --registry "{{REGISTRY}}" --tag "{{TAG}}" {{ARGS}}

# Remove the Triggers, Services, Broker and sources; storage and its data stay (--purge deletes them too).
undeploy *ARGS:
    {{python}} -m eas_runtime.cli deploy delete --overlay "{{OVERLAY}}" {{ARGS}}

# Logs of a deployed function or component (verify, eas-verify, control; -f follows).
logs FUNCTION *ARGS:
    {{python}} -m eas_runtime.cli deploy logs "{{FUNCTION}}" {{ARGS}}

# POST a sample CloudEvent to a deployed function (or eas-control) and print its answer.
invoke FUNCTION *ARGS:
    {{python}} -m eas_runtime.cli deploy invoke "{{FUNCTION}}" {{ARGS}}
