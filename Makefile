# One-command workflows. Every target creates the virtual environment first if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The environment is rebuilt whenever the requirement files change.
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(REQ_HASH)
FIXTURE ?= ../shared/reference/pmce_forward_seed0.pt

.PHONY: venv run ablation-imgfeat test test-fast lint format bench check-fixture body data

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $@

## run: the main job on the embedded default, CPU only: generated body + synthetic videos, stage 1,
## stage 2, evaluation on the synthetic test split (with the mean-target baseline for reference)
run: venv
	@start=$$(date +%s); set -e; \
	$(PY) scripts/make_synthetic_body.py; \
	$(PY) scripts/make_synthetic_data.py; \
	$(PY) train.py --cfg configs/synthetic_pose.yaml $(RUN_OPTS); \
	$(PY) train.py --cfg configs/synthetic_mesh.yaml $(RUN_OPTS); \
	$(PY) eval.py --cfg configs/synthetic_mesh.yaml --checkpoint output/synthetic_mesh/latest/best.pth \
		EVAL.MEAN_BASELINE True $(RUN_OPTS); \
	echo "make run finished in $$(( $$(date +%s) - start )) s"

## ablation-imgfeat: paper Table 4 on synthetic data: both stages without image features (run after make run)
ablation-imgfeat: venv
	$(PY) train.py --cfg configs/synthetic_pose_no_imgfeat.yaml $(RUN_OPTS)
	$(PY) train.py --cfg configs/synthetic_mesh_no_imgfeat.yaml $(RUN_OPTS)
	$(PY) eval.py --cfg configs/synthetic_mesh_no_imgfeat.yaml \
		--checkpoint output/synthetic_mesh_no_imgfeat/latest/best.pth $(RUN_OPTS)

## test: create the environment if needed, then run the whole test suite
test: venv
	$(PY) -m pytest -q

## test-fast: skip the slow end-to-end tests
test-fast: venv
	$(PY) -m pytest -q -m "not slow"

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

## check-fixture: compare our network with the official forward fixture
check-fixture: venv
	$(PY) scripts/check_official_fixture.py $(FIXTURE)

## bench: model throughput and memory (CPU, and GPU when present)
bench: venv
	$(PY) scripts/bench_model.py

## body: write the generated SMPL-format body to data/ (never overwrites your own SMPL files)
body: venv
	$(PY) scripts/make_synthetic_body.py

## data: generate the synthetic 3DPW-format dataset (skipped when current; needs the body: make body)
data: venv
	$(PY) scripts/make_synthetic_data.py
