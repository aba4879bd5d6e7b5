# One-command entry points (see README "Quick start").
VENV   ?= .venv
PYTHON ?= python3
PORT   ?= 5006
BIN     = $(VENV)/bin

.PHONY: install app test test-slow notebooks notebooks-html assets bench bench-scattering clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(BIN)/.installed

## start the app on its default data (phi^4 at beta = 0.68) at http://localhost:$(PORT)
app: install
	$(BIN)/panel serve explorer/app.py --port $(PORT)

## the test suite (installs Debian's chromium for the browser tests when run as root)
test: install
	bash scripts/ensure-chromium
	$(BIN)/pytest

## open the teaching notebooks in JupyterLab (installs JupyterLab into $(VENV) the first time)
$(BIN)/.notebooks: $(BIN)/.installed
	$(BIN)/python -m pip install -q -e ".[notebooks]"
	touch $@

notebooks: $(BIN)/.notebooks
	$(BIN)/jupyter lab notebooks/

## execute the notebooks on small settings and export them as offline HTML to notebooks-html/
notebooks-html: $(BIN)/.notebooks
	$(BIN)/python scripts/export_notebooks.py --out notebooks-html

## the long statistical checks (chi(32)/chi(16), ...)
test-slow: install
	$(BIN)/pytest -m slow -s

## rebuild the default data in assets/ (the command is recorded in each file's meta)
assets: install
	$(BIN)/explorer assets

## benchmarks: one JSON per benchmark in benchmarks/results/ (never part of the test run); the
## kymatio comparison runs in its own environment (.venv-bench, see bench-scattering)
RESULTS = benchmarks/results
bench: install bench-scattering
	mkdir -p $(RESULTS)
	$(BIN)/python benchmarks/bench_phi4.py --out $(RESULTS)/bench_phi4.json
	$(BIN)/python benchmarks/bench_gradient.py --out $(RESULTS)/bench_gradient.json
	$(BIN)/python benchmarks/bench_mixing.py --sizes 32 64 --single-chains 4 --single-steps 80000 --skip-c2 --out $(RESULTS)/bench_mixing_32_64.json
	$(BIN)/python benchmarks/bench_mixing.py --sizes 128 --chains 8 --single-chains 2 --single-steps 80000 --skip-c2 --cluster-iterations 300 --out $(RESULTS)/bench_mixing_128.json
	$(BIN)/python benchmarks/bench_mixing.py --sizes --resume $(RESULTS)/bench_mixing_32_64.json $(RESULTS)/bench_mixing_128.json --out $(RESULTS)/bench_mixing.json
	$(BIN)/python benchmarks/bench_defaults.py --out $(RESULTS)/bench_defaults.json
	$(BIN)/python benchmarks/bench_fit.py > $(RESULTS)/bench_fit.json
	$(BIN)/python benchmarks/bench_turbulence.py > $(RESULTS)/bench_turbulence.json
	$(BIN)/python benchmarks/bench_diagnostics.py > $(RESULTS)/bench_diagnostics.json
	$(BIN)/python benchmarks/bench_dashboard.py > $(RESULTS)/bench_dashboard.json
	$(BIN)/python benchmarks/bench_phase_diagram.py > $(RESULTS)/bench_phase_diagram.json

## scattering statistics vs kymatio (peer reference in a separate .venv-bench: scipy < 1.17);
## BEFORE=<git revision> also times that revision's synthesis, alternating with ours
bench-scattering:
	mkdir -p $(RESULTS)
	bash benchmarks/peer_env.sh
	.venv-bench/bin/python benchmarks/bench_scattering.py $(if $(BEFORE),--before $(BEFORE)) \
		> $(RESULTS)/bench_scattering.json

clean:
	rm -rf $(VENV) test-artifacts notebooks-html .pytest_cache
