# The two commands a new user needs: `make demo` runs the main job, `make test` runs the tests.
# Both create the virtualenv and install the package on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test test-fast ui lint bench clean

$(INSTALLED): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/article-rec-demo

test: $(INSTALLED)
	$(BIN)/pip check
	$(BIN)/ruff check .
	$(BIN)/pytest

# The stages' unit tests, without the slow kinds (pyproject.toml's markers): while you work.
UNIT_TESTS := $(addprefix article_rec_assets_tests/,alerting catalogue evaluation generator ingestion publishing recommenders settings)
test-fast: $(INSTALLED)
	$(BIN)/pytest -q -m "not postgres and not s3 and not ui and not image" $(UNIT_TESTS)

# The Dagster UI on the demo's instance and data: http://127.0.0.1:3000
# Started inside the Dagster home: dagster dev loads its .env (written by the demo) from there; the
# .env's paths start from DAGSTER_HOME, so they follow this checkout wherever it is.
ui: $(INSTALLED)
	cd .demo/dagster_home && DAGSTER_HOME=$(CURDIR)/.demo/dagster_home \
		$(CURDIR)/$(BIN)/dagster dev -w $(CURDIR)/article_rec_demo/workspace.yaml -h 127.0.0.1 -p 3000

lint: $(INSTALLED)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf .demo .pytest_cache
