"""LightningModule for the sharpening models: loss, AdamW, warm-up + cosine LR, EMA.

Lightning owns the loop, mixed precision, DDP and checkpoints; this module only says what a
step is. The DDPM and the refine model (config.EMA_MODELS) keep an exponential moving average
of their weights (densitydiff.nn.ema;
Ho et al. 2020 sec. 4, decay 0.9999) in `self.ema`, saved with the checkpoint and used for
validation and sampling. The training data's geometry (voxel size, patch) is saved with the
hyperparameters, so inference knows the grid the model learnt on.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch import nn

from densitydiff.nn.ema import ema_copy
from densitydiff.sharpen.config import EMA_MODELS, SharpenConfig, from_dict
from densitydiff.sharpen.models import build_model


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """LR factor: linear warm-up over `warmup` steps, then cosine decay to `min_ratio`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class SharpenModule(L.LightningModule):
    """Train one sharpening model (unet | vae | ddpm | refine) from a config dict.

    `geometry` ({"voxel_size": Å, "patch": voxels} of the training data, or None when the data
    does not say) is stored for inference (densitydiff.sharpen.checkpoint). `predictor_state`
    (refine only: a trained regression model's state_dict) initialises the predictor before
    the EMA copies the model; it is not a hyperparameter (the checkpoint holds the weights).
    """

    def __init__(
        self,
        config: dict[str, Any],
        geometry: dict[str, Any] | None = None,
        predictor_state: dict[str, torch.Tensor] | None = None,
    ):
        super().__init__()
        # plain dicts: weights_only-loadable
        self.save_hyperparameters({"config": config, "geometry": geometry})
        self.config: SharpenConfig = from_dict(config)
        self.model = build_model(self.config)
        if predictor_state is not None:
            self.model.predictor.load_state_dict(predictor_state)
        decay = self.config.optim.ema_decay
        self.ema: nn.Module | None = None
        if self.config.model in EMA_MODELS and decay > 0:
            self.ema = ema_copy(self.model, decay)

    @property
    def inference_model(self) -> nn.Module:
        """EMA weights when kept, else the trained ones."""
        return self.ema.module if self.ema is not None else self.model

    def step_generator(self) -> torch.Generator:
        """Noise for this step seeded by (seed, global step, rank): a resumed run draws the same."""
        seed = (self.config.seed * 1_000_003 + self.global_step) * 1009 + self.global_rank
        return torch.Generator(device=self.device).manual_seed(seed)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, extras = self.model.loss(batch, self.step_generator())
        bs = batch["input"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        for key, value in extras.items():
            self.log(f"train/{key}", value, batch_size=bs)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=bs)
        return loss

    def optimizer_step(self, *args, **kwargs) -> None:
        """Step, then update the EMA (before callbacks such as checkpointing see the step)."""
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        generator = torch.Generator(device=self.device).manual_seed(self.config.seed + batch_idx)
        loss, _ = self.inference_model.loss(batch, generator)
        self.log(
            "val/loss", loss, prog_bar=True, sync_dist=True, batch_size=batch["input"].shape[0]
        )
        return loss

    def configure_optimizers(self):
        o = self.config.optim
        trained = [p for p in self.model.parameters() if p.requires_grad]  # not a frozen predictor
        optimizer = torch.optim.AdamW(trained, lr=o.lr, weight_decay=o.weight_decay)
        total = self.config.trainer.max_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: warmup_cosine(s, o.warmup_steps, total, o.min_lr_ratio)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    @torch.no_grad()
    def sharpen(self, inp, input_resolution=None, target_resolution=None, *, generator=None,
                sampling=None) -> torch.Tensor:  # fmt: skip
        """Sharpen a batch of normalised input patches with the inference (EMA) weights."""
        return self.inference_model.sharpen(
            inp, input_resolution, target_resolution, generator=generator, sampling=sampling
        )
