# The two quick-start commands: `make run` (build an example image) and `make test` (the whole suite).
.PHONY: run test lint setup setup-test

run:
	bash scripts/setup.sh
	bash scripts/run-example.sh

test:
	bash scripts/setup.sh --test
	bash scripts/test.sh

lint:
	.venv/bin/ruff check osbuildd tests bench
	.venv/bin/mypy
