#!/usr/bin/env bash
# Installs what the build needs (Debian packages; skipped when already present) and builds nerfcore
# into ./build. Idempotent: a second run only rebuilds what changed.
#   BUILD_DIR=...      build folder (default: build)
#   NERF_CUDA=AUTO|ON|OFF   (default AUTO: the CUDA backend is built when nvcc is found)
#   JOBS=N             parallel build jobs (default: number of cores)
set -euo pipefail
cd "$(dirname "$0")/.."

# Build tools and ffmpeg (videos), then the libraries (tools/library_packages.txt, shared with the GPU bundle).
packages=(build-essential cmake pkg-config ffmpeg)
while read -r p; do
	[ -n "$p" ] && [ "${p#\#}" = "$p" ] && packages+=("$p")
done < tools/library_packages.txt
missing=()
for p in "${packages[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	sudo_cmd=""
	[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

build_dir="${BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DNERF_CUDA="${NERF_CUDA:-AUTO}" ${CMAKE_ARGS:-}
cmake --build "$build_dir" -j "${JOBS:-$(nproc)}"
