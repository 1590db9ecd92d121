# The two commands of the README. Everything else is in scripts/.
.PHONY: run test lint bench-import

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy

# Import benchmark (bench/README.md): make bench-import BENCH_ARGS="--parcels 20000 --runs 1"
BENCH_ARGS ?= --parcels 200000 --runs 3
bench-import:
	bash bench/import_bench/run.sh $(BENCH_ARGS)
