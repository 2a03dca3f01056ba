"""Training callbacks: sharpen validation patches every N steps; log step time and peak memory.

The sharpening monitor runs the inference (EMA) model with the config's fast sampler on a few
fixed validation patches, logs FSC-AUC, PSNR and SSIM against the truth, and writes a PNG of
the central slices (input / output / truth) to RUN/monitor/step_NNNNNNN.png.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from densitydiff.viz import plot_slices


def _metrics(estimate: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """FSC-AUC (up to Nyquist), PSNR and SSIM of one patch (voxel size 1: shells only)."""
    from densitydiff import metrics as m

    return {
        "fsc_auc": float(m.fsc_auc(m.fsc(estimate, truth, 1.0))),
        "psnr": float(m.psnr(estimate, truth)),
        "ssim": float(m.ssim(estimate, truth)),
    }


class SharpeningMonitor(L.Callback):
    """Every `every_n_steps` steps: sharpen `n_patches` validation patches and log metrics."""

    def __init__(self, val_dataset, every_n_steps: int, n_patches: int, run_dir: str | Path):
        self.dataset = val_dataset
        self.every = int(every_n_steps)
        self.n = min(int(n_patches), len(val_dataset))
        self.out_dir = Path(run_dir) / "monitor"

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step == 0 or step % self.every or not trainer.is_global_zero:
            return
        self.run(trainer, pl_module, step)

    @torch.no_grad()
    def run(self, trainer, pl_module, step: int) -> dict[str, float]:
        items = [self.dataset[i] for i in range(self.n)]
        batch = torch.utils.data.default_collate(items)
        dev = pl_module.device
        inp = batch["input"].to(dev)
        res = [batch.get(k) for k in ("input_resolution", "target_resolution")]
        res = [r.to(dev) if torch.is_tensor(r) else r for r in res]
        model = pl_module.inference_model
        was_training = model.training
        model.eval()
        generator = torch.Generator(device=dev).manual_seed(0)
        out = model.sharpen(inp, *res, generator=generator).float().cpu().numpy()
        model.train(was_training)
        truth = batch["target"].float().numpy()
        per = [_metrics(out[i, 0], truth[i, 0]) for i in range(self.n)]
        metrics = {f"monitor/{k}": float(np.mean([p[k] for p in per])) for k in per[0]}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
        plot_slices(
            {
                "input": batch["input"][0, 0].float().numpy(),
                "output": out[0, 0],
                "truth": truth[0, 0],
            },
            self.out_dir / f"step_{step:07d}.png",
        )
        return metrics


def peak_cpu_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class PerformanceMonitor(L.Callback):
    """Logs the wall time of each training step and peak CPU (RSS) and GPU memory."""

    def __init__(self):
        self._start = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        values = {
            "perf/step_time_s": time.perf_counter() - self._start,
            "perf/peak_cpu_rss_mb": peak_cpu_rss_mb(),
        }
        if torch.cuda.is_available() and pl_module.device.type == "cuda":
            values["perf/peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
        for key, value in values.items():
            pl_module.log(key, value, on_step=True, on_epoch=False, batch_size=1)
