# Two commands do everything on a fresh machine:
#   make run   - set up, build the demo screen and its results (first time only), open the dashboard
#   make test  - set up, then run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SETUP  := $(VENV)/.stamp-setup
DEMO   := data/demo
TRAIN  := data/demo-train
PORT   ?= 8501

.PHONY: run test setup demo clean-data help

help:
	@echo "make run   - set up, build the demo screen, open the dashboard at http://localhost:$(PORT)"
	@echo "make test  - set up, run the test suite"

$(SETUP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	# efaar-benchmarking ships the relationship tables; its declared dependencies are heavy and unneeded
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps efaar-benchmarking==1.0
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $@

setup: $(SETUP)

# Each step writes its output atomically, so a target file existing means the step finished.
$(DEMO)/dataset.json: | $(SETUP)
	$(BIN)/bioviz demo --preset default --out $(DEMO) --seed 0

$(TRAIN)/dataset.json: | $(SETUP)
	$(BIN)/bioviz demo --preset default --split train --out $(TRAIN) --seed 0

$(DEMO)/models/weakly_supervised.pt: $(TRAIN)/dataset.json | $(SETUP)
	$(BIN)/bioviz train --dataset $(TRAIN) --out $@ --seed 0

$(DEMO)/results/summary.json: $(DEMO)/dataset.json $(DEMO)/models/weakly_supervised.pt
	$(BIN)/bioviz embed --dataset $(DEMO) --embedders all
	$(BIN)/bioviz benchmark --dataset $(DEMO) --adjust density

demo: $(DEMO)/results/summary.json

run: demo
	$(BIN)/bioviz app --dataset demo --port $(PORT)

test: $(SETUP)
	$(BIN)/python -m pytest -q -ra

clean-data:
	rm -rf data/demo data/demo-train
