PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is installed first and pinned: the CPU build of 2.13.0 is what these
# machines carry; a bare requirement would pull a multi-GB CUDA build.
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,figures,mnist5k]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/lgn demo

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs build *.egg-info
