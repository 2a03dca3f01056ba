"""Seconds per 64^3 tile of one network pass against the tiles per call (not a test).

    PYTHONPATH=src python bench/tile_batch.py [--model refine] [--tile 64] [--batch 1 2 4 8 16]
        [--threads 2] [--repeats 2]

Times the packaged model's network alone (refine: its residual network on [y_t, input,
prediction]; regression: the U-Net), random inputs, the best of --repeats after one warm-up
call. Why: `sharpen` picks its default --batch-size per device from this (infer.CPU_BATCH).
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="refine")
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import torch

    from densitydiff.sharpen.checkpoint import load_sharpener

    torch.set_num_threads(args.threads)
    model = load_sharpener(args.model).model
    net = getattr(model, "net", None)
    channels = net.in_conv.in_channels if hasattr(net, "in_conv") else 1
    rows = []
    for b in args.batch:
        x = torch.randn(b, channels, *(args.tile,) * 3)
        t = torch.full((b,), 10)
        r = torch.full((b,), 4.0)

        def call(x=x, t=t, r=r):
            return net(x, t, r, r) if model.is_generative else model(x[:, :1], r, r)

        with torch.no_grad():
            call()
            best = float("inf")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                call()
                best = min(best, time.perf_counter() - t0)
        rows.append({"batch": b, "s_per_tile": round(best / b, 3)})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"model": args.model, "tile": args.tile, "threads": args.threads,
                      "rows": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
