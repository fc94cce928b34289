#!/usr/bin/env bash
# GPU check of nerfcore, run on the GPU machine from the repository root, in one go (< 10 minutes):
#   1. nvidia-smi;
#   2. configure build-gpu with CUDA (sm_90) and build everything (-j16);
#   3. the GPU parity tests through ctest (label gpu);
#   4. compute-sanitizer memcheck (all GPU tests but the 300-step run) and racecheck (the stage
#      tests, whose kernels use shared memory) on build-gpu/tests/nerf_gpu_tests; any error fails;
#   5. when ./.gpu_data/lego_400 exists: nerf_train on lego at 400x400 for TRAIN_SECONDS, printing
#      steps/s and val PSNR, then a short run per precision (fp32 tf32 fp16 bf16) for steps/s.
# Every section runs even if an earlier one failed; the exit status is non-zero if any failed.
# Budgets (seconds) can be changed through the environment: TRAIN_SECONDS, PRECISION_SECONDS.
# Data does not travel from ../shared: before the device call, on the workstation,
#   mkdir -p .gpu_data && cp -r ../shared/data/nerf_synthetic/lego_400 .gpu_data/
# and name .gpu_data in the device tool's carry (the folder is git-ignored; lego_400 is 25 MB).
set -euo pipefail

TRAIN_SECONDS=${TRAIN_SECONDS:-60}
PRECISION_SECONDS=${PRECISION_SECONDS:-12}
BUILD=build-gpu
LOGS=$BUILD/gpu_check_logs
failed=()

section() { printf '\n===== %s =====\n' "$*"; }
fail() {
	echo "FAILED: $*"
	failed+=("$*")
}

section "nvidia-smi"
nvidia-smi || fail "nvidia-smi"

section "configure and build ($BUILD)"
cmake -S . -B "$BUILD" -DNERF_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DNERF_BUILD_BENCH=OFF
cmake --build "$BUILD" -j16

section "ctest -L gpu"
ctest --test-dir "$BUILD" -L gpu --output-on-failure || fail "ctest -L gpu"

SANITIZER=$(command -v compute-sanitizer || true)
for candidate in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
	if [ -z "$SANITIZER" ] && [ -x "$candidate" ]; then SANITIZER=$candidate; fi
done
TESTS=$BUILD/tests/nerf_gpu_tests
if [ -z "$SANITIZER" ]; then
	fail "compute-sanitizer not found (looked in PATH and /usr/local/cuda)"
else
	section "compute-sanitizer memcheck"
	# Includes the cuBLASLt GEMMs, so a wrong leading dimension or sub-block view shows up here.
	rc=0
	timeout 240 "$SANITIZER" --tool memcheck --error-exitcode 1 "$TESTS" "~[slow]" || rc=$?
	if [ "$rc" -eq 124 ]; then fail "memcheck timed out after 240 s (rerun it alone)"; elif [ "$rc" -ne 0 ]; then fail "memcheck"; fi
	section "compute-sanitizer racecheck"
	# The stage kernels are the ones with shared memory of our own (encoding staging, loss reduction).
	rc=0
	timeout 150 "$SANITIZER" --tool racecheck --error-exitcode 1 "$TESTS" "[gpu]~[mlp]~[model]" || rc=$?
	if [ "$rc" -eq 124 ]; then fail "racecheck timed out after 150 s (rerun it alone)"; elif [ "$rc" -ne 0 ]; then fail "racecheck"; fi
fi

# Prints "<label>: <steps> steps in <s> s = <steps/s> steps/s, val PSNR <dB>" from a run's summary.json.
report() {
	local label=$1 summary=$2
	if [ ! -f "$summary" ]; then
		fail "$label: no $summary"
		return
	fi
	python3 - "$label" "$summary" <<'PY' || fail "$label: unreadable $summary"
import json, sys
label, path = sys.argv[1], sys.argv[2]
s = json.load(open(path))
rate = s["steps"] / s["seconds"] if s["seconds"] > 0 else float("nan")
print(f"{label}: {s['steps']} steps in {s['seconds']:.1f} s = {rate:.2f} steps/s, "
      f"val PSNR {s['final_val_psnr']:.2f} dB ({s['device']})")
PY
}

# nerf_train on lego_400 (the 800x800 views box-filtered to 400x400, so no half_res; half_res is a
# flag, so "=False" is how the command line overrides a config file that sets it).
train() {
	local expname=$1 seconds=$2 n_val=$3
	shift 3
	"$BUILD/nerf_train" --config configs/lego.txt --datadir .gpu_data/lego_400 --half_res=False --device cuda \
		--basedir "$LOGS" --expname "$expname" --max_seconds "$seconds" --n_val_eval "$n_val" \
		--i_img 100000000 --i_weights 100000000 --i_testset 100000000 --i_video 100000000 "$@"
}

if [ -d .gpu_data/lego_400 ] && [ -f configs/lego.txt ]; then
	section "nerf_train lego_400, ${TRAIN_SECONDS} s (default precision)"
	rm -rf "$LOGS"
	mkdir -p "$LOGS"
	if train lego_default "$TRAIN_SECONDS" 2; then
		report "lego_400 ${TRAIN_SECONDS}s" "$LOGS/lego_default/summary.json"
	else
		fail "nerf_train lego_400"
	fi
	section "steps/s per precision, ${PRECISION_SECONDS} s each"
	for precision in fp32 tf32 fp16 bf16; do
		if train "lego_$precision" "$PRECISION_SECONDS" 1 --precision "$precision" --i_print 100000000 > "$LOGS/$precision.log" 2>&1; then
			report "lego_400 $precision" "$LOGS/lego_$precision/summary.json"
		else
			tail -20 "$LOGS/$precision.log" || true
			fail "nerf_train --precision $precision"
		fi
	done
else
	section "training runs skipped: need ./.gpu_data/lego_400 and configs/lego.txt"
fi

section "summary"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'FAILED: %s\n' "${failed[@]}"
	exit 1
fi
echo "gpu_check: all passed"
