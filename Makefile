# One-command workflows. Every target creates the virtual environment first if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The environment is rebuilt whenever the requirement files change.
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(REQ_HASH)
# pip compiles the bytecode of every installed file on one core (~40 s of the ~2 min install on 2 cores);
# installing without it and compiling on all cores afterwards takes ~25 s. A few files that only newer
# Pythons can compile (torch's test helpers) fail there as they do under pip: never imported, ignored.
PIP_INSTALL := -m pip install -qq --no-compile --disable-pip-version-check
COMPILE = -m compileall -qq -j 0 $(1)/lib || true
FIXTURE ?= ../shared/reference/pmce_forward_seed0.pt
SAMPLE_VIDEO ?= data/demo/sports2d_demo.mp4
# The demo runs the demo model (make demo-model) when it exists, else the model make run trained.
DEMO_MODEL := output/demo_mesh/latest/best.pth
DEMO_CHECKPOINT ?= $(if $(wildcard $(DEMO_MODEL)),$(DEMO_MODEL),output/synthetic_mesh/latest/best.pth)
# The synthetic test split with its rendered-and-detected twin and the real-motion split (eval.py overrides)
TEST_SPLITS := DATA.TEST_LIST "['synthetic', 'synthetic_rendered', 'real_motion']" \
	DATA.DETECTORS "['synthetic_rendered=vitpose', 'real_motion=vitpose']"

.PHONY: venv assets demo demo-model run ablation-imgfeat test test-fast test-blender lint format bench check-fixture body data

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) $(PIP_INSTALL) -r requirements.txt -r requirements-dev.txt
	$(PY) $(call COMPILE,$(VENV))
	touch $@

## assets: the demo's sample video, BlazePose's model files and DeepMimic's motion-capture clips, taken
## from wheels on the package index (sports2d, mediapipe, pybullet; nothing of them is installed)
assets: venv
	$(PY) scripts/fetch_assets.py --video $(SAMPLE_VIDEO)
	$(PY) scripts/fetch_mocap.py

## run: the main job on the embedded default, CPU only: generated body + synthetic videos, stage 1,
## stage 2, evaluation on the synthetic test split: the network, the SMPL body fitted to it as the demo
## shows it, and the mean-target baseline for reference
run: venv
	@start=$$(date +%s); set -e; \
	$(PY) scripts/make_synthetic_body.py; \
	$(PY) scripts/make_synthetic_data.py; \
	$(PY) train.py --cfg configs/synthetic_pose.yaml $(RUN_OPTS); \
	$(PY) train.py --cfg configs/synthetic_mesh.yaml $(RUN_OPTS); \
	$(PY) eval.py --cfg configs/synthetic_mesh.yaml --checkpoint output/synthetic_mesh/latest/best.pth \
		EVAL.MEAN_BASELINE True EVAL.FIT_BODY True $(RUN_OPTS); \
	echo "make run finished in $$(( $$(date +%s) - start )) s"

## demo-model: the model the demo uses when it exists (<= 2 h on 2 CPU cores; docs/experiments.md): BlazePose-
## fitted noise, acrobatic, athletic and free-limb motion, 2.5x the videos, 16-frame windows, 8x / 14x the
## stage-1 / stage-2 training; evaluated (network and fitted SMPL body, flip test) on its synthetic test
## split and on the rendered-and-detected and real-motion splits shared by all models, beside BlazePose's
## own world landmarks
demo-model: assets
	@start=$$(date +%s); set -e; \
	$(PY) scripts/make_synthetic_body.py; \
	$(PY) scripts/make_synthetic_data.py --cfg configs/demo_mesh.yaml; \
	$(PY) scripts/make_synthetic_data.py --cfg configs/synthetic_mesh.yaml --dataset synthetic_rendered; \
	$(PY) scripts/make_synthetic_data.py --cfg configs/synthetic_mesh.yaml --dataset real_motion; \
	$(PY) train.py --cfg configs/demo_pose.yaml $(RUN_OPTS); \
	$(PY) train.py --cfg configs/demo_mesh.yaml $(RUN_OPTS); \
	$(PY) eval.py --cfg configs/demo_mesh.yaml --checkpoint $(DEMO_MODEL) $(TEST_SPLITS) EVAL.FIT_BODY True \
		$(RUN_OPTS); \
	echo "make demo-model finished in $$(( $$(date +%s) - start )) s"

## ablation-imgfeat: paper Table 4 on synthetic data (run after make run): both stages without image
## features, then both stages with features that carry an emulated shape estimate (own dataset)
ablation-imgfeat: venv
	$(PY) train.py --cfg configs/synthetic_pose_no_imgfeat.yaml $(RUN_OPTS)
	$(PY) train.py --cfg configs/synthetic_mesh_no_imgfeat.yaml $(RUN_OPTS)
	$(PY) eval.py --cfg configs/synthetic_mesh_no_imgfeat.yaml \
		--checkpoint output/synthetic_mesh_no_imgfeat/latest/best.pth $(RUN_OPTS)
	$(PY) scripts/make_synthetic_data.py --cfg configs/synthetic_pose_shape_code.yaml
	$(PY) train.py --cfg configs/synthetic_pose_shape_code.yaml $(RUN_OPTS)
	$(PY) train.py --cfg configs/synthetic_mesh_shape_code.yaml $(RUN_OPTS)
	$(PY) eval.py --cfg configs/synthetic_mesh_shape_code.yaml \
		--checkpoint output/synthetic_mesh_shape_code/latest/best.pth $(RUN_OPTS)

## demo: the demo on the sample video (fetched from the sports2d wheel) with the demo model when it exists,
## else the model make run trained;
## outputs in output/demo/ (DEMO_OPTS adds KEY VALUE overrides, DEMO_CHECKPOINT another model)
demo: assets
	@test -f $(DEMO_CHECKPOINT) || { echo "error: no trained model at $(DEMO_CHECKPOINT): run 'make run' first" \
		"(or pass DEMO_CHECKPOINT=FILE)" >&2; exit 2; }
	$(PY) demo.py --video $(SAMPLE_VIDEO) --checkpoint $(DEMO_CHECKPOINT) --out output/demo $(DEMO_OPTS)

## test: create the environment and fetch the assets if needed, then run the whole test suite
test: assets
	$(PY) -m pytest -q

## test-fast: skip the slow end-to-end tests
test-fast: assets
	$(PY) -m pytest -q -m "not slow"

## test-blender: the rig export tests with Blender importing the .glb and .bvh (installs Debian's blender
## and the numpy its glTF importer needs when blender is missing; apt-get needs root)
test-blender: venv
	command -v blender >/dev/null || { apt-get update && apt-get install -y blender python3-numpy; }
	$(PY) -m pytest -q tests/test_demo_rig_export.py

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
