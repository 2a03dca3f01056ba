"""Benchmarks for the sharpening models: attention memory and training step time / peak memory.

Each measurement runs in its own subprocess so that the peak resident set size
(resource.getrusage ru_maxrss; tracemalloc does not see torch's allocations) belongs to that
configuration alone; the baseline RSS of an idle interpreter with torch is reported too.

  PYTHONPATH=src python bench/train.py attention     # SDPA vs naive softmax(QK^T)V
  PYTHONPATH=src python bench/train.py unet          # U-Net attention at the bottom vs full size
  PYTHONPATH=src python bench/train.py steps [--presets tiny small base] [--size 64]
  PYTHONPATH=src python bench/train.py all
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads({threads})
job = json.loads(sys.argv[1])
kind = job["kind"]
out = {{}}

def naive_sdpa(q, k, v, *args, **kwargs):
    w = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)  # N x N
    return w @ v

if kind == "baseline":
    pass
elif kind == "attention":
    n, c = job["tokens"], job["channels"]
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 1, n, c, generator=g, requires_grad=True) for _ in range(3))
    fn = naive_sdpa if job["impl"] == "naive" else torch.nn.functional.scaled_dot_product_attention
    t = time.perf_counter()
    fn(q, k, v).square().sum().backward()
    out["seconds"] = time.perf_counter() - t
elif kind == "unet":
    from densitydiff.nn.unet3d import UNet3D
    if job["impl"] == "naive":
        torch.nn.functional.scaled_dot_product_attention = naive_sdpa
    net = UNet3D(2, 1, widths=job["widths"], attention_levels=job["attention_levels"],
                 head_channels=job["widths"][0])
    s = job["size"]
    x = torch.randn(1, 2, s, s, s)
    t = time.perf_counter()
    net(x, torch.tensor([10])).square().mean().backward()
    out["seconds"] = time.perf_counter() - t
elif kind == "step":
    from densitydiff.sharpen.config import load_config
    from densitydiff.sharpen.models import build_model
    cfg = load_config(job["preset"], {{"model": job["model"]}})
    torch.manual_seed(0)
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    s, b = job["size"], job["batch"]
    batch = {{"input": torch.randn(b, 1, s, s, s), "target": torch.randn(b, 1, s, s, s),
             "input_resolution": torch.full((b,), 4.0), "target_resolution": torch.full((b,), 2.0)}}
    times = []
    for _ in range(job["steps"]):
        t = time.perf_counter()
        loss, _ = model.loss(batch)
        opt.zero_grad(); loss.backward(); opt.step()
        times.append(time.perf_counter() - t)
    out["seconds"] = min(times[1:]) if len(times) > 1 else times[0]
    out["params_M"] = sum(p.numel() for p in model.parameters()) / 1e6
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT", json.dumps(out))
"""


def run_child(job: dict, threads: int = 1, timeout: float = 1800) -> dict:
    """Run one measurement in a fresh interpreter; {"error": ...} if it fails or runs out."""
    code = CHILD.format(threads=threads)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, json.dumps(job)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr.strip().splitlines() or ["killed (out of memory?)"])[-1]
    return {"error": f"exit {proc.returncode}: {tail[:200]}"}


def bench_attention(token_sides=(16, 24, 32), channels: int = 32) -> list[dict]:
    rows = []
    for side in token_sides:
        for impl in ("sdpa", "naive"):
            n = side**3
            job = {"kind": "attention", "tokens": n, "channels": channels, "impl": impl}
            if impl == "naive" and n * n * 4 * 3 > 6e9:  # N x N scores, softmax, and grad
                res = {"error": f"skipped: needs > {n * n * 4 * 3 / 1e9:.0f} GB (3 N x N fp32)"}
            else:
                res = run_child(job)
            rows.append({"tokens": f"{side}^3={n}", "impl": impl, **res})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def bench_unet(size: int = 32, widths=(8, 16, 32)) -> list[dict]:
    rows = []
    bottom = len(widths) - 1
    for levels, impl in (([bottom], "sdpa"), ([0], "sdpa"), ([bottom], "naive"), ([0], "naive")):
        job = {
            "kind": "unet",
            "size": size,
            "widths": list(widths),
            "attention_levels": levels,
            "impl": impl,
        }
        tokens = (size // 2 ** levels[0]) ** 3
        if impl == "naive" and tokens**2 * 4 * 3 > 6e9:
            res = {"error": f"skipped: needs > {tokens**2 * 12 / 1e9:.0f} GB (3 N x N fp32)"}
        else:
            res = run_child(job)
        rows.append({"patch": f"{size}^3", "attention_tokens": tokens, "impl": impl, **res})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def bench_steps(presets=("tiny", "small", "base"), size: int = 64, batch: int = 1) -> list[dict]:
    rows = []
    for preset in presets:
        for model in ("unet", "vae", "ddpm"):
            steps = 2 if preset == "base" else 3
            job = {
                "kind": "step",
                "preset": preset,
                "model": model,
                "size": size,
                "batch": batch,
                "steps": steps,
            }
            rows.append({"preset": preset, "model": model, "batch": batch, **run_child(job)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("what", choices=["attention", "unet", "steps", "all"])
    p.add_argument("--presets", nargs="+", default=["tiny", "small", "base"])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=1)
    args = p.parse_args()
    start = time.time()
    print(json.dumps({"baseline": run_child({"kind": "baseline"})}), flush=True)
    if args.what in ("attention", "all"):
        bench_attention()
    if args.what in ("unet", "all"):
        bench_unet()
    if args.what in ("steps", "all"):
        bench_steps(args.presets, args.size, args.batch)
    print(f"total {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
