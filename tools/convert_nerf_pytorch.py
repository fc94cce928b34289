#!/usr/bin/env python3
"""Converts checkpoints between nerf-pytorch (torch.save files, {step:06d}.tar) and nerfcore (safetensors).

    python3 tools/convert_nerf_pytorch.py to-nerfcore logs/lego/200000.tar [logs/lego/200000.safetensors]
    python3 tools/convert_nerf_pytorch.py to-nerf-pytorch logs/lego/200000.safetensors [200000.tar]

Needs torch, safetensors and numpy (pip install torch safetensors numpy); nerfcore itself does not.

to-nerfcore reads the run's options from --config FILE, else from args.txt or config.txt beside the
checkpoint (nerf-pytorch writes both into its run folder), checks them against the networks' shapes, and
stores them in the checkpoint, where nerf_render and nerf_train find them.

What maps to what:
  network_fn_state_dict[name]      <-> network_fn.<name>      (same names and layouts)
  network_fine_state_dict[name]    <-> network_fine.<name>
  optimizer_state_dict state[k]    <-> optimizer.exp_avg.<name k>, optimizer.exp_avg_sq.<name k>, where k
      counts the parameters of torch.optim.Adam(coarse.parameters() + fine.parameters()), as nerf-pytorch's
      create_nerf builds it; their 'step' <-> the metadata's adam_step
  global_step                      <-> the metadata's global_step - 1: nerf-pytorch saves {i:06d}.tar with
      global_step = i - 1 in iteration i; nerfcore's global_step is the last completed step, i
The learning rate in nerf-pytorch's param_groups is recomputed from lrate and lrate_decay on the way back.
Exit status 0 on success, 1 with one line naming the file and the problem otherwise.
"""
import argparse
import os
import re
import sys
from collections import OrderedDict

NERFCORE_FORMAT = "nerfcore-checkpoint"
NERFCORE_FORMAT_VERSION = 1  # include/nerf/checkpoint.h: kCheckpointFormatVersion
ADAM_M, ADAM_V = "optimizer.exp_avg.", "optimizer.exp_avg_sq."
NETWORKS = (("network_fn_state_dict", "network_fn."), ("network_fine_state_dict", "network_fine."))

# nerf-pytorch's config_parser options with their defaults (run_nerf.py), then nerfcore's own options.
NERF_PYTORCH_DEFAULTS = {
    "config": None, "expname": None, "basedir": "./logs/", "datadir": "./data/llff/fern", "netdepth": 8,
    "netwidth": 256, "netdepth_fine": 8, "netwidth_fine": 256, "N_rand": 4096, "lrate": 5e-4, "lrate_decay": 250,
    "chunk": 32768, "netchunk": 65536, "no_batching": False, "no_reload": False, "ft_path": None, "N_samples": 64,
    "N_importance": 0, "perturb": 1.0, "use_viewdirs": False, "i_embed": 0, "multires": 10, "multires_views": 4,
    "raw_noise_std": 0.0, "render_only": False, "render_test": False, "render_factor": 0, "precrop_iters": 0,
    "precrop_frac": 0.5, "dataset_type": "llff", "testskip": 8, "shape": "greek", "white_bkgd": False,
    "half_res": False, "factor": 8, "no_ndc": False, "lindisp": False, "spherify": False, "llffhold": 8,
    "i_print": 100, "i_img": 500, "i_weights": 10000, "i_testset": 50000, "i_video": 50000,
}
NERFCORE_OPTIONS = ("N_iters", "max_seconds", "seed", "device", "precision", "cuda_graph", "quiet", "n_val_eval",
                    "threads")


class ConvertError(Exception):
    pass


# --- options -------------------------------------------------------------------------------------------

def read_options(path):
    """`key = value` lines as configargparse reads them (# and ; comments, [sections] skipped), in order."""
    options = OrderedDict()
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ConvertError(f"{path}: cannot read the options ({e.strerror})")
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text[0] in "#;[" or text.startswith("---"):
            continue
        if "=" not in text:
            raise ConvertError(f"{path}:{number}: expected 'key = value', got '{text}'")
        key, value = (part.strip() for part in text.split("=", 1))
        if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
            value = value[1:-1]
        else:
            value = re.split(r"\s#", value, maxsplit=1)[0].strip()
        options[key] = value
    return options


def as_bool(text):
    return str(text).strip().lower() in ("true", "yes", "1")


def option_int(options, key):
    value = options.get(key, NERF_PYTORCH_DEFAULTS[key])
    try:
        return int(value)
    except ValueError:
        raise ConvertError(f"option {key} = {value} is not an integer")


def find_options(checkpoint_path, config_path):
    """The run's options and where they came from: --config, else args.txt or config.txt beside the checkpoint."""
    if config_path:
        return read_options(config_path), config_path
    folder = os.path.dirname(os.path.abspath(checkpoint_path))
    for name in ("args.txt", "config.txt"):
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return read_options(candidate), candidate
    raise ConvertError(f"{checkpoint_path}: no args.txt or config.txt beside it to say how the run was configured "
                       "(N_importance, datadir, ...); pass --config with the config file it was trained with")


def nerfcore_config_text(options, source):
    """The options nerfcore knows, as `key = value` lines for the checkpoint's metadata. Unset options
    (None in args.txt) and the config file's own path are left out; unknown ones are dropped with a note."""
    known = set(NERF_PYTORCH_DEFAULTS) | set(NERFCORE_OPTIONS)
    lines = []
    for key, value in options.items():
        if key not in known:
            print(f"convert_nerf_pytorch: note: {source}: option '{key}' is not nerfcore's; left out", file=sys.stderr)
            continue
        if key == "config" or value == "None":
            continue
        if value != value.strip() or "#" in value or value == "":
            value = '"' + value + '"'
        lines.append(f"{key} = {value}\n")
    return "".join(lines)


# --- networks ------------------------------------------------------------------------------------------

LAYER_ORDER = ("feature_linear", "alpha_linear", "rgb_linear", "output_linear")


def parameter_order(names, where):
    """Parameter names in the order of NeRF.parameters() (the module's registration order): pts_linears.0..,
    views_linears.0.., feature_linear, alpha_linear, rgb_linear, output_linear; weight before bias."""
    def key(name):
        m = re.fullmatch(r"(pts_linears|views_linears)\.(\d+)\.(weight|bias)", name)
        if m:
            return (0 if m.group(1) == "pts_linears" else 1, int(m.group(2)), m.group(3) == "bias")
        m = re.fullmatch(r"(\w+)\.(weight|bias)", name)
        if m and m.group(1) in LAYER_ORDER:
            return (2, LAYER_ORDER.index(m.group(1)), m.group(2) == "bias")
        raise ConvertError(f"{where}: parameter '{name}' is not one of nerf-pytorch's NeRF module")
    return sorted(names, key=key)


def check_architecture(shapes, fine, options, source, where):
    """Raises when the options (nerf-pytorch's defaults where absent) do not build networks of these shapes."""
    suffix = "_fine" if fine else ""
    depth = sum(1 for n in shapes if re.fullmatch(r"pts_linears\.\d+\.weight", n))
    if depth == 0 or "pts_linears.0.weight" not in shapes:
        raise ConvertError(f"{where}: no pts_linears.0.weight; not a nerf-pytorch NeRF state dict")
    width, input_ch = shapes["pts_linears.0.weight"]
    use_viewdirs = "rgb_linear.weight" in shapes
    views = sum(1 for n in shapes if re.fullmatch(r"views_linears\.\d+\.weight", n))
    if views != 1:
        raise ConvertError(f"{where}: {views} views_linears layers; nerfcore has nerf-pytorch's one "
                           "(the official release's, not the paper's variant)")
    input_ch_views = shapes["views_linears.0.weight"][1] - width
    for i in range(1, depth):
        want = width + input_ch if i == 5 else width  # nerf-pytorch's skips = [4]
        if shapes.get(f"pts_linears.{i}.weight") != [width, want]:
            raise ConvertError(f"{where}: pts_linears.{i}.weight has shape {shapes.get(f'pts_linears.{i}.weight')}, "
                               f"expected {[width, want]} (nerf-pytorch's NeRF with skips=[4])")

    def channels_to_multires(channels):
        return (channels - 3) // 6 if (channels - 3) % 6 == 0 else f"(none: {channels} is not 3 + 6 k)"

    def mismatch(key, value, implied, what):
        return ConvertError(f"{source}: {key} = {value}, but {where} {what} (which {key} = {implied} would give)")

    for key, got in (("netdepth" + suffix, depth), ("netwidth" + suffix, width)):
        if option_int(options, key) != got:
            raise mismatch(key, option_int(options, key), got, f"has {depth} layers of width {width}")
    if as_bool(options.get("use_viewdirs", False)) != use_viewdirs:
        raise mismatch("use_viewdirs", options.get("use_viewdirs", False), use_viewdirs,
                       "has rgb_linear" if use_viewdirs else "has no rgb_linear")
    i_embed = option_int(options, "i_embed")
    encoded = lambda multires: 3 if i_embed == -1 else 3 + 6 * multires
    if encoded(option_int(options, "multires")) != input_ch:
        raise mismatch("multires", option_int(options, "multires"), channels_to_multires(input_ch),
                       f"takes {input_ch} input channels")
    if use_viewdirs and encoded(option_int(options, "multires_views")) != input_ch_views:
        raise mismatch("multires_views", option_int(options, "multires_views"), channels_to_multires(input_ch_views),
                       f"takes {input_ch_views} view-direction channels")
    if not use_viewdirs:
        out = shapes["output_linear.weight"][0]
        if (out == 5) != (option_int(options, "N_importance") > 0):
            raise mismatch("N_importance", option_int(options, "N_importance"), "> 0" if out == 5 else 0,
                           f"outputs {out} channels")


def state_shapes(state_dict):
    return {name: list(t.shape) for name, t in state_dict.items()}


# --- nerf-pytorch -> nerfcore --------------------------------------------------------------------------

def load_torch(path):
    import torch
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # PyTorch before 1.13 has no weights_only
            return torch.load(path, map_location="cpu")
    except Exception as e:  # torch raises many kinds for a file it cannot read
        raise ConvertError(f"{path}: torch.load failed: {e}".splitlines()[0])


def to_nerfcore(src, dst, config_path):
    import numpy as np
    from safetensors.numpy import save_file

    ckpt = load_torch(src)
    if not isinstance(ckpt, dict) or "network_fn_state_dict" not in ckpt or "global_step" not in ckpt:
        raise ConvertError(f"{src}: not a nerf-pytorch checkpoint (needs network_fn_state_dict and global_step)")
    options, source = find_options(src, config_path)

    tensors = OrderedDict()
    ordered = []  # (nerfcore name, tensor) in nerf-pytorch's optimizer order
    has_fine = ckpt.get("network_fine_state_dict") is not None
    if has_fine != (option_int(options, "N_importance") > 0):
        raise ConvertError(f"{source}: N_importance = {option_int(options, 'N_importance')}, but {src} "
                           f"{'has' if has_fine else 'has no'} network_fine_state_dict")
    for key, prefix in NETWORKS:
        state = ckpt.get(key)
        if state is None:
            continue
        where = f"{src} {key}"
        check_architecture(state_shapes(state), prefix == "network_fine.", options, source, where)
        for name in parameter_order(list(state), where):
            t = state[name].detach().cpu().float().contiguous()
            tensors[prefix + name] = t.numpy()
            ordered.append((prefix + name, t))

    adam_step = 0
    optimizer = ckpt.get("optimizer_state_dict")
    if optimizer and optimizer.get("state"):
        groups = optimizer.get("param_groups", [])
        indices = [k for g in groups for k in g.get("params", [])]
        if len(indices) != len(ordered):
            raise ConvertError(f"{src}: the optimizer has {len(indices)} parameters but the networks have "
                               f"{len(ordered)}; not nerf-pytorch's Adam over coarse then fine parameters")
        steps = set()
        for index, (name, param) in zip(indices, ordered):
            slot = optimizer["state"].get(index)
            if slot is None or "exp_avg" not in slot or "exp_avg_sq" not in slot:
                raise ConvertError(f"{src}: the optimizer has no Adam moments for parameter {index} ({name})")
            for moment, prefix in (("exp_avg", ADAM_M), ("exp_avg_sq", ADAM_V)):
                value = slot[moment].detach().cpu().float().contiguous()
                if list(value.shape) != list(param.shape):
                    raise ConvertError(f"{src}: optimizer {moment} of parameter {index} has shape {list(value.shape)}, "
                                       f"but {name} has {list(param.shape)}")
                tensors[prefix + name] = value.numpy()
            steps.add(int(float(slot.get("step", 0))))
        if len(steps) != 1:
            raise ConvertError(f"{src}: the optimizer's parameters have different step counts {sorted(steps)}")
        adam_step = steps.pop()

    metadata = {
        "format": NERFCORE_FORMAT,
        "format_version": str(NERFCORE_FORMAT_VERSION),
        "global_step": str(int(ckpt["global_step"]) + 1),
        "adam_step": str(adam_step),
        "config": nerfcore_config_text(options, source),
        "converted_from": "nerf-pytorch " + os.path.basename(src),
    }
    tmp = dst + ".tmp"
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, tmp, metadata=metadata)
    os.replace(tmp, dst)
    print(f"{src} (nerf-pytorch, global_step {ckpt['global_step']}, options from {source}) -> {dst} "
          f"(nerfcore, step {metadata['global_step']}, {len(ordered)} parameter tensors"
          f"{', Adam moments' if adam_step else ''})")


# --- nerfcore -> nerf-pytorch --------------------------------------------------------------------------

def adam_param_group_template(torch):
    """This PyTorch's Adam param_group keys and defaults, and the type it keeps 'step' in, from a real Adam."""
    p = torch.nn.Parameter(torch.zeros(1))
    adam = torch.optim.Adam([p], lr=1.0, betas=(0.9, 0.999))
    p.grad = torch.zeros(1)
    adam.step()
    sd = adam.state_dict()
    return dict(sd["param_groups"][0]), sd["state"][0]["step"]


def to_nerf_pytorch(src, dst):
    import torch
    from safetensors import safe_open

    try:
        with safe_open(src, framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as e:
        raise ConvertError(f"{src}: not a safetensors file ({e})".splitlines()[0])
    if metadata.get("format") != NERFCORE_FORMAT:
        raise ConvertError(f"{src}: not a nerfcore checkpoint (its metadata has no format = {NERFCORE_FORMAT})")
    global_step, adam_step = int(metadata["global_step"]), int(metadata["adam_step"])
    options = OrderedDict()
    for line in metadata.get("config", "").splitlines():
        if "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            options[key] = value.strip("\"'")

    ckpt = {"global_step": global_step - 1}
    ordered = []
    for key, prefix in NETWORKS:
        names = [n[len(prefix):] for n in tensors if n.startswith(prefix)]
        if not names:
            ckpt[key] = None
            continue
        state = OrderedDict()
        for name in parameter_order(names, f"{src} {prefix}*"):
            state[name] = tensors[prefix + name].float().contiguous()
            ordered.append(prefix + name)
        ckpt[key] = state
    if ckpt["network_fn_state_dict"] is None:
        raise ConvertError(f"{src}: no network_fn.* tensors")

    group, step_example = adam_param_group_template(torch)
    # nerf-pytorch sets the learning rate after each step from global_step (i - 1 in iteration i).
    lrate = float(options.get("lrate", NERF_PYTORCH_DEFAULTS["lrate"]))
    decay_steps = int(options.get("lrate_decay", NERF_PYTORCH_DEFAULTS["lrate_decay"])) * 1000
    group.update(lr=lrate * 0.1 ** ((global_step - 1) / decay_steps), betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, params=list(range(len(ordered))))
    state = {}
    if any(n.startswith(ADAM_M) for n in tensors):
        for index, name in enumerate(ordered):
            if ADAM_M + name not in tensors or ADAM_V + name not in tensors:
                raise ConvertError(f"{src}: no Adam moments for {name}")
            step = torch.tensor(float(adam_step), dtype=step_example.dtype) if torch.is_tensor(step_example) \
                else adam_step
            state[index] = {"step": step, "exp_avg": tensors[ADAM_M + name].float().contiguous(),
                            "exp_avg_sq": tensors[ADAM_V + name].float().contiguous()}
    ckpt["optimizer_state_dict"] = {"state": state, "param_groups": [group]}
    tmp = dst + ".tmp"
    torch.save(ckpt, tmp)
    os.replace(tmp, dst)
    print(f"{src} (nerfcore, step {global_step}) -> {dst} (nerf-pytorch, global_step {global_step - 1}, "
          f"lr {group['lr']:.6g}, {len(ordered)} parameter tensors{', Adam moments' if state else ''})")


def main(argv):
    parser = argparse.ArgumentParser(prog="convert_nerf_pytorch.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    sub = parser.add_subparsers(dest="direction", required=True)
    a = sub.add_parser("to-nerfcore", help="nerf-pytorch .tar -> nerfcore .safetensors")
    a.add_argument("src")
    a.add_argument("dst", nargs="?", help="default: SRC with the extension .safetensors")
    a.add_argument("--config", help="the run's config file or args.txt (default: args.txt or config.txt beside SRC)")
    b = sub.add_parser("to-nerf-pytorch", help="nerfcore .safetensors -> nerf-pytorch .tar")
    b.add_argument("src")
    b.add_argument("dst", nargs="?", help="default: SRC with the extension .tar")
    for p in (a, b):
        p.add_argument("--force", action="store_true", help="overwrite DST")
    args = parser.parse_args(argv)
    ext = ".safetensors" if args.direction == "to-nerfcore" else ".tar"
    dst = args.dst or os.path.splitext(args.src)[0] + ext
    try:
        if not os.path.isfile(args.src):
            raise ConvertError(f"{args.src}: no such file")
        if os.path.exists(dst) and not args.force:
            raise ConvertError(f"{dst}: exists; pass --force to overwrite it")
        try:
            import numpy, safetensors, torch  # noqa: F401
        except ImportError as e:
            raise ConvertError(f"this script needs torch, safetensors and numpy ({e}); "
                               "pip install torch safetensors numpy")
        if args.direction == "to-nerfcore":
            to_nerfcore(args.src, dst, args.config)
        else:
            to_nerf_pytorch(args.src, dst)
    except ConvertError as e:
        print(f"convert_nerf_pytorch: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
