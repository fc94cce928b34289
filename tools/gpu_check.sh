#!/usr/bin/env bash
# The GPU check of nerfcore: everything a GPU machine must run, in one command (docs/GPU_CHECK.md).
#
#   bash tools/gpu_check.sh --bundle    here (the workstation): puts what the bare GPU machine lacks
#                                       into .gpu_bundle/ (git-ignored): the Debian packages of
#                                       tools/library_packages.txt and the runtime libraries they need,
#                                       unpacked with dpkg -x and packed as deps.tar.gz, and lego_400
#                                       from ../shared/data. Needs apt-get (no root).
#   bash tools/gpu_check.sh --dry-run   here: proves the bundle complete. Unpacks it into a scratch
#                                       prefix and configures and builds the GPU targets with this
#                                       machine's own copies of those packages hidden (unshare --mount;
#                                       needs root), runs what needs no GPU, skips the rest.
#   bash tools/gpu_check.sh             on the GPU machine (repository root, .gpu_bundle carried):
#                                       unpacks, configures against the bundle (no pkg-config, no -dev
#                                       packages needed), builds the targets it runs (-j16), then runs
#                                       sections, each under its own time budget and all under one
#                                       deadline: the GPU tests, compute-sanitizer memcheck and
#                                       racecheck (after a 5-second probe), bench_kernels, and training
#                                       on lego_400 (60 s at the default precision, then steps/s per
#                                       precision). A section that no longer fits is skipped and says so.
#
# On the GPU machine, from a copy of the repository with .gpu_bundle/ beside tools/, about 9 minutes:
#   bash tools/gpu_check.sh
# Results: everything goes under $OUT when it is set (else .gpu_check_out/): summary.md (the table,
# also printed last), results.json, gpu_tests.log, bench_kernels.json and logs.tar.gz (every log,
# the MLP plans, training summaries).
#
# Exit status: 0 when every section that ran passed; 1 otherwise. Inside, a section's status is its
# command's: 0 pass, 124/137 timed out, 99 sanitizer errors found (compute-sanitizer
# --error-exitcode 99, so that they differ from test failures), 77 skipped (no GPU), else failed.
#
# Environment: GPU_CHECK_BUDGET (seconds for all sections, default 530), GPU_CHECK_JOBS (default 16;
# 2 for --dry-run), GPU_CHECK_WORK (scratch folder, default /tmp/nerf_gpu_check), TRAIN_SECONDS (60),
# PRECISION_SECONDS (6). Budgets (s): configure 40, build 120, tests 110, sanitizer probe 5,
# memcheck 55, racecheck 30, bench 40, training 125: 525 in all, under the 9 minutes a call may use.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
BUNDLE=$ROOT/.gpu_bundle
ARCH_TRIPLET=x86_64-linux-gnu

die() {
	echo "gpu_check: $*" >&2
	exit 1
}

# ------------------------------------------------------------------------------------------------
# --bundle

# The -dev packages of tools/library_packages.txt and, for each, the runtime libraries it pins to its
# own version (libstb-dev -> libstb0, libtinyexr-dev -> libtinyexr1d): what links at build time and
# loads at run time. Base libraries (libc, libstdc++, zlib) are on every machine.
bundle_packages() {
	local p dep
	while read -r p; do
		[ -n "$p" ] && [ "${p#\#}" = "$p" ] || continue
		echo "$p"
		apt-cache show --no-all-versions "$p" 2>/dev/null | sed -n 's/^Depends: //p' | tr ',' '\n' |
			sed -n 's/^ *\([a-z0-9.+-]*\) *(= .*/\1/p' | while read -r dep; do echo "$dep"; done
	done <"$ROOT/tools/library_packages.txt"
}

make_bundle() {
	command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "--bundle needs apt-get and dpkg (Debian/Ubuntu)"
	local packages debs prefix
	mapfile -t packages < <(bundle_packages | sort -u)
	[ ${#packages[@]} -gt 0 ] || die "no packages found from tools/library_packages.txt (apt-cache show failed?)"
	echo "bundle: ${packages[*]}"
	debs=$(mktemp -d)
	prefix=$(mktemp -d)
	trap 'rm -rf "$debs" "$prefix"' RETURN
	chmod 755 "$debs"  # apt's download user only warns about a private folder, but it does
	if ! (cd "$debs" && apt-get download "${packages[@]}" >/dev/null 2>"$debs/apt.log"); then
		cat "$debs/apt.log"
		echo "bundle: apt-get download failed; updating the package lists once"
		local sudo_cmd=""
		[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
		$sudo_cmd apt-get update -qq && (cd "$debs" && apt-get download "${packages[@]}" >/dev/null) ||
			die "apt-get download ${packages[*]} failed"
	fi
	for deb in "$debs"/*.deb; do dpkg -x "$deb" "$prefix" || die "dpkg -x $deb failed"; done
	rm -rf "$prefix/usr/share/doc" "$prefix/usr/share/man" "$prefix/usr/share/lintian"
	mkdir -p "$BUNDLE"
	tar -C "$prefix" -czf "$BUNDLE/deps.tar.gz" . || die "tar of the unpacked packages failed"
	(cd "$debs" && ls *.deb) >"$BUNDLE/packages.txt"
	local lego=$ROOT/../shared/data/nerf_synthetic/lego_400
	[ -d "$BUNDLE/lego_400" ] && chmod -R u+w "$BUNDLE/lego_400"
	rm -rf "$BUNDLE/lego_400"
	if [ -d "$lego" ]; then
		cp -r --no-preserve=mode "$lego" "$BUNDLE/lego_400"
	else
		echo "bundle: $lego not found: the training sections will be skipped on the GPU machine"
	fi
	local kib
	kib=$(du -sk "$BUNDLE" | cut -f1)
	echo "bundle: $BUNDLE holds $((kib / 1024)) MiB ($(wc -l <"$BUNDLE/packages.txt") packages$([ -d "$BUNDLE/lego_400" ] && echo ", lego_400"))"
	# The bundle travels with the working tree to the GPU machine; together they must stay small (64 MiB).
	[ "$kib" -lt $((56 * 1024)) ] || die "the bundle is over 56 MiB: it and the working tree would not fit one device call"
	echo 'bundle: next, on the GPU machine, in a copy of this repository with .gpu_bundle/ in it: bash tools/gpu_check.sh'
}

# ------------------------------------------------------------------------------------------------
# sections, budgets, the summary

START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-530}
WORK=${GPU_CHECK_WORK:-/tmp/nerf_gpu_check}
OUTDIR=${OUT:-$ROOT/.gpu_check_out}
LOGS=$WORK/logs
SUMMARY_ROWS=()
FAILED=0

elapsed() { echo $(($(date +%s) - START)); }
time_left() { echo $((BUDGET - $(elapsed))); }

record() {  # name status seconds note
	SUMMARY_ROWS+=("| $1 | $2 | $3 | ${4:-} |")
	case "$2" in pass | skipped*) ;; *) FAILED=1 ;; esac
	printf '%-34s %-22s %5ss %s\n' "$1" "$2" "$3" "${4:-}"
}

# section NAME BUDGET_S MIN_S LOG COMMAND...: runs COMMAND under `timeout -k` with the smaller of its
# budget and the time left, or skips it when less than MIN_S is left. Returns the command's status.
section() {
	local name=$1 budget=$2 min=$3 log=$4
	shift 4
	local left
	left=$(time_left)
	printf '\n===== %s (budget %ss, %ss left) =====\n' "$name" "$budget" "$left"
	if [ "$left" -lt "$min" ]; then
		record "$name" "skipped: no time" 0 "${left}s left, needs ${min}s"
		return 200
	fi
	[ "$budget" -le "$left" ] || budget=$left
	local t0 rc status
	t0=$(date +%s)
	# A child bash, so that COMMAND may be one of this script's functions (exported below).
	timeout -k 10 "$budget" bash -c '"$@"' "$name" "$@" >"$log" 2>&1
	rc=$?
	tail -n 25 "$log"
	case $rc in
	0) status=pass ;;
	124 | 137) status="TIMEOUT (${budget}s)" ;;
	99) status="SANITIZER ERRORS" ;;
	77) status="skipped: no GPU" ;;
	*) status="FAILED (exit $rc)" ;;
	esac
	record "$name" "$status" $(($(date +%s) - t0)) "${SECTION_NOTE:-}"
	SECTION_NOTE=""
	return $rc
}

write_outputs() {
	mkdir -p "$OUTDIR"
	{
		echo "# nerfcore gpu_check, $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo
		echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
		echo "$DEVICE_LINE"
		echo
		echo "| section | status | seconds | note |"
		echo "| --- | --- | --- | --- |"
		printf '%s\n' "${SUMMARY_ROWS[@]}"
		[ -f "$LOGS/training.md" ] && { echo; cat "$LOGS/training.md"; }
	} >"$OUTDIR/summary.md"
	python3 - "$OUTDIR/summary.md" "$OUTDIR/results.json" <<'PY' 2>/dev/null || true
import json, sys
rows = [l.strip("|\n").split("|") for l in open(sys.argv[1]) if l.startswith("| ") and not l.startswith("| section") and not l.startswith("| ---")]
json.dump([{"section": r[0].strip(), "status": r[1].strip(), "seconds": r[2].strip(), "note": r[3].strip() if len(r) > 3 else ""} for r in rows],
          open(sys.argv[2], "w"), indent=1)
PY
	[ -f "$LOGS/gpu_tests.log" ] && cp "$LOGS/gpu_tests.log" "$OUTDIR/gpu_tests.log"
	[ -f "$LOGS/bench_kernels.json" ] && cp "$LOGS/bench_kernels.json" "$OUTDIR/bench_kernels.json"
	tar -C "$WORK" -czf "$OUTDIR/logs.tar.gz" logs 2>/dev/null || true
	echo
	echo "===== summary (also $OUTDIR/summary.md) ====="
	cat "$OUTDIR/summary.md"
}

# ------------------------------------------------------------------------------------------------
# unpack, configure, build

unpack_and_configure() {
	[ -f "$BUNDLE/deps.tar.gz" ] || die "no $BUNDLE/deps.tar.gz: run 'bash tools/gpu_check.sh --bundle' here first and carry .gpu_bundle"
	rm -rf "$WORK/prefix" && mkdir -p "$WORK/prefix" && tar -C "$WORK/prefix" -xzf "$BUNDLE/deps.tar.gz" || return 1
	local p=$WORK/prefix/usr generator=()
	# A build folder configured from another checkout (an earlier dry run elsewhere) cannot be reused.
	if [ -f "$BUILD/CMakeCache.txt" ] && ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$BUILD/CMakeCache.txt"; then
		rm -rf "$BUILD"
	fi
	command -v ninja >/dev/null && generator=(-G Ninja)
	# The prefix's cmake packages are found through CMAKE_PREFIX_PATH; the paths under lib/<triplet>
	# are named too, for a compiler that reports no library architecture.
	cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DNERF_CUDA=ON \
		-DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_PREFIX_PATH="$p" -DCMAKE_LIBRARY_PATH="$p/lib/$ARCH_TRIPLET" \
		-Dtinyexr_DIR="$p/lib/$ARCH_TRIPLET/cmake/tinyexr" -DCatch2_DIR="$p/lib/cmake/Catch2"
}

build_targets() {
	cmake --build "$BUILD" -j "$JOBS" --target nerf_gpu_tests nerf_train bench_kernels "$@"
}

# ------------------------------------------------------------------------------------------------
# the checks

gpu_tests() {
	"$BUILD/tests/nerf_gpu_tests" --durations yes
}

memcheck() {
	# The GEMMs included, so a wrong leading dimension or block view shows up here; the production-size
	# and multi-hundred-step tests are left out (memcheck slows every kernel down many times).
	"$SANITIZER" --tool memcheck --error-exitcode 99 "$BUILD/tests/nerf_gpu_tests" "~[slow]~[big]"
}

racecheck() {
	# The stage kernels are the ones with shared memory of our own (encoding staging, loss and
	# bias-gradient reductions).
	"$SANITIZER" --tool racecheck --error-exitcode 99 "$BUILD/tests/nerf_gpu_tests" "[gpu]~[model]~[big]~[slow]"
}

bench() {
	"$BUILD/bench/bench_kernels" --device cuda --render_hw 400 --json "$LOGS/bench_kernels.json"
}

# nerf_train on lego_400 (the 800x800 views box-filtered to 400x400: half_res=False).
train_run() {
	local expname=$1 seconds=$2 n_val=$3
	shift 3
	"$BUILD/nerf_train" --config "$ROOT/configs/lego.txt" --datadir "$BUNDLE/lego_400" --half_res=False --device cuda \
		--basedir "$LOGS/train" --expname "$expname" --max_seconds "$seconds" --n_val_eval "$n_val" --no_reload \
		--i_img 100000000 --i_weights 100000000 --i_testset 100000000 --i_video 100000000 "$@"
}

# One line of training.md from a run's summary.json.
train_report() {
	python3 - "$1" "$2" >>"$LOGS/training.md" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
s = json.load(open(path))
rate = s["steps"] / s["seconds"] if s.get("seconds") else float("nan")
peak = s.get("peak_memory_bytes", 0) / 2**20
print(f"| {label} | {s['steps']} | {s['seconds']:.1f} | {rate:.2f} | {s.get('final_val_psnr', float('nan')):.2f} | {peak:.0f} |")
PY
}

training() {
	local seconds=${TRAIN_SECONDS:-60} each=${PRECISION_SECONDS:-6} ok=0 precision
	{
		echo "| lego_400 run | steps | train s | steps/s | val PSNR | peak MiB |"
		echo "| --- | --- | --- | --- | --- | --- |"
	} >"$LOGS/training.md"
	if train_run lego_default "$seconds" 4 >"$LOGS/train_default.log" 2>&1; then
		train_report "default precision, ${seconds} s, PSNR over 4 val views" "$LOGS/train/lego_default/summary.json" || ok=1
	else
		tail -20 "$LOGS/train_default.log"
		ok=1
	fi
	for precision in fp32 tf32 fp16 bf16; do
		if train_run "lego_$precision" "$each" 1 --precision "$precision" >"$LOGS/train_$precision.log" 2>&1; then
			train_report "$precision, ${each} s, PSNR over 1 val view" "$LOGS/train/lego_$precision/summary.json" || ok=1
		else
			tail -20 "$LOGS/train_$precision.log"
			ok=1
		fi
	done
	cat "$LOGS/training.md"
	return $ok
}

# ------------------------------------------------------------------------------------------------
# the whole check (GPU machine), and the dry run of it (here)

run_check() {  # dry: 1 for --dry-run
	local dry=$1
	BUILD=$WORK/build
	rm -rf "$LOGS" && mkdir -p "$LOGS" || die "cannot write $LOGS"
	if [ "$dry" = 1 ]; then
		DEVICE_LINE="dry run on $(hostname) (no GPU): bundle completeness only"
	else
		DEVICE_LINE="device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi failed')"
	fi
	echo "$DEVICE_LINE"
	export LD_LIBRARY_PATH="$WORK/prefix/usr/lib/$ARCH_TRIPLET${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	export ROOT BUNDLE ARCH_TRIPLET WORK BUILD JOBS LOGS
	export -f die unpack_and_configure build_targets gpu_tests memcheck racecheck bench train_run train_report training

	section "configure (bundle prefix)" 40 20 "$LOGS/configure.log" unpack_and_configure || {
		write_outputs
		return 1
	}
	local extra_targets=()
	[ "$dry" = 1 ] && extra_targets=(nerf_inspect)
	section "build (-j$JOBS)" "$BUILD_BUDGET" 60 "$LOGS/build.log" build_targets "${extra_targets[@]}" || {
		write_outputs
		return 1
	}
	if [ "$dry" = 1 ]; then
		# What runs without a GPU: the GPU tests' binary must load (every runtime library from the bundle)
		# and skip; nerf_train must read lego_400's PNGs and JSON and say it has no CUDA device.
		section "gpu tests (skip without a GPU)" 60 5 "$LOGS/gpu_tests.log" "$BUILD/tests/nerf_gpu_tests"
		[ -d "$BUNDLE/lego_400" ] && section "nerf_inspect loads lego_400" 120 10 "$LOGS/inspect.log" \
			"$BUILD/nerf_inspect" --config "$ROOT/configs/lego.txt" --datadir "$BUNDLE/lego_400" --half_res=False
		for s in "sanitizer probe" memcheck racecheck "bench_kernels (cuda)" "training lego_400"; do
			record "$s" "skipped: dry run" 0 "needs the GPU"
		done
	else
		section "gpu tests (nerf_gpu_tests)" 110 30 "$LOGS/gpu_tests.log" gpu_tests
		SANITIZER=$(command -v compute-sanitizer || true)
		for candidate in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
			[ -z "$SANITIZER" ] && [ -x "$candidate" ] && SANITIZER=$candidate
		done
		export SANITIZER
		if [ -z "$SANITIZER" ]; then
			record "compute-sanitizer" "FAILED" 0 "not found in PATH or /usr/local/cuda"
		else
			# Some device runtimes refuse compute-sanitizer at once ("Device not supported"); 5 s tell.
			# Still running after 5 s (exit 124) is a slow start, not a refusal.
			timeout -k 2 5 "$SANITIZER" --tool memcheck --error-exitcode 99 "$BUILD/tests/nerf_gpu_tests" \
				"gpu: memory accounting and stage preconditions" >"$LOGS/sanitizer_probe.log" 2>&1
			local probe=$?
			if [ $probe -eq 0 ] || [ $probe -eq 124 ] || [ $probe -eq 137 ]; then
				record "sanitizer probe" pass 5 "exit $probe"
				section "memcheck" 55 20 "$LOGS/memcheck.log" memcheck
				section "racecheck" 30 15 "$LOGS/racecheck.log" racecheck
			else
				tail -5 "$LOGS/sanitizer_probe.log"
				record "memcheck, racecheck" "skipped: refused" 0 "compute-sanitizer probe exit $probe (sanitizer_probe.log)"
			fi
		fi
		section "bench_kernels (cuda, 400x400 render)" 40 20 "$LOGS/bench_kernels.log" bench
		if [ -d "$BUNDLE/lego_400" ]; then
			section "training lego_400" 125 80 "$LOGS/training.log" training
		else
			record "training lego_400" "skipped: no data" 0 "no .gpu_bundle/lego_400"
		fi
	fi
	write_outputs
	return $FAILED
}

# Here, as root: a private mount namespace in which every file the bundle provides is hidden at its
# system path (an empty tmpfs over a folder whose entries all come from the bundle, /dev/null over a
# single file), so that a configure or build that still reached for the system's copy fails.
dry_run() {
	[ "$(id -u)" -eq 0 ] || die "--dry-run hides system files with mounts: run it as root"
	command -v unshare >/dev/null || die "--dry-run needs unshare (util-linux)"
	[ -f "$BUNDLE/deps.tar.gz" ] || make_bundle
	local listing
	listing=$(mktemp)
	tar -tzf "$BUNDLE/deps.tar.gz" >"$listing" || die "cannot read $BUNDLE/deps.tar.gz"
	unshare --mount --propagation private env GPU_CHECK_HIDE_LIST="$listing" bash "$ROOT/tools/gpu_check.sh" --dry-run-inside
	local rc=$?
	rm -f "$listing"
	return $rc
}

hide_system_copies() {
	python3 - "$GPU_CHECK_HIDE_LIST" >"$WORK/hide.sh" <<'PY' || die "cannot compute what to hide"
import os, sys
paths = set()
for line in open(sys.argv[1]):
    p = line.strip().lstrip("./").rstrip("/")
    if p:
        paths.add(p)
mounts = []
children = {}
for p in paths:
    parent = os.path.dirname(p)
    children.setdefault(parent, set()).add(os.path.basename(p))
def visit(rel):
    system = "/" + rel
    if os.path.isdir(system) and not os.path.islink(system):
        entries = set(os.listdir(system))
        if rel and entries and entries <= children.get(rel, set()):
            mounts.append(f"mount -t tmpfs -o size=1k,mode=755 none '{system}'")
            return
        for name in sorted(children.get(rel, ())):
            visit(os.path.join(rel, name) if rel else name)
    elif os.path.lexists(system):
        target = os.path.realpath(system)
        line = f"mount --bind /dev/null '{target}'"
        if os.path.isfile(target) and line not in mounts:
            mounts.append(line)
visit("")
print("\n".join(mounts))
PY
	echo "dry run: hiding $(grep -c . "$WORK/hide.sh") system paths that the bundle provides"
	bash -e "$WORK/hide.sh" || die "hiding the system copies failed"
	# A check that the hiding took: these are in the bundle, so the system must no longer show them.
	! [ -s /usr/include/tinyexr.h ] || die "dry run: /usr/include/tinyexr.h is still visible"
	! [ -e /usr/include/eigen3/Eigen/Dense ] || die "dry run: /usr/include/eigen3 is still visible"
}

case "${1:-}" in
--bundle)
	make_bundle
	;;
--dry-run)
	dry_run
	;;
--dry-run-inside)
	JOBS=${GPU_CHECK_JOBS:-2}
	BUDGET=${GPU_CHECK_BUDGET:-1500}  # two cores build in minutes what sixteen build in one
	BUILD_BUDGET=1200
	WORK=${GPU_CHECK_WORK:-/tmp/nerf_gpu_check_dry}
	LOGS=$WORK/logs
	OUTDIR=${OUT:-$ROOT/.gpu_check_out}
	mkdir -p "$WORK"
	hide_system_copies
	run_check 1
	;;
"")
	JOBS=${GPU_CHECK_JOBS:-16}
	BUILD_BUDGET=120
	mkdir -p "$WORK"
	run_check 0
	;;
-h | --help)
	sed -n '2,/^set -uo/p' "$0" | sed '$d'
	;;
*)
	die "unknown argument '$1' (--bundle, --dry-run, or none on the GPU machine; --help)"
	;;
esac
