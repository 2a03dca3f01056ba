"""Training callbacks: sharpen validation patches and the real map every N steps; log step time
and peak memory.

The sharpening monitor runs the inference (EMA) model with the config's fast sampler on a few
fixed validation patches, logs FSC-AUC, PSNR and SSIM against the truth, and writes a PNG of
the central slices (input / output / truth) to RUN/monitor/step_NNNNNNN.png. The real-map
monitor sharpens the packaged real map (EMD-5168 around one actin subunit) and logs its CC_mask
against the deposited model 3MFP (sharpen.realmap), before and after.
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


class RealMapMonitor(L.Callback):
    """Every `every_n_steps` steps: sharpen a real map with the inference model (one draw, the
    config's sampler, seed 0) and log `monitor/real_cc_mask` against the map's deposited model
    and `monitor/real_cc_mask_gain`, that minus the CC_mask of the map as deposited.

    Default: the packaged EMD-5168 crop and 3MFP at 6.6 Å, the target the finest its grid holds,
    as `densitydiff evaluate --map` measures it (sharpen.realmap). `geometry` is the training
    data's {"voxel_size", "patch"} (None: the checkpoints' assumed 1 Å, 32).
    """

    def __init__(self, every_n_steps: int, geometry: dict | None = None, map_path=None,
                 model_path=None, input_resolution: float | None = None):  # fmt: skip
        from densitydiff.sharpen import realmap

        self.every = int(every_n_steps)
        self.geometry = geometry or {}
        self.map_path = Path(map_path or realmap.EXAMPLE_MAP)
        self.model_path = Path(model_path or realmap.EXAMPLE_MODEL)
        self.input_resolution = float(input_resolution or realmap.EXAMPLE_RESOLUTION)
        self._prepared = None  # (density, reference, mask, target, cc_mask of the input)
        self.last_output = None  # the last sharpened map (a DensityMap), for checks

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step == 0 or step % self.every or not trainer.is_global_zero:
            return
        self.run(trainer, pl_module, step)

    def _prepare(self):
        """Read the map, simulate the reference and mask once; the input's CC_mask."""
        if self._prepared is None:
            from densitydiff.formats.maps import read_volume
            from densitydiff.sharpen import realmap
            from densitydiff.structures import read_structure

            density = read_volume(self.map_path)
            target = realmap.default_target(density)
            reference, mask = realmap.reference_and_mask(
                density, read_structure(self.model_path), self.input_resolution, target
            )
            before = realmap.measure(density.array, reference, density.voxel_size, mask)
            self._prepared = (density, reference, mask, target, before["cc_mask"])
        return self._prepared

    @torch.no_grad()
    def run(self, trainer, pl_module, step: int) -> dict[str, float]:
        from densitydiff.sharpen import realmap
        from densitydiff.sharpen.checkpoint import (
            ASSUMED_PATCH,
            ASSUMED_VOXEL_SIZE,
            SharpenCheckpoint,
        )
        from densitydiff.sharpen.config import from_dict
        from densitydiff.sharpen.infer import sharpen_map

        density, reference, mask, target, before = self._prepare()
        model = pl_module.inference_model
        voxel = float(self.geometry.get("voxel_size", ASSUMED_VOXEL_SIZE))
        sharpener = SharpenCheckpoint(
            model=model,
            config=from_dict(pl_module.hparams["config"]),
            voxel_size=voxel,
            patch=int(self.geometry.get("patch", ASSUMED_PATCH)),
            name="monitor",
        )
        target = max(target, 2.0 * voxel)  # never finer than the model's grid holds
        was_training = model.training
        model.eval()
        try:
            result = sharpen_map(density, sharpener, input_resolution=self.input_resolution,
                                 target_resolution=target, samples=1, seed=0,
                                 device=str(pl_module.device))  # fmt: skip
        finally:
            model.train(was_training)
        self.last_output = result.mean
        after = realmap.measure(result.mean.array, reference, density.voxel_size, mask)
        metrics = {
            "monitor/real_cc_mask": float(after["cc_mask"]),
            "monitor/real_cc_mask_gain": float(after["cc_mask"] - before),
        }
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
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
