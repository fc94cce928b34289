#!/usr/bin/env python3
"""ctest convert_nerf_pytorch_roundtrip: a nerf-pytorch checkpoint converts to nerfcore and back.

    test_convert_nerf_pytorch.py TOOLS_DIR SOURCE_DIR WORK_DIR

Builds networks with nerf-pytorch's NeRF module layout (D=8, W=256, skips=[4], use_viewdirs, input_ch 63,
input_ch_views 27, output_ch 5) and its Adam, saves them as nerf-pytorch's train() does, then checks that
  - nerf_train and nerf_render refuse the .tar with a command that, run as printed, converts it;
  - the converted tensors and Adam moments are the torch ones, matched by parameter object, not by order;
  - nerf_train resumes from it at its step (nothing to train when N_iters is that step), trains on, and
    the result converts back into modules and an Adam that torch loads and steps;
  - nerf_render's image of the converted checkpoint is the torch networks' rendering (the reference's
    rays, stratified and inverse-CDF samples and compositing, written here in torch) to 8-bit rounding;
  - converting back gives identical tensors, global_step and Adam steps.
Needs torch, safetensors and numpy; exits 77 (ctest: skipped) when they are missing. NERF_TEST_PYTHON
names another interpreter to run it with (e.g. a venv that has torch).
"""
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib

SKIP = 77
sys.dont_write_bytecode = True  # importing the converter must not leave __pycache__ in the source tree

# (Not compared by realpath: a venv's python is a link to the interpreter it was made from.)
if os.environ.get("NERF_TEST_PYTHON") and not os.environ.get("NERF_TEST_PYTHON_DONE"):
    os.environ["NERF_TEST_PYTHON_DONE"] = "1"
    os.execv(os.environ["NERF_TEST_PYTHON"], [os.environ["NERF_TEST_PYTHON"]] + sys.argv)

try:
    import numpy as np
    import safetensors  # noqa: F401
    import torch
    from safetensors import safe_open
except ImportError as e:
    print(f"SKIPPED: {sys.executable} has no torch, safetensors or numpy ({e}); set NERF_TEST_PYTHON to a Python "
          "that has them (pip install torch safetensors numpy) to run this test")
    sys.exit(SKIP)

TOOLS, SOURCE, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
CONVERTER = os.path.join(SOURCE, "tools", "convert_nerf_pytorch.py")
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)
    return condition


def run(args, cwd=None, expect=0):
    p = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != expect:
        print(p.stdout)
        raise SystemExit(f"FAIL: {' '.join(args)} exited {p.returncode}, expected {expect}")
    return p.stdout


# --- nerf-pytorch's network and rendering, written for this test ----------------------------------------

class NeRF(torch.nn.Module):
    """nerf-pytorch's NeRF module: the same parameter names, shapes, registration order and forward."""

    def __init__(self, D=8, W=256, input_ch=63, input_ch_views=27, output_ch=5, skips=(4,), use_viewdirs=True):
        super().__init__()
        self.input_ch, self.skips = input_ch, skips
        lin = torch.nn.Linear
        self.pts_linears = torch.nn.ModuleList(
            [lin(input_ch, W)] + [lin(W + input_ch if i in skips else W, W) for i in range(D - 1)])
        self.views_linears = torch.nn.ModuleList([lin(input_ch_views + W, W // 2)])
        self.feature_linear, self.alpha_linear, self.rgb_linear = lin(W, W), lin(W, 1), lin(W // 2, 3)

    def forward(self, pts, views):
        h = pts
        for i, layer in enumerate(self.pts_linears):
            h = torch.relu(layer(h))
            if i in self.skips:
                h = torch.cat([pts, h], -1)
        alpha = self.alpha_linear(h)
        h = torch.cat([self.feature_linear(h), views], -1)
        for layer in self.views_linears:
            h = torch.relu(layer(h))
        return torch.cat([self.rgb_linear(h), alpha], -1)


def encode(x, n_freqs):
    return torch.cat([x] + [fn(x * 2.0 ** k) for k in range(n_freqs) for fn in (torch.sin, torch.cos)], -1)


def composite(raw, z, rays_d, white_bkgd):
    dists = torch.cat([z[:, 1:] - z[:, :-1], torch.full_like(z[:, :1], 1e10)], -1) * rays_d.norm(dim=-1, keepdim=True)
    alpha = 1.0 - torch.exp(-torch.relu(raw[..., 3]) * dists)
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-10], -1), -1)[:, :-1]
    weights = alpha * transmittance
    rgb = (weights[..., None] * torch.sigmoid(raw[..., :3])).sum(-2)
    if white_bkgd:
        rgb = rgb + (1.0 - weights.sum(-1, keepdim=True))
    return rgb, weights


def inverse_cdf(bins, weights, n):
    """Deterministic (det=True) inverse-transform samples of the piecewise-constant pdf over bins."""
    pdf = (weights + 1e-5) / (weights + 1e-5).sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)
    u = torch.linspace(0.0, 1.0, n).expand(cdf.shape[0], n).contiguous()
    above = torch.searchsorted(cdf, u, right=True)
    below = (above - 1).clamp(min=0)
    above = above.clamp(max=cdf.shape[-1] - 1)
    c0, c1 = cdf.gather(1, below), cdf.gather(1, above)
    b0, b1 = bins.gather(1, below), bins.gather(1, above)
    span = torch.where(c1 - c0 < 1e-5, torch.ones_like(c0), c1 - c0)
    return b0 + (u - c0) / span * (b1 - b0)


@torch.no_grad()
def render_reference(coarse, fine, c2w, H, W, focal, near, far, n_samples, n_importance, white_bkgd):
    j, i = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    dirs = torch.stack([(i - 0.5 * W) / focal, -(j - 0.5 * H) / focal, -torch.ones_like(i)], -1).reshape(-1, 3)
    rays_d = dirs @ c2w[:3, :3].T
    rays_o = c2w[:3, 3].expand_as(rays_d)
    views = encode(rays_d / rays_d.norm(dim=-1, keepdim=True), 4)
    z = (near + (far - near) * torch.linspace(0.0, 1.0, n_samples)).expand(rays_d.shape[0], n_samples)

    def network(net, z):
        pts = rays_o[:, None] + rays_d[:, None] * z[..., None]
        return net(encode(pts, 10), views[:, None].expand(-1, z.shape[1], -1))

    _, weights = composite(network(coarse, z), z, rays_d, white_bkgd)
    z_fine = inverse_cdf(0.5 * (z[:, 1:] + z[:, :-1]), weights[:, 1:-1], n_importance)
    z_all, _ = torch.sort(torch.cat([z, z_fine], -1), -1)
    rgb, _ = composite(network(fine, z_all), z_all, rays_d, white_bkgd)
    return rgb.reshape(H, W, 3).numpy()


def read_png(path):
    """An 8-bit non-interlaced PNG (grey, RGB or RGBA) as a uint8 array [H, W, C]."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0, path
        elif kind == b"IDAT":
            idat += body
    channels = {0: 1, 2: 3, 6: 4}[color]
    raw, stride = zlib.decompress(idat), width * channels
    rows, previous = [], bytearray(stride)
    for r in range(height):
        kind, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b, c = previous[x], previous[x - channels] if x >= channels else 0
            p = a + b - c
            predictor = [0, a, b, (a + b) // 2,
                         a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c)
                         else c][kind]
            line[x] = (line[x] + predictor) & 255
        rows.append(bytes(line))
        previous = line
    return np.frombuffer(b"".join(rows), np.uint8).reshape(height, width, channels)


def tensors_of(path):
    with safe_open(path, framework="pt") as f:
        return f.metadata(), {n: f.get_tensor(n) for n in f.keys()}


def adam_for(coarse, fine, lr=5e-4):
    # nerf-pytorch's create_nerf: one Adam over the coarse parameters, then the fine ones.
    return torch.optim.Adam(params=list(coarse.parameters()) + list(fine.parameters()), lr=lr, betas=(0.9, 0.999))


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    spec = importlib.util.spec_from_file_location("convert_nerf_pytorch", CONVERTER)
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)

    scene = os.path.join(WORK, "scene")
    run([os.path.join(TOOLS, "nerf_scene"), "--out", scene, "--size", "16", "--n_train", "4", "--n_val", "2",
         "--n_test", "2", "--supersample", "1"])

    # --- a nerf-pytorch run folder: args.txt as its train() writes it, and 000003.tar after 3 iterations
    run_dir = os.path.join(WORK, "logs", "np_run")
    os.makedirs(run_dir)
    args = dict(converter.NERF_PYTORCH_DEFAULTS)
    args.update(expname="np_run", basedir=os.path.join(WORK, "logs"), datadir=scene, dataset_type="blender",
                use_viewdirs=True, white_bkgd=True, testskip=1, N_samples=8, N_importance=8, N_rand=64, chunk=1024)
    with open(os.path.join(run_dir, "args.txt"), "w") as f:
        for name in sorted(args):
            f.write("{} = {}\n".format(name, args[name]))

    torch.manual_seed(0)
    coarse, fine = NeRF(), NeRF()
    with torch.no_grad():  # a sharper field than the initialisation's, so that a wrong layout shows in the image
        for net in (coarse, fine):
            net.alpha_linear.weight.mul_(30.0)
            net.rgb_linear.weight.mul_(30.0)
    optimizer = adam_for(coarse, fine)
    for i in range(1, 4):
        optimizer.zero_grad()
        x, v = torch.randn(64, 63), torch.randn(64, 27)
        loss = (coarse(x, v) ** 2).mean() + (fine(x, v) - 0.5).abs().mean()
        loss.backward()
        optimizer.step()
        for group in optimizer.param_groups:
            group["lr"] = 5e-4 * 0.1 ** ((i - 1) / 250000)
    tar = os.path.join(run_dir, "000003.tar")
    torch.save({"global_step": 2, "network_fn_state_dict": coarse.state_dict(),
                "network_fine_state_dict": fine.state_dict(), "optimizer_state_dict": optimizer.state_dict()}, tar)
    legacy = os.path.join(WORK, "legacy.tar")
    torch.save({"global_step": 2}, legacy, _use_new_zipfile_serialization=False)

    # --- every tool recognises the torch files and prints the command that converts them
    # nerf-pytorch's args.txt is a config nerf_train reads.
    train_args = [os.path.join(TOOLS, "nerf_train"), "--config", os.path.join(run_dir, "args.txt"), "--device", "cpu",
                  "--threads", "2", "--i_print", "1000"]
    train = train_args + ["--n_val_eval", "0"]
    message = run(train, expect=1)
    check("holds nerf-pytorch checkpoints" in message and "--no_reload" in message,
          "nerf_train in a folder of nerf-pytorch checkpoints stops and says so")
    for label, command in (("nerf_train --ft_path", train + ["--ft_path", tar]),
                           ("nerf_render --ckpt", [os.path.join(TOOLS, "nerf_render"), "--ckpt", tar])):
        out = run(command, expect=1)
        check("a zip archive, as torch.save writes" in out and f"to-nerfcore {tar} {tar[:-4]}.safetensors" in out,
              f"{label} names the torch zip file and the convert command")
    out = run([os.path.join(TOOLS, "nerf_render"), "--ckpt", legacy], expect=1)
    check("a Python pickle" in out, "a legacy (pickle) torch.save file is recognised")

    # The printed command, run as printed from nerfcore's source folder (with this test's Python).
    command = next(line.strip() for line in message.splitlines() if "convert_nerf_pytorch.py" in line)
    check(command.startswith("python3 tools/convert_nerf_pytorch.py to-nerfcore "), "the command is " + command)
    print(run([sys.executable] + command.split()[1:], cwd=SOURCE).strip())
    converted = os.path.join(run_dir, "000003.safetensors")

    # --- the converted tensors are the torch ones, matched by parameter object
    meta, tensors = tensors_of(converted)
    check(meta["format"] == "nerfcore-checkpoint" and meta["global_step"] == "3" and meta["adam_step"] == "3",
          f"metadata: step 3 (nerf-pytorch global_step 2), Adam step 3: {meta['global_step']}, {meta['adam_step']}")
    check("N_importance = 8" in meta["config"] and "expname" in meta["config"] and "ft_path" not in meta["config"],
          "the run's options from args.txt are in the checkpoint (unset ones left out)")
    same = True
    for prefix, net in (("network_fn.", coarse), ("network_fine.", fine)):
        for name, param in net.named_parameters():
            state = optimizer.state[param]
            same &= torch.equal(tensors[prefix + name], param.detach())
            same &= torch.equal(tensors["optimizer.exp_avg." + prefix + name], state["exp_avg"])
            same &= torch.equal(tensors["optimizer.exp_avg_sq." + prefix + name], state["exp_avg_sq"])
    check(same and len(tensors) == 3 * 2 * 2 * 12, f"all {len(tensors)} tensors equal the torch parameters and moments")

    # --- nerf_train resumes from it at step 3: nothing to train up to N_iters 3, one step up to 4
    nc_train = train_args + ["--expname", "nc_run", "--ft_path", converted]
    out = run(nc_train + ["--N_iters", "3", "--n_val_eval", "0"])
    summary = json.load(open(os.path.join(WORK, "logs", "nc_run", "summary.json")))
    check("Reloading from" in out and summary["steps"] == 3 and summary["final_val_psnr"] is None,
          "nerf_train --ft_path loads it and, at N_iters = its step, trains nothing")
    check(not os.path.exists(os.path.join(WORK, "logs", "nc_run", "000003.safetensors")), "and saves nothing")
    run(nc_train + ["--N_iters", "4", "--n_val_eval", "1", "--quiet"])
    trained = os.path.join(WORK, "logs", "nc_run", "000004.safetensors")
    meta4, tensors4 = tensors_of(trained)
    moved = max((tensors4[n] - tensors[n]).abs().max().item() for n in tensors if n.startswith("network_"))
    check(meta4["global_step"] == "4" and meta4["adam_step"] == "4" and 0 < moved < 1e-2,
          f"one more step: step 4, Adam step 4, parameters moved by at most {moved:.3g}")

    # ... and goes back into modules and an Adam that torch loads and steps, as nerf-pytorch's create_nerf.
    back4 = os.path.join(WORK, "000004.tar")
    print(run([sys.executable, CONVERTER, "to-nerf-pytorch", trained, back4]).strip())
    ckpt = torch.load(back4, weights_only=True)
    coarse4, fine4 = NeRF(), NeRF()
    coarse4.load_state_dict(ckpt["network_fn_state_dict"])
    fine4.load_state_dict(ckpt["network_fine_state_dict"])
    optimizer4 = adam_for(coarse4, fine4)
    optimizer4.load_state_dict(ckpt["optimizer_state_dict"])
    steps = {float(optimizer4.state[p]["step"]) for p in optimizer4.param_groups[0]["params"]}
    (coarse4(torch.randn(4, 63), torch.randn(4, 27)).sum() + fine4(torch.randn(4, 63), torch.randn(4, 27)).sum()).backward()
    optimizer4.step()
    check(ckpt["global_step"] == 3 and steps == {4.0} and
          all(float(optimizer4.state[p]["step"]) == 5.0 for p in optimizer4.param_groups[0]["params"]),
          "back in torch: global_step 3, Adam step 4, and torch's Adam steps on from it")

    # --- nerf_render renders what the torch networks render
    pose = [[1, 0, 0, 0.1], [0, 0.8, -0.6, -2.4], [0, 0.6, 0.8, 3.2]]
    H, W, focal = 12, 10, 14.0
    poses = os.path.join(WORK, "poses.json")
    json.dump({"H": H, "W": W, "focal": focal, "near": 2.0, "far": 6.0,
               "frames": [{"transform_matrix": pose + [[0, 0, 0, 1]]}]}, open(poses, "w"))
    run([os.path.join(TOOLS, "nerf_render"), "--ckpt", converted, "--path", poses, "--no_depth", "--quiet", "--device",
         "cpu", "--out", os.path.join(WORK, "render")])
    image = read_png(os.path.join(WORK, "render", "000.png"))[..., :3] / 255.0
    reference = render_reference(coarse, fine, torch.tensor(pose, dtype=torch.float32), H, W, focal, 2.0, 6.0, 8, 8,
                                 True)
    error = float(np.abs(image - reference).max())
    check(error <= 0.5 / 255 + 2e-3 and float(reference.std()) > 0.05,
          f"nerf_render's image = the torch rendering: max difference {error * 255:.3f}/255 "
          f"(the image's std is {reference.std():.3f})")

    # --- and back: identical tensors, steps and global_step
    back = os.path.join(WORK, "back.tar")
    print(run([sys.executable, CONVERTER, "to-nerf-pytorch", converted, back]).strip())
    original, returned = torch.load(tar, weights_only=True), torch.load(back, weights_only=True)
    check(returned["global_step"] == original["global_step"], "global_step comes back")
    identical = True
    for key in ("network_fn_state_dict", "network_fine_state_dict"):
        identical &= list(original[key]) == list(returned[key])
        identical &= all(torch.equal(original[key][n], returned[key][n]) for n in original[key])
    a, b = original["optimizer_state_dict"], returned["optimizer_state_dict"]
    identical &= sorted(a["state"]) == sorted(b["state"]) and a["param_groups"][0]["params"] == b["param_groups"][0]["params"]
    for k in a["state"]:
        identical &= all(torch.equal(a["state"][k][m], b["state"][k][m]) for m in ("exp_avg", "exp_avg_sq"))
        identical &= float(a["state"][k]["step"]) == float(b["state"][k]["step"])
    check(identical, "every state-dict tensor, Adam moment and step comes back identical, in the same order")
    lr_a, lr_b = a["param_groups"][0]["lr"], b["param_groups"][0]["lr"]
    check(abs(lr_a - lr_b) <= 1e-12 * lr_a, f"the learning rate comes back: {lr_a!r} -> {lr_b!r}")

    # --- the converter's own errors
    out = run([sys.executable, CONVERTER, "to-nerfcore", tar, os.path.join(WORK, "x.safetensors"), "--config",
               os.path.join(SOURCE, "configs", "builtin.txt")], expect=1)
    check("netdepth = 4" in out and "8 layers" in out and out.count("\n") == 1, "a config that does not fit: " + out.strip())
    out = run([sys.executable, CONVERTER, "to-nerfcore", tar], expect=1)
    check("exists; pass --force" in out, "an existing output is not overwritten: " + out.strip())

    print(f"{len(failures)} failures" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
