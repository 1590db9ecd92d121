# The two commands of the README. Everything else is in scripts/.
.PHONY: run test test-fast test-federation lint lock bench-import bench-serve bench-refactor bench-field bench-federation bench-10m bench-scale bench-registry bench-lookup

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

# The edit-run loop: unit and integration tests only (no server, no real client), in a few minutes.
test-fast:
	bash scripts/test.sh tests/unit tests/integration

# The federation alone (throwaway PostgreSQL 15 clusters on loopback ports 5451-5467; about 4 minutes).
test-federation:
	bash scripts/test.sh tests/federation

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy

# requirements/lock.txt, the exact versions and hashes that scripts/venv.sh installs (make run, make test, CI),
# resolved again from pyproject.toml (its dependencies and the dev extra) after a change there. Versions
# already pinned are kept; to move them: make lock LOCK_ARGS=--upgrade (or --upgrade-package NAME).
LOCK_ARGS ?=
lock:
	bash scripts/venv.sh
	CUSTOM_COMPILE_COMMAND="make lock" .venv/bin/pip-compile --quiet --extra dev --generate-hashes \
		--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		--output-file requirements/lock.txt $(LOCK_ARGS) pyproject.toml

# Import benchmark (bench/README.md): make bench-import BENCH_ARGS="--parcels 20000 --runs 1"
BENCH_ARGS ?= --parcels 200000 --runs 3
bench-import:
	bash bench/import_bench/run.sh $(BENCH_ARGS)

# Ten million parcels from a GeoPackage (bench/README.md, "make bench-10m"): sifc import and ogr2ogr once each, the
# peak memory of the whole process tree and of the PostgreSQL backends serving it; checks the free disk first.
# make bench-10m BENCH_10M_ARGS="--parcels 1000000"
bench-10m:
	bash bench/import_bench/run.sh big $(BENCH_10M_ARGS)

# The registry's share of a first load at 200,000 parcels, and a partitioned registry's floor, beside ogr2ogr
# (bench/README.md, "make bench-registry"): make bench-registry BENCH_REGISTRY_ARGS="--runs 1"
bench-registry:
	bash bench/import_bench/run.sh registry $(BENCH_REGISTRY_ARGS)

# A split's NICAD lookup in a registry of ten million versions, against one condition over all versions
# (bench/README.md, "make bench-lookup"): make bench-lookup BENCH_LOOKUP_ARGS="--versions 1000000"
bench-lookup:
	bash bench/lookup_bench/run.sh $(BENCH_LOOKUP_ARGS)

# Field packages benchmark (bench/README.md): a package of 20,000 parcels against ogr2ogr -f GPKG, a return of
# 2,000 edits against sifc import; make bench-field BENCH_FIELD_ARGS="--runs 1"
BENCH_FIELD_ARGS ?= --runs 5
bench-field:
	bash bench/field_bench/run.sh $(BENCH_FIELD_ARGS)

# Federation benchmark (bench/README.md, "Federation"): an import's replication lag from the Thiès pole to the
# national node, and serving at the national node against a single node; throwaway clusters on ports 5471-5474.
# make bench-federation BENCH_FEDERATION_ARGS="--parcels 20000 --runs 1 --rounds 1"
bench-federation:
	bash bench/federation_bench/run.sh $(BENCH_FEDERATION_ARGS)

# Serving benchmark, SIFC against TiPg and pgbench (bench/README.md):
# make bench-serve BENCH_SERVE_ARGS="--rounds 1 --duration 10"
BENCH_SERVE_ARGS ?= --rounds 3 --duration 20
bench-serve:
	bash bench/serve_bench/run.sh $(BENCH_SERVE_ARGS)

# Everything but serving at two registry sizes (bench/README.md, "bench/scale_bench"): a commune's export, a pole's
# dashboards, a commune's overlaps, backup and restore, timed at each size, with each one's growth exponent.
# The databases are bench-serve's for --scales (loaded one commune file at a time when missing).
# make bench-scale BENCH_SCALE_ARGS="--scales 200000,1000000 --per-commune 100000"
BENCH_SCALE_ARGS ?= --scales 1000000,10000000
bench-scale:
	bash bench/scale_bench/run.sh $(BENCH_SCALE_ARGS)

# A refactor changes no speed: import and serving, the working tree against the commit it started from, each in
# one invocation of alternating runs, ratios of medians (bench/README.md, "Refactor check against a revision").
# make bench-refactor BENCH_AGAINST=<commit>
BENCH_AGAINST ?= aadbd59
bench-refactor:
	bash bench/import_bench/run.sh --parcels 50000 --runs 5 --methods sifc,sifc@$(BENCH_AGAINST)
	bash bench/serve_bench/run.sh --parcels 200000 --rounds 3 --duration 10 --servers sifc,sifc@$(BENCH_AGAINST)
