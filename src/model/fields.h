// Internal: the fields a model can hold (include/nerf/field.h) and how they are built from a config.
#pragma once

#include "nerf/config.h"
#include "nerf/field.h"
#include "nerf/math/hash_grid.h"
#include "nerf/mlp_layout.h"

#include <memory>

namespace nerf {

/// The reference's field: nerf-pytorch's frequency encoding of points and view directions and its
/// D x W skip MLP with the views head, parameters at layout's offsets.
std::unique_ptr<Field> make_nerf_field(Backend& backend, const MlpLayout& layout, const EncodingSpec& pts_encoding,
                                       const EncodingSpec& views_encoding, size_t max_batch, Precision precision);

/// The reference field's layout of one network for a config (coarse: netdepth/netwidth; fine:
/// netdepth_fine/netwidth_fine), starting at `offset` floats (a multiple of kMlpLayerAlignment), its
/// parameters counted from `first_param` (the initial draws are keyed by that count: mlp_layout.h).
MlpLayout nerf_field_layout(const Config& cfg, bool fine, size_t offset, size_t first_param = 0);

/// The MLP layout of a reference field; null for any other field.
const MlpLayout* nerf_field_layout_of(const Field& field);

/// instant-ngp's hash-grid field (model = ngp) over `box` (the occupancy grid's), its options from cfg
/// (n_levels, ..., and its Adam's beta1, beta2, epsilon, l2_reg), parameters from `offset` floats.
std::unique_ptr<Field> make_ngp_field(Backend& backend, const Config& cfg, const OccGridSpec& box, size_t offset,
                                      size_t max_batch, Precision precision);

/// The hash grid of a hash-grid field; null for any other field.
const HashGridSpec* ngp_field_grid_of(const Field& field);

} // namespace nerf
