#!/usr/bin/env bash
# shellcheck disable=SC2329  # zoo, train_json and show_result run through part "$@"
# One short check of lightning-zoo on a GPU machine, to run once there (about 5 minutes on an
# H100-class GPU for parts 1-5, at most ~8, and a few more for part 6):
#
#   ZOO_DATA_DIR=/path/to/data bash benchmarks/gpu_check.sh [RESULTS_DIR]
#
# ZOO_DATA_DIR is a torchvision root holding MNIST/raw/; RESULTS_DIR (default ./gpu-results)
# gets one log per part (everything printed is also on the terminal, through tee), the parts'
# JSON files, the run directories and summary.txt. The parts:
#
#   1. compare   the activation study fused against --separate --jobs 2
#                (benchmarks/compare_speed.py --repeats 1)
#   2. speed     one MLP run against the hand-written eager loop, both on the GPU
#                (benchmarks/train_speed.py --variants handwritten zoo, 2 epochs)
#   3. bf16      zoo train --precision bf16-mixed, 2 epochs
#   4. compile   zoo train --compile, 2 epochs (the first includes the compilation)
#   5. cnn       the cnn recipe of docs/recipes.md cut to 3 epochs, to 99 % MNIST test
#                accuracy, with the time it took
#   6. handwritten  zoo against the hand-written PyTorch loop, both on the GPU: the study
#                stacked against zoo compare (fused) and one run after another against
#                --separate --jobs 2, one run, the cnn step, the study at 12/48/192 runs
#                (benchmarks/handwritten.py --accelerator gpu, one repeat; its table in
#                handwritten.log, every figure in handwritten.json, the plot handwritten.png)
#
# A part that fails is reported in summary.txt and the others still run; the script exits with
# 1 if any part failed. PYTHON picks the interpreter (default: python).
set -euo pipefail

RESULTS=${1:-./gpu-results}
: "${ZOO_DATA_DIR:?set ZOO_DATA_DIR to a torchvision root holding MNIST/raw/}"
PYTHON=${PYTHON:-python}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
SUMMARY="$RESULTS/summary.txt"
: >"$SUMMARY"
FAILED=0
cd "$REPO"

zoo() {
    "$PYTHON" -m zoo "$@"
}

# part NAME COMMAND...: run COMMAND, its output to the terminal and to RESULTS/NAME.log; record
# its exit status and wall time in summary.txt.
part() {
    local name=$1 started status elapsed
    shift
    echo "=== $name: $*" | tee -a "$SUMMARY"
    started=$(date +%s%N)
    if "$@" 2>&1 | tee "$RESULTS/$name.log"; then status=ok; else status="FAILED (exit ${PIPESTATUS[0]})"; fi
    [[ $status == ok ]] || FAILED=1
    elapsed=$((($(date +%s%N) - started) / 1000000))
    printf '=== %s: %s, %d.%03d s wall\n' "$name" "$status" $((elapsed / 1000)) $((elapsed % 1000)) \
        | tee -a "$SUMMARY"
}

# train_json NAME ARGS...: zoo train ARGS --json into RESULTS/runs; the result in NAME.json.
train_json() {
    local name=$1
    shift
    zoo train "$@" --data-dir "$ZOO_DATA_DIR" --output-dir "$RESULTS/runs" --json \
        | tee "$RESULTS/$name.json"
}

# show_result NAME [MIN_ACC]: a run's test accuracy and training seconds; fails below MIN_ACC.
show_result() {
    "$PYTHON" - "$RESULTS/$1.json" "${2:-0}" <<'EOF'
import json, sys
lines = open(sys.argv[1]).read().strip().splitlines()
if not lines:
    sys.exit("no result: the run failed (see its log)")
result = json.loads(lines[-1])
least = float(sys.argv[2])
print(f"test acc {result['test_acc']:.2%}, train_seconds {result['train_seconds']:.1f}, "
      f"{result['steps']} steps on {result['accelerator']}")
if result["test_acc"] < least:
    sys.exit(f"test accuracy {result['test_acc']:.2%} is below {least:.0%}")
EOF
}

{
    echo "# lightning-zoo GPU check, $(date -Iseconds), $(uname -n)"
    echo "repository: $REPO at $(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "($(git status --short 2>/dev/null | wc -l) changed files)"
    echo "CPUs: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    nvidia-smi || echo "nvidia-smi failed"
    "$PYTHON" - <<'EOF'
import platform
import lightning, torch, zoo
print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}), lightning {lightning.__version__}, "
      f"lightning-zoo {zoo.__version__}")
print("GPU:", torch.cuda.get_device_name() if torch.cuda.is_available() else "none visible to torch")
EOF
} 2>&1 | tee "$RESULTS/header.txt"

part compare "$PYTHON" benchmarks/compare_speed.py --data-dir "$ZOO_DATA_DIR" --repeats 1 \
    --accelerator gpu --output "$RESULTS/compare_speed.json"

part speed "$PYTHON" benchmarks/train_speed.py --data-dir "$ZOO_DATA_DIR" --epochs 2 \
    --variants handwritten zoo --accelerator gpu --no-startup --no-doc \
    --output "$RESULTS/train_speed.json"

part bf16 train_json bf16 --precision bf16-mixed --accelerator gpu --epochs 2 --seed 0
part bf16-result show_result bf16

part compile train_json compile --compile --accelerator gpu --epochs 2 --seed 0
part compile-result show_result compile

part cnn train_json cnn --arch cnn --epochs 3 --batch-size 128 \
    --optimizer adamw:weight_decay=0.05 --scheduler onecycle --label-smoothing 0.1 \
    --augment affine:degrees=10,translate=0.1 --seed 0 --accelerator gpu
part cnn-result show_result cnn 0.99

part handwritten "$PYTHON" benchmarks/handwritten.py --data-dir "$ZOO_DATA_DIR" \
    --accelerator gpu --repeats 1 --run-repeats 1 --no-doc --plot "$RESULTS/handwritten.png" \
    --output "$RESULTS/handwritten.json"

echo "--- summary ($RESULTS/summary.txt)"
cat "$SUMMARY"
exit "$FAILED"
