# Two commands on a fresh machine (README): `make demo` runs the main job, `make test` the suite.
# Each creates (or reuses) the local virtual environment .venv first, installing the package with
# its test extras at the versions pinned in constraints.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/demo

.PHONY: demo test install clean

# constraints.txt pins the tested stack, so a fresh .venv gets the versions the suite passed on;
# editing it (or setup.cfg) re-runs the install into the existing .venv.
$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' -c constraints.txt
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m launch.demo --workdir=$(WORKDIR)

test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 --durations=15 tests

clean:
	rm -rf $(VENV) runs
