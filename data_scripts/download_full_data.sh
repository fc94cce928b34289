#!/usr/bin/env bash
# Fetches the NeRF paper's full datasets, nerf_synthetic.zip (8 Blender scenes) and nerf_llff_data.zip
# (8 forward-facing scenes), from the authors' public Google Drive folder
# (https://drive.google.com/drive/folders/128yBriW1IG_3NJ5Rp7APSTZsJqdJdfc1) into DEST (default ./data),
# the layout configs/*.txt expect (./data/nerf_synthetic/<scene>, ./data/nerf_llff_data/<scene>).
# Not run in CI: several GB. Uses gdown when installed (pip install gdown), else curl with Drive's
# large-file confirmation.
set -euo pipefail

dest="${1:-./data}"
declare -A drive_ids=(
	[nerf_synthetic.zip]=18JxhpWD-4ZmuFKLzKlAw-w5PpzZxXOcG
	[nerf_llff_data.zip]=16VnMcF1KJYxN9QId6TClMsZRahHNMW5g
)

fetch_drive() {  # fetch_drive ID FILE
	if command -v gdown >/dev/null 2>&1; then
		gdown --id "$1" -O "$2"
	elif command -v curl >/dev/null 2>&1; then
		curl -L -o "$2" "https://drive.usercontent.google.com/download?id=$1&export=download&confirm=t"
	else
		echo "error: need gdown or curl to download $2" >&2
		exit 1
	fi
	# Drive answers quota or permission problems with an HTML page instead of the archive.
	if ! unzip -tq "$2" >/dev/null 2>&1; then
		echo "error: $2 is not a valid zip (Google Drive may have refused the download; try again later" \
		     "or fetch it by hand from the folder above)" >&2
		exit 1
	fi
}

mkdir -p "$dest"
cd "$dest"
for archive in nerf_synthetic.zip nerf_llff_data.zip; do
	[ -f "$archive" ] && unzip -tq "$archive" >/dev/null 2>&1 || fetch_drive "${drive_ids[$archive]}" "$archive"
	unzip -q -o "$archive"
done
rm -rf __MACOSX
echo "done: $(pwd)/nerf_synthetic and $(pwd)/nerf_llff_data"
