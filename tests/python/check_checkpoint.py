#!/usr/bin/env python3
"""Reads a nerfcore checkpoint with Python's safetensors (pip install safetensors numpy), to show that
the files are standard safetensors. Not run in CI (it needs PyPI packages); run it by hand:

    python3 tests/python/check_checkpoint.py logs/run/000100.safetensors [--expect-sum NAME=VALUE ...]

Prints every tensor's name, shape and sum, checks the metadata and that each parameter has Adam
moments of its shape, and exits non-zero on any problem.
"""
import sys

import numpy as np
from safetensors import safe_open


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    path = argv[1]
    expected_sums = {}
    for arg in argv[2:]:
        if arg == "--expect-sum":
            continue
        name, value = arg.rsplit("=", 1)
        expected_sums[name] = float(value)
    problems = []
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
        for key in ("format", "format_version", "global_step", "adam_step", "config"):
            if key not in meta:
                problems.append(f"metadata has no {key}")
        if meta.get("format") != "nerfcore-checkpoint":
            problems.append(f"format is {meta.get('format')!r}")
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    params = sorted(n for n in tensors if n.startswith("network_"))
    for name in params:
        t = tensors[name]
        if t.dtype != np.float32:
            problems.append(f"{name} is {t.dtype}")
        for moment in ("optimizer.exp_avg.", "optimizer.exp_avg_sq."):
            m = tensors.get(moment + name)
            if m is None or m.shape != t.shape:
                problems.append(f"{moment}{name} missing or of another shape")
        print(f"{name:45s} {str(list(t.shape)):12s} sum {float(t.astype(np.float64).sum()):.9g}")
    for name, want in expected_sums.items():
        got = float(tensors[name].astype(np.float64).sum())
        if abs(got - want) > 1e-6 * max(1.0, abs(want)):
            problems.append(f"sum of {name} is {got}, expected {want}")
    print(f"global_step {meta.get('global_step')}, adam_step {meta.get('adam_step')}, "
          f"{len(tensors)} tensors, {sum(t.size for n, t in tensors.items() if n.startswith('network_'))} parameters")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
