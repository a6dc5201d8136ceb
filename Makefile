# Two commands do all set-up on a fresh machine:
#   make demo   creates .venv, installs flatgroove (with a General MIDI SoundFont), runs the
#               main job on the embedded default
#   make test   creates .venv, installs flatgroove with its test tools, runs the test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,soundfont]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/flatgroove demo --out out/demo --soundfont auto

test: $(STAMP) system-deps
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# Real MIDI ports (JACK dummy driver) and the browser (Chromium) for the tests that need them.
# Best effort: without root or a package mirror those tests skip with a clear reason.
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  need=""; \
	  command -v jackd >/dev/null || need="$$need jackd2"; \
	  command -v chromium >/dev/null || need="$$need chromium"; \
	  if [ -n "$$need" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null) \
	      || echo "system-deps: could not install$$need; their tests will skip"; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) out runs .pytest_cache
