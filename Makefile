# Two entry points for a fresh machine: `make demo` and `make test`. Both install the network stack and the
# test tools (extra `test`, which includes `network`); `pip install .` alone is the standalone crf + data readers.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m experiments.demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -n 2 -q tests $(ARGS)

clean:
	rm -rf $(VENV) runs
