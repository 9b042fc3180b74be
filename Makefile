# GLE Lab: `make serve` starts the dashboard, `make test` runs every test (browser included).
# Both set up what they need on a fresh Debian machine with Python 3 (as root).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup browser serve test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

# Debian's Chromium for the browser tests (never a downloaded browser build)
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)

serve: setup
	$(VENV)/bin/gle-lab

# every test (browser, load and slow ones included), then the engine and app tests again as on
# a machine without numba (the numpy paths; the compiled-kernel tests need numba)
test: setup browser
	$(PY) -m pytest tests
	GLE_LAB_WITHOUT_NUMBA=1 $(PY) -m pytest -q -m "not ui and not load and not slow" \
		tests/core tests/app --ignore=tests/core/test_kernel.py

# engine, Fourier, adjoint and dashboard figures (minutes); the load curve and the soak are
# longer: run benchmarks/bench_load.py and benchmarks/bench_soak.py --minutes N on their own
bench: setup browser
	@for f in engine fourier adjoint app; do echo "== benchmarks/bench_$$f.py"; \
		$(PY) benchmarks/bench_$$f.py || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
