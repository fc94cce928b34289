#!/usr/bin/env bash
# Fetches the NeRF authors' example data (the sources nerf-pytorch's download_example_data.sh uses):
# tiny_nerf_data.npz and nerf_example_data.zip (nerf_synthetic/lego and nerf_llff_data/fern) into
# DEST (default ./data), so that configs/lego.txt and configs/fern.txt find them.
# Not run in CI: it downloads ~250 MB from the authors' server.
set -euo pipefail

dest="${1:-./data}"
base_url="http://cseweb.ucsd.edu/~viscomp/projects/LF/papers/ECCV20/nerf"

fetch() {  # fetch URL FILE: resumable download with whichever tool exists
	if command -v wget >/dev/null 2>&1; then
		wget -c -O "$2" "$1"
	elif command -v curl >/dev/null 2>&1; then
		curl -L -C - -o "$2" "$1"
	else
		echo "error: need wget or curl to download $1" >&2
		exit 1
	fi
}

mkdir -p "$dest"
cd "$dest"
fetch "$base_url/tiny_nerf_data.npz" tiny_nerf_data.npz
fetch "$base_url/nerf_example_data.zip" nerf_example_data.zip
unzip -q -o nerf_example_data.zip
echo "done: $(pwd)/nerf_synthetic/lego and $(pwd)/nerf_llff_data/fern"
