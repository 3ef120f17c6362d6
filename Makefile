PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean

$(PY):
	@echo "make setup: creating the virtual environment $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)

# torch is installed first and pinned: the CPU build of 2.13.0 is what these
# machines carry; a bare requirement would pull a multi-GB CUDA build.
# Each step says what it does, since together they take minutes.
$(STAMP): $(PY) pyproject.toml
	@echo "make setup: [1/3] upgrading pip"
	$(PY) -m pip install --quiet --upgrade pip
	@echo "make setup: [2/3] installing torch 2.13.0"
	$(PY) -m pip install --quiet torch==2.13.0
	@echo "make setup: [3/3] installing lgn and its test, figures and mnist5k extras"
	$(PY) -m pip install --quiet -e '.[test,figures,mnist5k]'
	touch $(STAMP)
	@echo "make setup: done; $(VENV) is ready"

setup: $(STAMP)

demo: setup
	$(VENV)/bin/lgn demo

# one thread unless OMP_NUM_THREADS says otherwise, as the lgn command defaults to (docs/performance.md)
test: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs build *.egg-info
