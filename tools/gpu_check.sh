#!/usr/bin/env bash
# The GPU check of nerfcore: everything a GPU machine, lent for a few minutes, must run, in one
# command. docs/GPU_CHECK.md says how to use it and how to read what it brings back.
#
#   bash tools/gpu_check.sh --bundle    here (the workstation): puts what the bare GPU machine lacks
#                                       into .gpu_bundle/ (git-ignored): the Debian packages of
#                                       tools/library_packages.txt and the runtime libraries they need,
#                                       unpacked with dpkg -x and packed as deps.tar.gz, lego_400 from
#                                       ../shared/data, and commit.txt + source.sha256 (the commit and
#                                       the checksums of its files: the GPU machine gets no .git).
#                                       Needs apt-get (no root).
#   bash tools/gpu_check.sh --dry-run   here, as root: proves the bundle complete (makes it first when
#                                       there is none). Unpacks it into a scratch prefix and configures
#                                       and builds the GPU targets with this machine's own copies of
#                                       those packages hidden (unshare --mount), runs what needs no GPU,
#                                       checks the plan's budgets and that what it left in the output
#                                       folder fits what a GPU run brings back.
#   bash tools/gpu_check.sh --plan      prints the plan (sections, budgets, estimates) and checks that
#                                       it fits the total, also with the sections still to come.
#   bash tools/gpu_check.sh --check-groups BINARY
#                                       checks that the test groups select every test of BINARY (a
#                                       nerf_gpu_tests) exactly once; needs no GPU.
#   bash tools/gpu_check.sh --check-out FOLDER
#                                       checks that FOLDER fits what a GPU run brings back.
#   bash tools/gpu_check.sh             on the GPU machine, from the repository root, with .gpu_bundle
#                                       copied beside it: unpacks, configures against the bundle (no
#                                       pkg-config, no -dev packages needed), builds the targets it
#                                       runs, then runs the plan's sections in order, each under its own
#                                       budget and all under one deadline. A section that no longer fits
#                                       is skipped and says so.
#
# Copy the repository with .gpu_bundle to the GPU machine and run `bash tools/gpu_check.sh` there,
# allowing the command 540 s or more (the sections' budgets add up to at most 510 s). Results land in
# $OUT when it is set, else .gpu_check_out/, refreshed after every section: at most 8 files of at most
# 16 MiB each (summary.md, results.json, gpu_tests.log, sanitizer.log, bench_kernels.json,
# bench_kernels.log, training.log, logs.tar.gz); docs/GPU_CHECK.md describes each.
#
# Exit status: 0 when every section that ran passed; 1 otherwise. Inside, a section's status is its
# command's: 0 pass, 124/137 timed out, 99 sanitizer errors found (compute-sanitizer
# --error-exitcode 99, so that they differ from test failures), 77 skipped (no GPU), else failed.
#
# Environment: GPU_CHECK_BUDGET (seconds for all sections, default 510), GPU_CHECK_JOBS (default 16;
# 2 for --dry-run), GPU_CHECK_WORK (scratch folder, default /tmp/nerf_gpu_check), TRAIN_SECONDS (the
# NeRF run, 60), PRECISION_SECONDS (each precision's run, 5), NGP_SECONDS (60).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
BUNDLE=$ROOT/.gpu_bundle
ARCH_TRIPLET=x86_64-linux-gnu
TOTAL_LIMIT=510          # 8.5 minutes: what the sections' budgets may add up to
MAX_OUT_FILES=8          # what a GPU run brings back from its output folder
MAX_OUT_BYTES=$((16 * 1024 * 1024))
CAP_BYTES=$((15 * 1024 * 1024))  # each output file is cut to this, keeping its head and its tail

# Temporary folders, removed however the script ends (a RETURN trap would fire again in the caller).
CLEANUP=()
trap 'rm -rf "${CLEANUP[@]}"' EXIT

die() {
	echo "gpu_check: $*" >&2
	exit 1
}

# ------------------------------------------------------------------------------------------------
# the plan

# The GPU tests run as separate processes, cheapest first: an illegal address is sticky for the
# whole CUDA context, so a fault in one group cannot make the later groups fail the same way, and
# under the deadline the expensive tests are the ones cut off. Catch2 filters by tag ("~" is not,
# "," is or); --check-groups proves that together they select every test exactly once.
#   name|filter
TEST_GROUPS=(
	"stages|[gpu]~[occupancy]~[mlp]~[model]~[slow]~[big]"
	"occupancy|[occupancy]~[model]~[slow]~[big]"
	"mlp|[mlp]~[slow]~[big]"
	"model|[model]~[slow]~[big]"
	"slow and big|[slow],[big]"
)
# compute-sanitizer: memcheck in two processes (the stage kernels, then the MLP with its GEMMs, so a
# wrong leading dimension or block view shows up); racecheck on the kernels with shared memory of
# their own (encoding staging, loss and scan reductions, occupancy) and one small unfused MLP case
# for the bias-gradient reduction, not on the ~2000 cuBLASLt GEMMs of the MLP tests.
MEMCHECK_STAGES="[gpu]~[mlp]~[model]~[slow]~[big]"
MEMCHECK_MLP="[mlp]~[slow]~[big]"
RACECHECK="[gpu]~[mlp]~[model]~[slow]~[big],[mlp][small]"
# The groups as lines: the sections run in a child bash, to which arrays do not export.
TEST_GROUPS_LINES=$(printf '%s\n' "${TEST_GROUPS[@]}")

# One line per section, run in this order:
#   plan NAME BUDGET_S MIN_S OUTPUT ESTIMATE COMMAND [ARGS...]
# BUDGET_S is the section's time limit, sized from ESTIMATE (what it should take on the GPU machine,
# and where that number comes from) with a margin; with less than MIN_S left before the deadline the
# section is skipped. OUTPUT is the file of the output folder its log joins (see write_outputs).
# Measured times (summary.md, --durations in gpu_tests.log) are what to correct the estimates from.
make_plan() {  # $1: 1 to plan the sections of files that do not exist yet as well (for --plan)
	local future=${1:-0}
	PLAN=()
	plan "configure" 15 10 logs "~5 s: cmake, CUDA and cuBLAS detection (3 s in the dry run)" unpack_and_configure
	plan "build (-j$JOBS)" "$BUILD_BUDGET" 40 logs \
		"~30 s on 16 cores (the dry run: 109 s on 2 cores, 199 CPU-s, longest file bench_kernels.cpp 20 s)" \
		build_targets $BUILD_EXTRA
	plan "test groups" 5 2 gpu_tests "~1 s: lists the tests, no GPU" check_test_groups "$BUILD/tests/nerf_gpu_tests"
	# Each group: ~2 s of CUDA and cuBLASLt start, then its tests; the CPU references run on 16 cores.
	plan "tests: stages" 15 5 gpu_tests "~5 s: 10 tests, CPU references of ~1e5 samples" gpu_test_group stages
	plan "tests: occupancy" 15 5 gpu_tests "~5 s: 5 tests" gpu_test_group occupancy
	plan "tests: mlp" 30 10 gpu_tests "~15 s: 12 tests (8 NeRF MLP, ~90 MLPs, CPU references up to n = 4096; 4 small MLP)" \
		gpu_test_group mlp
	plan "tests: model" 25 10 gpu_tests "~12 s: builtin-scene steps and renders, CPU and GPU" gpu_test_group model
	plan "tests: slow and big" 50 15 gpu_tests \
		"~25 s: CPU 300 steps dense + marched (36 s on 2 cores here), GPU 4 x 300 steps, 2000 fp16 passes, production MLPs" \
		gpu_test_group "slow and big"
	plan "sanitizer probe" 10 5 sanitizer "5 s tell whether compute-sanitizer runs here at all" sanitizer_probe
	plan "memcheck: stages" 25 10 sanitizer "~15 s: 15 tests, kernels ~20x slower" sanitize memcheck "$MEMCHECK_STAGES"
	plan "memcheck: mlp" 30 10 sanitizer "~20 s: 8 tests, the GEMMs at n <= 65536" sanitize memcheck "$MEMCHECK_MLP"
	plan "racecheck" 15 8 sanitizer "~8 s: 16 tests, the GEMMs left out" sanitize racecheck "$RACECHECK"
	plan "bench_kernels" 35 15 bench_kernels \
		"~20 s: 4 precisions, heavy stages 4 runs each (400x400 render ~1 s fp32), CPU reference of a 4096-ray step (~3.6 TFLOP)" \
		bench
	plan "training: lego.txt" 100 40 training \
		"~90 s: 60 s + 3 x 5 s, 4 starts, loads (0.7 s on 2 cores) and evaluations (~3 s each)" train_nerf
	if [ "$future" = 1 ] || [ -f "$ROOT/configs/lego_ngp.txt" ]; then
		plan "training: lego_ngp.txt" 70 30 training "~65 s: 60 s, start, load, evaluation" \
			train_config lego_ngp "${NGP_SECONDS:-60}"
	fi
}

plan() {
	local name=$1 budget=$2 min=$3 output=$4 estimate=$5
	shift 5
	# The command quoted, so that run_plan gets back the same words (filters, names with spaces).
	PLAN+=("$name"$'\t'"$budget"$'\t'"$min"$'\t'"$output"$'\t'"$estimate"$'\t'"$(printf '%q ' "$@")")
}

plan_total() {
	local row total=0
	for row in "${PLAN[@]}"; do
		IFS=$'\t' read -r _ budget _ <<<"$row"
		total=$((total + budget))
	done
	echo "$total"
}

print_plan() {
	local row name budget min output estimate
	printf '%-24s %7s %5s  %-14s %s\n' section budget min output "estimate"
	for row in "${PLAN[@]}"; do
		IFS=$'\t' read -r name budget min output estimate _ <<<"$row"
		printf '%-24s %6ss %4ss  %-14s %s\n' "$name" "$budget" "$min" "$output" "$estimate"
	done
	printf '%-24s %6ss (at most %ss)\n' "total" "$(plan_total)" "$TOTAL_LIMIT"
}

# The plan with and without the sections still to come must fit the total.
check_plan() {
	local ok=0 now future
	make_plan 0
	now=$(plan_total)
	print_plan
	make_plan 1
	future=$(plan_total)
	[ "$future" = "$now" ] || echo "with the sections planned for files still to come (configs/lego_ngp.txt): ${future}s"
	if [ "$now" -gt "$TOTAL_LIMIT" ] || [ "$future" -gt "$TOTAL_LIMIT" ]; then
		echo "gpu_check: the plan's budgets add up to ${now}s (${future}s with every section), over ${TOTAL_LIMIT}s"
		ok=1
	fi
	make_plan 0
	return $ok
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
		# OpenVDB writes .vdb volumes on the host (nerf_export --vdb), which the GPU check never runs; its
		# runtime closure (TBB, Blosc, Boost.Iostreams, log4cplus) stays out of the bundle, and the GPU build
		# is configured with NERF_OPENVDB=OFF.
		case "$p" in libopenvdb-dev | libboost-dev) continue ;; esac
		echo "$p"
		apt-cache show --no-all-versions "$p" 2>/dev/null | sed -n 's/^Depends: //p' | tr ',' '\n' |
			sed -n 's/^ *\([a-z0-9.+-]*\) *(= .*/\1/p' | while read -r dep; do echo "$dep"; done
	done <"$ROOT/tools/library_packages.txt"
}

# commit.txt and source.sha256: which commit the copied tree is, for a machine without .git, and
# the checksums that tell on that machine whether its files are still that commit's.
write_source_id() {
	mkdir -p "$BUNDLE"
	if ! git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1; then
		echo "bundle: no git checkout here: commit.txt says unknown"
		echo "unknown" >"$BUNDLE/commit.txt"
		rm -f "$BUNDLE/source.sha256"
		return 0
	fi
	local changed
	changed=$(git -C "$ROOT" status --porcelain --untracked-files=no | wc -l)
	{
		git -C "$ROOT" rev-parse HEAD
		echo "short $(git -C "$ROOT" rev-parse --short HEAD)"
		echo "uncommitted changes to $changed tracked files when written"
		echo "written $(date -u '+%Y-%m-%d %H:%M UTC')"
	} >"$BUNDLE/commit.txt"
	(cd "$ROOT" && git ls-files -z | xargs -0 sha256sum 2>/dev/null) >"$BUNDLE/source.sha256"
}

make_bundle() {
	command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "--bundle needs apt-get and dpkg (Debian/Ubuntu)"
	local packages debs prefix deb
	mapfile -t packages < <(bundle_packages | sort -u)
	[ ${#packages[@]} -gt 0 ] || die "no packages found from tools/library_packages.txt (apt-cache show failed?)"
	echo "bundle: ${packages[*]}"
	debs=$(mktemp -d)
	prefix=$(mktemp -d)
	CLEANUP+=("$debs" "$prefix")
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
	rm -rf "$debs" "$prefix"
	local lego=$ROOT/../shared/data/nerf_synthetic/lego_400
	[ -d "$BUNDLE/lego_400" ] && chmod -R u+w "$BUNDLE/lego_400"
	rm -rf "$BUNDLE/lego_400"
	if [ -d "$lego" ]; then
		cp -r --no-preserve=mode "$lego" "$BUNDLE/lego_400"
	else
		echo "bundle: $lego not found: the training sections will be skipped on the GPU machine"
	fi
	write_source_id
	local kib
	kib=$(du -sk "$BUNDLE" | cut -f1)
	echo "bundle: $BUNDLE holds $((kib / 1024)) MiB ($(wc -l <"$BUNDLE/packages.txt") packages$([ -d "$BUNDLE/lego_400" ] && echo ", lego_400"), commit $(sed -n 's/^short //p' "$BUNDLE/commit.txt"))"
	# The repository and .gpu_bundle travel together: 64 MiB at most.
	[ "$kib" -lt $((56 * 1024)) ] || die "the bundle is over 56 MiB: with the working tree it would be over 64 MiB"
	echo "bundle: now copy the repository with .gpu_bundle to the GPU machine and run 'bash tools/gpu_check.sh' there"
}

# ------------------------------------------------------------------------------------------------
# sections, the summary, the output folder

START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-$TOTAL_LIMIT}
WORK=${GPU_CHECK_WORK:-/tmp/nerf_gpu_check}
OUTDIR=${OUT:-$ROOT/.gpu_check_out}
LOGS=$WORK/logs
BUILD=$WORK/build
JOBS=${GPU_CHECK_JOBS:-16}
BUILD_BUDGET=60
BUILD_EXTRA=""  # targets built besides those the GPU run needs (the dry run's nerf_inspect)
SUMMARY_ROWS=()
RESULT_ROWS=()
FAILED=0
DEVICE_LINE=""
COMMIT_LINE=""

elapsed() { echo $(($(date +%s) - START)); }
time_left() { echo $((BUDGET - $(elapsed))); }

record() {  # name status seconds budget note output
	SUMMARY_ROWS+=("| $1 | $2 | $3 | $4 | ${5:-} |")
	RESULT_ROWS+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"$4"$'\t'"${5:-}"$'\t'"${6:-}")
	case "$2" in pass | skipped*) ;; *) FAILED=1 ;; esac
	printf '%-28s %-22s %5ss of %4ss %s\n' "$1" "$2" "$3" "$4" "${5:-}"
}

slug() { echo "$1" | tr -c 'A-Za-z0-9\n' '_' | tr -s '_' | sed 's/_$//'; }

# run_section NAME BUDGET_S MIN_S OUTPUT COMMAND...: runs COMMAND under `timeout -k` with the smaller
# of its budget and the time left (or skips it when less than MIN_S is left), its output into
# $LOGS/<NAME>.log. Returns the command's status.
run_section() {
	local name=$1 budget=$2 min=$3 output=$4
	shift 4
	local left log
	left=$(time_left)
	log="$LOGS/$(printf '%02d' "$SECTION_INDEX")_$(slug "$name").log"
	SECTION_INDEX=$((SECTION_INDEX + 1))
	printf '\n===== %s (budget %ss, %ss left) =====\n' "$name" "$budget" "$left"
	if [ "$left" -lt "$min" ]; then
		record "$name" "skipped: no time" 0 "$budget" "${left}s left, needs ${min}s" "$output"
		return 200
	fi
	local limit=$budget
	[ "$limit" -le "$left" ] || limit=$left
	local t0 rc status
	t0=$(date +%s)
	echo "===== $name: $* (budget ${budget}s, limit ${limit}s)" >"$log"
	# A child bash, so that COMMAND may be one of this script's functions (exported below); it may
	# leave a note for the summary in SECTION_NOTE_FILE.
	SECTION_NOTE_FILE="$log.note" timeout -k 10 "$limit" bash -c '"$@"' "$name" "$@" >>"$log" 2>&1
	rc=$?
	tail -n 20 "$log"
	case $rc in
	0) status=pass ;;
	124 | 137) status="TIMEOUT (${limit}s)" ;;
	99) status="SANITIZER ERRORS" ;;
	77) status="skipped: no GPU" ;;
	78) status="skipped" ;;
	*) status="FAILED (exit $rc)" ;;
	esac
	local note=""
	[ -f "$log.note" ] && note=$(cat "$log.note") && rm -f "$log.note"
	record "$name" "$status" $(($(date +%s) - t0)) "$budget" "$note" "$output"
	echo "$output" >"$log.output"
	case $rc in 0 | 77 | 78) ;; *) touch "$log.failed" ;; esac
	write_outputs >/dev/null
	return $rc
}

# Cuts a file over CAP_BYTES to its first and last CAP_BYTES / 2, with a line saying so.
cap_file() {
	local f=$1 size half
	size=$(stat -c %s "$f")
	[ "$size" -le "$CAP_BYTES" ] && return 0
	half=$((CAP_BYTES / 2 - 200))
	{
		head -c "$half" "$f"
		printf '\n\n[... gpu_check: %d bytes cut here: the file had %d bytes, at most %d return ...]\n\n' \
			$((size - 2 * half)) "$size" "$CAP_BYTES"
		tail -c "$half" "$f"
	} >"$f.cut" && mv "$f.cut" "$f"
}

# Greppable lines the tests print for the record: the measured 300-step PSNR differences, fused-plan
# misses and MLP plan statistics.
findings() {
	cat "$LOGS"/*.log 2>/dev/null | grep -E '^(PSNR-300|FUSED-PLAN MISS|plan stats) ' | sort -u
}

source_line() {
	if git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1; then
		echo "commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
		return
	fi
	if [ ! -f "$BUNDLE/commit.txt" ]; then
		echo "commit unknown (no .git and no .gpu_bundle/commit.txt)"
		return
	fi
	local short written differ=""
	short=$(sed -n 's/^short //p' "$BUNDLE/commit.txt")
	written=$(sed -n 's/^written //p' "$BUNDLE/commit.txt")
	if [ -f "$BUNDLE/source.sha256" ]; then
		local bad
		bad=$(cd "$ROOT" && sha256sum -c --quiet "$BUNDLE/source.sha256" 2>/dev/null | grep -c ': FAILED')
		if [ "$bad" -eq 0 ]; then differ="every tracked file as committed"; else differ="$bad files differ from that commit (the bundle is older than the tree)"; fi
	fi
	echo "commit ${short:-unknown} (from .gpu_bundle/commit.txt, written $written${differ:+; $differ})"
}

# The output folder, rewritten after every section: at most MAX_OUT_FILES files.
write_outputs() {
	mkdir -p "$OUTDIR"
	local f
	{
		echo "# nerfcore gpu_check, $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo
		echo "$COMMIT_LINE"
		echo "$DEVICE_LINE"
		echo "$(elapsed) s of ${BUDGET} s used"
		echo
		echo "| section | status | seconds | budget | note |"
		echo "| --- | --- | --- | --- | --- |"
		printf '%s\n' "${SUMMARY_ROWS[@]}"
		if [ -f "$LOGS/training.md" ]; then
			echo
			cat "$LOGS/training.md"
		fi
		if [ -n "$(findings)" ]; then
			echo
			echo '```'
			findings
			echo '```'
		fi
		# A configure or build that failed has no file of its own but logs.tar.gz: its tail here.
		for f in "$LOGS"/*.log; do
			[ -f "$f.output" ] && [ "$(cat "$f.output")" = logs ] && [ -f "$f.failed" ] || continue
			echo
			echo "The end of $(basename "$f") (all of it in logs.tar.gz):"
			echo '```'
			tail -n 30 "$f"
			echo '```'
		done
		local failures
		failures=$(grep -h -E ':[0-9]+: FAILED:$' "$LOGS"/*.log 2>/dev/null | sort | uniq -c | head -20)
		if [ -n "$failures" ]; then
			echo
			echo "Failed assertions (file:line, count; the test logs have the details):"
			echo '```'
			echo "$failures"
			echo '```'
		fi
	} >"$OUTDIR/summary.md"
	findings >"$WORK/findings.txt"
	printf '%s\n' "${RESULT_ROWS[@]}" | python3 -c '
import json, sys
out, logs, findings, commit, device = sys.argv[1:6]
rows = [l.rstrip("\n").split("\t") for l in sys.stdin if l.strip()]
sections = [{"section": r[0], "status": r[1], "seconds": int(r[2]), "budget": int(r[3]), "note": r[4], "output": r[5]}
            for r in rows if len(r) >= 6]
training = []
try:
    training = [json.loads(line) for line in open(logs + "/training.jsonl")]
except OSError:
    pass
json.dump({"commit": commit, "device": device, "sections": sections, "training": training,
           "findings": [l.rstrip("\n") for l in open(findings) if l.strip()]}, open(out, "w"), indent=1)
' "$OUTDIR/results.json" "$LOGS" "$WORK/findings.txt" "$COMMIT_LINE" "$DEVICE_LINE" 2>/dev/null || true
	# Each section's log joins the file its plan line names, in the order they ran.
	local output
	for output in gpu_tests sanitizer bench_kernels training; do
		: >"$OUTDIR/$output.log.new"
		for f in "$LOGS"/*.log; do
			[ -f "$f.output" ] && [ "$(cat "$f.output")" = "$output" ] || continue
			cat "$f" >>"$OUTDIR/$output.log.new"
			echo >>"$OUTDIR/$output.log.new"
		done
		if [ -s "$OUTDIR/$output.log.new" ]; then
			mv "$OUTDIR/$output.log.new" "$OUTDIR/$output.log"
			cap_file "$OUTDIR/$output.log"
		else
			rm -f "$OUTDIR/$output.log.new"
		fi
	done
	[ -f "$OUTDIR/bench_kernels.json" ] && cap_file "$OUTDIR/bench_kernels.json"
	# Every log (text only: the training runs' checkpoints stay in $WORK/train), large ones left to
	# the capped copies above.
	(cd "$WORK" && find logs -type f -size -4M -print0 | tar --null -T - -czf "$OUTDIR/logs.tar.gz") 2>/dev/null || true
	cap_file "$OUTDIR/logs.tar.gz"
}

# What a GPU run brings back from its output folder: at most 8 files of at most 16 MiB, plain files.
check_out_folder() {
	local dir=$1 n=0 bad=0 f size
	while IFS= read -r -d '' f; do
		n=$((n + 1))
		size=$(stat -c %s "$f")
		printf '  %-22s %9d bytes\n' "${f#"$dir"/}" "$size"
		if [ "$size" -gt "$MAX_OUT_BYTES" ]; then
			echo "  ${f#"$dir"/} is over 16 MiB"
			bad=1
		fi
	done < <(find "$dir" -mindepth 1 -type f -print0 | sort -z)
	if [ -n "$(find "$dir" -mindepth 1 ! -type f ! -type d)" ]; then
		echo "  $dir holds something that is neither a file nor a folder"
		bad=1
	fi
	if [ -n "$(find "$dir" -mindepth 2 -type f)" ]; then
		echo "  $dir holds files in subfolders"
		bad=1
	fi
	echo "  $n files (at most $MAX_OUT_FILES)"
	[ "$n" -le "$MAX_OUT_FILES" ] || bad=1
	return $bad
}

# ------------------------------------------------------------------------------------------------
# unpack, configure, build

unpack_and_configure() {
	[ -f "$BUNDLE/deps.tar.gz" ] || die "no $BUNDLE/deps.tar.gz: run 'bash tools/gpu_check.sh --bundle' on the workstation and copy .gpu_bundle along"
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
		-Dtinyexr_DIR="$p/lib/$ARCH_TRIPLET/cmake/tinyexr" -DCatch2_DIR="$p/lib/cmake/Catch2" \
		-DNERF_COMMIT="$COMMIT_ID" -DNERF_OPENVDB=OFF
}

build_targets() {
	cmake --build "$BUILD" -j "$JOBS" --target nerf_gpu_tests nerf_train bench_kernels "$@"
}

# ------------------------------------------------------------------------------------------------
# the checks

# Every test of the binary in exactly one group of TEST_GROUPS (no GPU needed: it only lists).
check_test_groups() {
	local binary=$1 row name filter ok=0 all counts n
	[ -x "$binary" ] || die "$binary: no such executable (build nerf_gpu_tests first)"
	all=$(mktemp)
	counts=$(mktemp)
	"$binary" --list-test-names-only | sed '/^$/d' | sort >"$all"
	if [ "${PIPESTATUS[0]}" -ne 0 ] || [ ! -s "$all" ]; then
		rm -f "$all" "$counts"
		die "$binary --list-test-names-only failed or listed no tests"
	fi
	while IFS= read -r row; do
		name=${row%%|*}
		filter=${row#*|}
		n=$("$binary" --list-test-names-only "$filter" | sed '/^$/d' | tee -a "$counts" | wc -l)
		printf '  group %-14s %3d tests  %s\n' "$name" "$n" "$filter"
	done <<<"$TEST_GROUPS_LINES"
	local total missing twice
	total=$(wc -l <"$all")
	missing=$(sort "$counts" | comm -23 "$all" -)
	twice=$(sort "$counts" | uniq -d)
	echo "  $total tests in all, $(wc -l <"$counts") selected by the groups"
	if [ -n "$missing" ]; then
		echo "  in no group (give them a tag that a group selects):"
		echo "$missing" | sed 's/^/    /'
		ok=1
	fi
	if [ -n "$twice" ]; then
		echo "  in more than one group:"
		echo "$twice" | sed 's/^/    /'
		ok=1
	fi
	rm -f "$all" "$counts"
	return $ok
}

gpu_test_group() {
	local want=$1 row
	while IFS= read -r row; do
		if [ "${row%%|*}" = "$want" ]; then
			"$BUILD/tests/nerf_gpu_tests" --durations yes "${row#*|}"
			return
		fi
	done <<<"$TEST_GROUPS_LINES"
	die "no test group named '$want'"
}

sanitizer_probe() {
	[ -n "$SANITIZER" ] || {
		echo "compute-sanitizer not found in PATH or /usr/local/cuda" >"$SECTION_NOTE_FILE"
		return 1
	}
	# Some device runtimes refuse compute-sanitizer at once ("Device not supported"): 5 s tell.
	# Still running after 5 s (exit 124) is a slow start, not a refusal.
	timeout -k 2 5 "$SANITIZER" --tool memcheck --error-exitcode 99 "$BUILD/tests/nerf_gpu_tests" \
		"gpu: memory accounting and stage preconditions"
	local rc=$?
	if [ $rc -eq 0 ] || [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		echo "exit $rc" >"$SECTION_NOTE_FILE"
		touch "$SANITIZER_OK"
		return 0
	fi
	echo "refused: exit $rc; memcheck and racecheck are skipped" >"$SECTION_NOTE_FILE"
	return 1
}

sanitize() {  # tool filter
	[ -f "$SANITIZER_OK" ] || {
		echo "the sanitizer probe failed (its note says why)" >"$SECTION_NOTE_FILE"
		return 78
	}
	"$SANITIZER" --tool "$1" --error-exitcode 99 "$BUILD/tests/nerf_gpu_tests" "$2"
}

bench() {
	# Fewer repeats for the heavy stages (train_step, render_image): a 400x400 render is ~49 TFLOP in
	# fp32, about a second; 1 untimed + 1 warm-up + 2 timed runs per precision instead of 1 + 3 + 20.
	# The JSON is rewritten after every stage, straight into the output folder.
	"$BUILD/bench/bench_kernels" --device cuda --render_hw 400 --repeats 5 --warmup 1 --heavy_repeats 2 \
		--json "$OUTDIR/bench_kernels.json"
}

# nerf_train on lego_400 (the 800x800 views box-filtered to 400x400: half_res=False). Checkpoints go
# to $WORK/train, which nothing returns; the logs and summaries to $LOGS.
train_run() {  # expname config seconds n_val [args...]
	local expname=$1 config=$2 seconds=$3 n_val=$4
	shift 4
	"$BUILD/nerf_train" --config "$ROOT/configs/$config.txt" --datadir "$BUNDLE/lego_400" --half_res=False --device cuda \
		--basedir "$WORK/train" --expname "$expname" --max_seconds "$seconds" --n_val_eval "$n_val" --no_reload \
		--i_img 100000000 --i_weights 100000000 --i_testset 100000000 --i_video 100000000 "$@"
}

# One row of training.md and training.jsonl from a run's summary.json.
train_report() {  # label expname
	local summary=$WORK/train/$2/summary.json
	mkdir -p "$LOGS/train"
	cp "$summary" "$LOGS/train/$2.summary.json" 2>/dev/null
	python3 - "$1" "$summary" "$LOGS/training.md" "$LOGS/training.jsonl" <<'PY'
import json, sys
label, path, md, jl = sys.argv[1:5]
s = json.load(open(path))
rate = s["steps"] / s["seconds"] if s.get("seconds") else float("nan")
psnr = s.get("final_val_psnr")
peak = s.get("peak_memory_bytes", 0) / 2**20
open(md, "a").write(f"| {label} | {s['steps']} | {s['seconds']:.1f} | {rate:.2f} | "
                    f"{psnr if psnr is None else round(psnr, 2)} | {s.get('val_views', 0)} | {peak:.0f} |\n")
open(jl, "a").write(json.dumps({"run": label, "steps": s["steps"], "seconds": s["seconds"], "steps_per_second": rate,
                                "val_psnr": psnr, "val_views": s.get("val_views"), "peak_mib": peak}) + "\n")
PY
}

training_header() {
	[ -f "$LOGS/training.md" ] && return
	{
		echo "| lego_400 run | steps | train s | steps/s | val PSNR | val views | peak MiB |"
		echo "| --- | --- | --- | --- | --- | --- | --- |"
	} >"$LOGS/training.md"
}

# One config for SECONDS, PSNR over 4 val views.
train_config() {  # config seconds
	local config=$1 seconds=$2
	training_header
	echo "----- $config, ${seconds} s"
	train_run "$config" "$config" "$seconds" 4 || return 1
	train_report "$config.txt, default precision, ${seconds} s" "$config"
}

# configs/lego.txt: TRAIN_SECONDS at the default precision (tf32), then PRECISION_SECONDS in each
# other precision for its steps/s (PSNR over 1 val view: a sanity number after a few seconds).
train_nerf() {
	local seconds=${TRAIN_SECONDS:-60} each=${PRECISION_SECONDS:-5} ok=0 precision
	train_config lego "$seconds" || ok=1
	for precision in fp32 fp16 bf16; do
		echo "----- lego, $precision, ${each} s"
		if train_run "lego_$precision" lego "$each" 1 --precision "$precision"; then
			train_report "lego.txt, $precision, ${each} s" "lego_$precision" || ok=1
		else
			ok=1
		fi
	done
	cat "$LOGS/training.md"
	return $ok
}

# ------------------------------------------------------------------------------------------------
# the whole check (GPU machine), and the dry run of it (here)

run_plan() {  # dry: 1 for --dry-run
	local dry=$1 row name budget min output command
	SECTION_INDEX=0
	for row in "${PLAN[@]}"; do
		IFS=$'\t' read -r name budget min output _ command <<<"$row"
		if [ "$dry" = 1 ]; then
			case "$name" in
			configure* | build* | "test groups") ;;
			*)
				record "$name" "skipped: dry run" 0 "$budget" "needs the GPU" "$output"
				continue
				;;
			esac
		fi
		eval "set -- $command"
		run_section "$name" "$budget" "$min" "$output" "$@"
		local rc=$?
		# Nothing runs without a build.
		case "$name" in configure* | build*) [ $rc -eq 0 ] || break ;; esac
	done
}

run_check() {  # dry: 1 for --dry-run
	local dry=$1
	rm -rf "$LOGS" && mkdir -p "$LOGS" || die "cannot write $LOGS"
	mkdir -p "$OUTDIR" || die "cannot write $OUTDIR"
	# Results of an earlier run would read as this one's (only the files this script writes).
	(cd "$OUTDIR" && rm -f summary.md results.json gpu_tests.log sanitizer.log bench_kernels.json bench_kernels.json.tmp \
		bench_kernels.log training.log logs.tar.gz ./*.log.new)
	if [ "$dry" = 1 ]; then
		DEVICE_LINE="dry run on $(hostname) (no GPU): bundle completeness, plan and output limits only"
	else
		DEVICE_LINE="device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi failed')"
	fi
	COMMIT_LINE=$(source_line)
	COMMIT_ID=$(echo "$COMMIT_LINE" | awk '{print $2}')
	case "$COMMIT_LINE" in *differ* | *uncommitted*) COMMIT_ID="$COMMIT_ID+changes" ;; esac
	echo "$DEVICE_LINE"
	echo "$COMMIT_LINE"
	SANITIZER=$(command -v compute-sanitizer || true)
	for candidate in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
		[ -z "$SANITIZER" ] && [ -x "$candidate" ] && SANITIZER=$candidate
	done
	SANITIZER_OK=$WORK/sanitizer_ok
	rm -f "$SANITIZER_OK"
	export LD_LIBRARY_PATH="$WORK/prefix/usr/lib/$ARCH_TRIPLET${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	export ROOT BUNDLE ARCH_TRIPLET WORK BUILD JOBS LOGS OUTDIR SANITIZER SANITIZER_OK COMMIT_ID
	export MEMCHECK_STAGES MEMCHECK_MLP RACECHECK TEST_GROUPS_LINES
	export -f die unpack_and_configure build_targets check_test_groups gpu_test_group sanitizer_probe sanitize bench \
		train_run train_report training_header train_config train_nerf

	echo
	if [ "$dry" = 1 ]; then
		echo "===== the dry run's plan (its build runs on 2 cores; the GPU run's plan is checked below) ====="
		print_plan
	else
		echo "===== plan ====="
		print_plan
		[ "$(plan_total)" -le "$TOTAL_LIMIT" ] || echo "gpu_check: WARNING: the budgets add up to more than ${TOTAL_LIMIT}s"
	fi
	run_plan "$dry"
	if [ "$dry" = 1 ] && [ -x "$BUILD/tests/nerf_gpu_tests" ]; then
		# What runs without a GPU: the GPU tests' binary must load (every runtime library from the bundle)
		# and skip; nerf_inspect must read lego_400's PNGs and JSON.
		run_section "gpu tests load and skip" 60 5 gpu_tests "$BUILD/tests/nerf_gpu_tests"
		[ -d "$BUNDLE/lego_400" ] && run_section "nerf_inspect loads lego_400" 120 10 training \
			"$BUILD/nerf_inspect" --config "$ROOT/configs/lego.txt" --datadir "$BUNDLE/lego_400" --half_res=False
	fi
	if [ "$dry" = 1 ]; then
		# The GPU run's plan (16 build jobs), also with the sections whose files are still to come.
		run_section "GPU plan fits ${TOTAL_LIMIT} s" 10 1 logs env -u GPU_CHECK_JOBS bash "$ROOT/tools/gpu_check.sh" --plan
	fi
	write_outputs
	echo
	echo "===== summary (also $OUTDIR/summary.md) ====="
	cat "$OUTDIR/summary.md"
	echo
	echo "===== the output folder ($OUTDIR) ====="
	check_out_folder "$OUTDIR" || FAILED=1
	return $FAILED
}

# Here, as root: a private mount namespace in which every file the bundle provides is hidden at its
# system path (an empty tmpfs over a folder whose entries all come from the bundle, /dev/null over a
# single file), so that a configure or build that still reached for the system's copy fails.
dry_run() {
	[ "$(id -u)" -eq 0 ] || die "--dry-run hides system files with mounts: run it as root"
	command -v unshare >/dev/null || die "--dry-run needs unshare (util-linux)"
	if [ -f "$BUNDLE/deps.tar.gz" ]; then
		write_source_id  # the commit the tree is at now, not the one the bundle was made at
	else
		make_bundle || return 1
	fi
	local listing
	listing=$(mktemp)
	CLEANUP+=("$listing")
	tar -tzf "$BUNDLE/deps.tar.gz" >"$listing" || die "cannot read $BUNDLE/deps.tar.gz"
	unshare --mount --propagation private env GPU_CHECK_HIDE_LIST="$listing" bash "$ROOT/tools/gpu_check.sh" --dry-run-inside
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
	BUDGET=${GPU_CHECK_BUDGET:-1800}  # two cores build in minutes what sixteen build in one
	BUILD_BUDGET=1500
	WORK=${GPU_CHECK_WORK:-/tmp/nerf_gpu_check_dry}
	LOGS=$WORK/logs
	BUILD=$WORK/build
	BUILD_EXTRA=nerf_inspect
	mkdir -p "$WORK"
	hide_system_copies
	make_plan 0
	run_check 1
	;;
--plan)
	check_plan
	;;
--check-groups)
	[ -n "${2:-}" ] || die "--check-groups needs the nerf_gpu_tests binary"
	check_test_groups "$2"
	;;
--check-out)
	[ -d "${2:-}" ] || die "--check-out needs a folder"
	check_out_folder "$2"
	;;
"")
	mkdir -p "$WORK"
	make_plan 0
	run_check 0
	;;
-h | --help)
	sed -n '2,/^set -uo/p' "$0" | sed '$d'
	;;
*)
	die "unknown argument '$1' (--bundle, --dry-run, --plan, --check-groups BINARY, --check-out FOLDER, or none on the GPU machine; --help)"
	;;
esac
