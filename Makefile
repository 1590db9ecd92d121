# The two commands of the README. Everything else is in scripts/.
.PHONY: run test lint

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy
