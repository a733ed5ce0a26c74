#!/usr/bin/env bash
# Every GPU check of the project in one run (< 8 minutes on one H100 / H200), then a summary.
#
#   scripts/gpu_check.sh            # from the repository root
#
# Checks, in order (each with its own time limit; later ones are skipped once the budget is spent):
#   preflight   python, torch, the GPU, native bfloat16, the packages the project imports
#   cuda-tests  the CUDA tests (bfloat16 inference, shared frames, autocast training, metrics)
#   fixture     our network against the official forward fixture on the GPU, float32 (1e-5)
#   data-body   the generated SMPL-format body (skipped when present)
#   data        a small synthetic dataset, outside the repository's data/
#   amp-fp16    a short stage-1 run under TRAIN.AMP fp16
#   amp-bf16    a short stage-1 run under TRAIN.AMP bf16 (its checkpoint starts stage 2)
#   stage2-amp  one stage-2 epoch under TRAIN.AMP bf16 on the synthetic data, with validation
#   eval-*      the stage-2 model evaluated in float32 and in bfloat16; eval-compare: bfloat16's MPJPE
#               and PVE within 0.1 mm of float32's
#   ddp-nccl    torchrun, two processes on the one GPU with NCCL (NCCL refuses two ranks on one
#               device: reported as SKIP when it says so)
#   ddp-gloo    the same two processes with Gloo on the GPU (PMCE_DIST_BACKEND=gloo)
#   bench-*     scripts/bench_model.py: ours in float32, in bfloat16, and bfloat16 + torch.compile
# Exit status: 0 all checks passed (SKIPs allowed), 1 a check failed, 2 no usable GPU (nothing run).
# Logs: $GPU_CHECK_LOGS (default $OUT/gpu_check when $OUT is set, else /tmp/gpu_check/logs).
# GPU_CHECK_DEVICE=cpu runs the same flow on the CPU (slow; for testing this script where no GPU is).
set -uo pipefail

# No check starts after BUDGET_S and each is cut at BUDGET_S + 20 s (+10 s to die): under 8 minutes in all.
BUDGET_S=${GPU_CHECK_BUDGET_S:-440}
WORK=${GPU_CHECK_WORK:-/tmp/gpu_check}
LOGS=${GPU_CHECK_LOGS:-${OUT:+$OUT/gpu_check}}
LOGS=${LOGS:-$WORK/logs}
FIXTURE=${FIXTURE:-../shared/reference/pmce_forward_seed0.pt}
DEV=${GPU_CHECK_DEVICE:-cuda}
SCALE=${GPU_CHECK_TIME_SCALE:-1}  # multiplies every check's time limit (the CPU test needs ~4)
START=$(date +%s)
mkdir -p "$WORK" "$LOGS"
cd "$(dirname "$0")/.." || exit 2

if [ -x .venv/bin/python ]; then PY=${PYTHON:-.venv/bin/python}; else PY=${PYTHON:-python3}; fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}

# The small synthetic dataset and every run's output live under $WORK, never in the repository's data/.
DATA_OPTS=(DEVICE "$DEV" DATA.SYNTHETIC.DIR "$WORK/synthetic/pw3d_data" DATA.CACHE_DIR "$WORK/cache"
           DATA.SYNTHETIC.NUM_SEQUENCES "[24, 4, 4]" DATA.SYNTHETIC.WORKERS 8 DATA.WORKERS 2
           DATA.TRAIN_LIST "['synthetic']" DATA.VAL_LIST "['synthetic']" DATA.TEST_LIST "['synthetic']"
           OUTPUT_DIR "$WORK/output")
POSE_OPTS=(--cfg configs/synthetic_pose.yaml "${DATA_OPTS[@]}" TRAIN.EPOCHS 1 DATA.EPOCH_LENGTH 1024
           TRAIN.VAL_EVERY 0 TRAIN.SAVE_EVERY 0)

declare -a NAMES=() RESULTS=() SECONDS_TAKEN=() NOTES=()

elapsed() { echo $(( $(date +%s) - START )); }

record() {  # name result seconds note
    NAMES+=("$1"); RESULTS+=("$2"); SECONDS_TAKEN+=("$3"); NOTES+=("$4")
    printf '%-12s %-5s %4ss  %s\n' "$1" "$2" "$3" "$4"
}

# run_check NAME LIMIT_S COMMAND...: PASS when the command exits 0 within LIMIT_S, else FAIL
# (the last log line as the note); SKIP without running once the budget is spent.
run_check() {
    local name=$1 limit=$(( $2 * SCALE )); shift 2
    if [ "$(elapsed)" -ge "$BUDGET_S" ]; then record "$name" SKIP 0 "time budget spent"; return 1; fi
    local left=$(( BUDGET_S + 20 * SCALE - $(elapsed) ))
    [ "$limit" -gt "$left" ] && limit=$left
    local t0 rc
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >"$LOGS/$name.log" 2>&1
    rc=$?
    local took=$(( $(date +%s) - t0 )) note
    note=$(grep -v '^\s*$' "$LOGS/$name.log" | tail -n 1 | cut -c1-110)
    if [ $rc -ne 0 ] && grep -qE '(Error|error):' "$LOGS/$name.log"; then  # the error, not a traceback's end
        note=$(grep -E '(Error|error):' "$LOGS/$name.log" | grep -v ChildFailedError | tail -n 1 \
               | sed 's/^ *//' | cut -c1-110)
    fi
    if [ $rc -eq 0 ]; then record "$name" PASS "$took" "$note"
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then record "$name" FAIL "$took" "timed out after ${limit}s"
    else record "$name" FAIL "$took" "exit $rc: $note"; fi
    return $rc
}

# ---------------------------------------------------------------------------------------------------
preflight() {
    "$PY" - "$DEV" <<'EOF'
import importlib, sys
try:
    import torch
except Exception as err:
    print(f"torch does not import: {err}"); sys.exit(2)
if sys.argv[1] == "cpu":
    print(f"torch {torch.__version__} on the CPU (GPU_CHECK_DEVICE=cpu: a test of this script)"); sys.exit(0)
if not torch.cuda.is_available():
    print(f"torch {torch.__version__} sees no CUDA GPU (torch.version.cuda = {torch.version.cuda})")
    sys.exit(2)
needed = ("yacs", "numpy", "scipy", "smplx", "cv2", "tqdm", "pytest")
missing = [m for m in needed if importlib.util.find_spec(m) is None]
if missing:
    print(f"missing packages: {missing} (pip install -r requirements.txt -r requirements-dev.txt)")
    sys.exit(3)
from lib.models.precision import native_bf16
name = torch.cuda.get_device_name(0)
mem = torch.cuda.get_device_properties(0).total_memory / 2**30
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s): {name}, "
      f"{mem:.0f} GiB, native bf16 {native_bf16('cuda')}")
EOF
}

echo "gpu_check: logs in $LOGS, work folder $WORK, python $PY"
preflight >"$LOGS/preflight.log" 2>&1
rc=$?
cat "$LOGS/preflight.log"
if [ $rc -eq 2 ]; then
    echo "gpu_check: no usable CUDA GPU here, nothing was run (exit 2). Run it on a GPU machine."
    exit 2
fi
record preflight "$([ $rc -eq 0 ] && echo PASS || echo FAIL)" "$(elapsed)" \
    "$(tail -n 1 "$LOGS/preflight.log")"
[ $rc -ne 0 ] && { echo "gpu_check: preflight failed, see $LOGS/preflight.log"; exit 1; }

run_check cuda-tests 120 "$PY" -m pytest -q -p no:randomly -k cuda \
    tests/test_precision.py tests/test_shared_frames.py tests/test_metrics.py

if [ -f "$FIXTURE" ]; then
    run_check fixture 60 "$PY" scripts/check_official_fixture.py "$FIXTURE" --device "$DEV"
else
    record fixture SKIP 0 "$FIXTURE not found"
fi

run_check data-body 90 "$PY" scripts/make_synthetic_body.py
run_check data 150 "$PY" scripts/make_synthetic_data.py --cfg configs/synthetic_pose.yaml "${DATA_OPTS[@]}"
data_ok=$?

if [ $data_ok -eq 0 ]; then
    run_check amp-fp16 90 "$PY" train.py "${POSE_OPTS[@]}" TRAIN.AMP fp16 EXPERIMENT gpu_pose_fp16
    run_check amp-bf16 90 "$PY" train.py "${POSE_OPTS[@]}" TRAIN.AMP bf16 EXPERIMENT gpu_pose_bf16
    pose_ckpt="$WORK/output/gpu_pose_bf16/latest/last.pth"
    if [ -f "$pose_ckpt" ]; then
        run_check stage2-amp 150 "$PY" train.py --cfg configs/synthetic_mesh.yaml "${DATA_OPTS[@]}" \
            MODEL.POSE_CHECKPOINT "$pose_ckpt" TRAIN.EPOCHS 1 TRAIN.VAL_EVERY 1 TRAIN.AMP bf16 \
            EXPERIMENT gpu_mesh_bf16
    else
        record stage2-amp SKIP 0 "no stage-1 checkpoint"
    fi
    mesh_ckpt="$WORK/output/gpu_mesh_bf16/latest/last.pth"
    if [ -f "$mesh_ckpt" ]; then
        for p in float32 bfloat16; do
            run_check "eval-$p" 60 "$PY" eval.py --cfg configs/synthetic_mesh.yaml --checkpoint "$mesh_ckpt" \
                "${DATA_OPTS[@]}" EVAL.PRECISION $p EVAL.SAVE_VERTICES False EXPERIMENT "gpu_eval_$p"
        done
        # bfloat16's test metrics within 0.1 mm of float32's
        run_check eval-compare 30 "$PY" - "$WORK/output" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
m = {p: json.loads((out / f"gpu_eval_{p}" / "eval" / "latest" / "metrics.json").read_text())
     for p in ("float32", "bfloat16")}
m = {p: result["results"]["synthetic"] for p, result in m.items()}
diffs = {k: abs(m["bfloat16"]["metrics"][k] - m["float32"]["metrics"][k]) for k in ("MPJPE", "PVE")}
speed = {p: round(m[p]["frames_per_s"]) for p in m}
print(f"|bf16 - fp32|: MPJPE {diffs['MPJPE']:.4f} mm, PVE {diffs['PVE']:.4f} mm (limit 0.1); "
      f"frames/s {speed}")
sys.exit(0 if max(diffs.values()) <= 0.1 else 1)
EOF
    else
        record eval-float32 SKIP 0 "no stage-2 checkpoint"
    fi

    # torchrun: two processes of stage 1 on GPU 0, a few steps
    ddp_args=(-m torch.distributed.run --nproc_per_node 2 --master_addr 127.0.0.1 train.py "${POSE_OPTS[@]}"
              DEVICE "${DEV/cuda/cuda:0}" TRAIN.STOP_AFTER_ITERS 10)
    if ! run_check ddp-nccl 90 env PMCE_DIST_BACKEND=nccl "$PY" "${ddp_args[@]}" EXPERIMENT gpu_ddp_nccl \
            && grep -qiE "duplicate gpu|invalid usage" "$LOGS/ddp-nccl.log" 2>/dev/null; then
        RESULTS[-1]=SKIP
        NOTES[-1]="NCCL refuses two ranks on one GPU (expected with one GPU)"
        echo "             (ddp-nccl counted as SKIP: ${NOTES[-1]})"
    fi
    run_check ddp-gloo 120 env PMCE_DIST_BACKEND=gloo "$PY" "${ddp_args[@]}" EXPERIMENT gpu_ddp_gloo
fi

if [ "$DEV" = cpu ]; then  # the script's CPU test: the benchmark would take far longer than the budget
    for b in bench-fp32 bench-bf16 bench-compile; do record $b SKIP 0 "GPU_CHECK_DEVICE=cpu"; done
else
    run_check bench-fp32 100 "$PY" scripts/bench_model.py --device "$DEV" --quick --precision float32 \
        --cases mesh:forward:32,mesh:train:32
    run_check bench-bf16 150 "$PY" scripts/bench_model.py --device "$DEV" --quick --precision bfloat16 \
        --cases mesh:forward:1,mesh:forward:32,mesh:train:32,pose:train:32,mesh:video:32
    run_check bench-compile 150 "$PY" scripts/bench_model.py --device "$DEV" --quick --precision bfloat16 \
        --compile --cases mesh:forward:32
fi

# ---------------------------------------------------------------------------------------------------
echo
echo "==================== gpu_check summary ($(elapsed) s, logs in $LOGS) ===================="
failed=0
for i in "${!NAMES[@]}"; do
    printf '%-12s %-5s %4ss  %s\n' "${NAMES[$i]}" "${RESULTS[$i]}" "${SECONDS_TAKEN[$i]}" "${NOTES[$i]}"
    [ "${RESULTS[$i]}" = FAIL ] && failed=1
done
for b in bench-fp32 bench-bf16 bench-compile; do
    [ -s "$LOGS/$b.log" ] && { echo "--- $b"; grep -A20 '^device' "$LOGS/$b.log"; }
done
exit $failed
