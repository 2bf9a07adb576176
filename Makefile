# Two commands: `make run` starts the show, `make test` runs every test.
# Both set up what is missing first (Debian packages, .venv, Python packages).
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test setup lint bench clean

run:
	scripts/setup.sh run
	$(PY) -m engine $(ARGS)

test:
	scripts/setup.sh test
	$(PY) -m ruff check engine tests bench
	$(PY) -m mypy engine
	$(PY) -m pytest $(PYTEST_ARGS)

lint:
	$(PY) -m ruff check engine tests bench
	$(PY) -m mypy engine

bench:
	scripts/setup.sh run
	$(PY) bench/render.py
	$(PY) bench/generation.py
	$(PY) bench/hot_reload.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
