#!/usr/bin/env bash
# Structure from motion for a new scene, as LLFF's imgs2poses.py: COLMAP features, exhaustive matching
# and mapping on SCENE/images into SCENE/sparse, then colmap2llff writes SCENE/poses_bounds.npy.
#   data_scripts/imgs2poses.sh SCENE [COLMAP2LLFF]
# COLMAP2LLFF is the converter binary (default: colmap2llff on PATH, else ./build/colmap2llff).
# Train on the result with dataset_type = llff (add spherify = True for scenes captured all around).
set -euo pipefail

if [ $# -lt 1 ]; then
	echo "usage: $0 SCENE [COLMAP2LLFF]   (SCENE holds images/)" >&2
	exit 2
fi
scene="$1"
converter="${2:-}"
if [ -z "$converter" ]; then
	if command -v colmap2llff >/dev/null 2>&1; then converter=colmap2llff
	else converter="$(cd "$(dirname "$0")/.." && pwd)/build/colmap2llff"; fi
fi
command -v colmap >/dev/null 2>&1 || { echo "error: colmap is not installed (https://colmap.github.io)" >&2; exit 1; }
[ -d "$scene/images" ] || { echo "error: $scene/images does not exist" >&2; exit 1; }
[ -x "$converter" ] || command -v "$converter" >/dev/null 2>&1 || { echo "error: converter $converter not found" >&2; exit 1; }

# LLFF's run_colmap settings: one camera shared by all images (single_camera), exhaustive matching, one
# model (multiple_models 0) with a 4 degree minimum triangulation angle for the initial pair.
colmap feature_extractor \
	--database_path "$scene/database.db" \
	--image_path "$scene/images" \
	--ImageReader.single_camera 1
colmap exhaustive_matcher --database_path "$scene/database.db"
mkdir -p "$scene/sparse"
colmap mapper \
	--database_path "$scene/database.db" \
	--image_path "$scene/images" \
	--output_path "$scene/sparse" \
	--Mapper.num_threads 16 \
	--Mapper.init_min_tri_angle 4 \
	--Mapper.multiple_models 0 \
	--Mapper.extract_colors 0

"$converter" "$scene"
# Images COLMAP could not register get no pose; the LLFF loader then reports the image/pose count mismatch.
