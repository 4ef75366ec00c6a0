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
    {{python}} -m pip install -q -e '.[test]' && {{python}} -m eas_runtime.devservers install && {{python}} -m pytest {{ARGS}}

# Only the fast tiers (no real servers, no long science runs).
test-fast:
    {{python}} -m pytest -m "not slow and not minio and not postgres and not browser" -q

# Static checks: manifests against the Knative CRD schemas and admission rules, and ruff.
lint:
    {{python}} -m eas_runtime.manifests knative broker_config storage
    {{python}} -m ruff check eas_runtime functions tests benchmarks

# Benchmarks: prints a table (events/s, latencies, wrapper overhead, search speed).
bench *ARGS:
    {{python}} -m benchmarks {{ARGS}}

# A real MinIO server on loopback (built from the pinned commit when missing), in the foreground.
minio DIR=".eas/minio" PORT="9000":
    {{python}} -m eas_runtime.devservers minio --dir {{DIR}} --port {{PORT}}

# A real PostgreSQL server on loopback (Debian packages), in the foreground.
postgres DIR=".eas/postgres" PORT="5433":
    {{python}} -m eas_runtime.devservers postgres --dir {{DIR}} --port {{PORT}}
