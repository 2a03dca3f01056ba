"""Lightning module: an EDM denoiser over standardised latents, its loss, Adam and an EMA copy."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from densitydiff.diffusion.edm import edm_loss
from densitydiff.nn.ema import ema_copy
from densitydiff.prior.config import PriorConfig
from densitydiff.prior.network import build_denoiser


class PriorModule(pl.LightningModule):
    """Trains D(x; sigma) on latents; batches are (mu,) or (mu, logvar) in the file's units.

    Latents are standardised with the stored `mean`/`std` buffers; with log-variances each step
    draws fresh posterior samples z = mu + exp(logvar / 2) eps (the VAE's aggregate posterior).
    The EMA starts from the initial weights and is updated after every optimiser step.
    """

    def __init__(self, dim: int, config: dict[str, Any], mean=None, std=None) -> None:
        super().__init__()
        self.save_hyperparameters("dim", "config")  # plain dict: weights_only-loadable
        self.config = PriorConfig.from_dict(config)
        self.denoiser = build_denoiser(dim, self.config)
        self.ema = ema_copy(self.denoiser, self.config.ema_decay, average_initial=True)
        self.register_buffer("mean", torch.zeros(dim) if mean is None else torch.as_tensor(mean))
        self.register_buffer("std", torch.ones(dim) if std is None else torch.as_tensor(std))

    def step_generator(self) -> torch.Generator:
        """The noise of a step depends on (seed, step) only: a resumed run draws what an
        uninterrupted one would have drawn (the global RNG is not in the checkpoint)."""
        seed = int(self.config.seed) * 1_000_003 + int(self.global_step)
        return torch.Generator().manual_seed(seed)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        g = self.step_generator()
        z = batch[0]
        if len(batch) > 1:
            eps = torch.randn(z.shape, generator=g, dtype=z.dtype).to(z.device)
            z = z + torch.exp(0.5 * batch[1]) * eps
        x = (z - self.mean) / self.std
        loss = edm_loss(
            self.denoiser, x, p_mean=self.config.p_mean, p_std=self.config.p_std, generator=g
        )
        self.log("loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Checkpoints that kept the EMA as a plain copy (keys `ema.*`) resume into the
        AveragedModel (`ema.module.*`, `ema.n_averaged`) with the same weights."""
        sd = checkpoint["state_dict"]
        if "ema.n_averaged" in sd:
            return
        for key in [k for k in sd if k.startswith("ema.")]:
            sd["ema.module." + key[len("ema.") :]] = sd.pop(key)
        sd["ema.n_averaged"] = torch.tensor(1 + int(checkpoint.get("global_step", 0)))

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.ema.update_parameters(self.denoiser)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.denoiser.parameters(), lr=self.config.lr)
        if self.config.lr_schedule != "cosine":
            return opt
        # cosine decay to 0 over the run: the last steps average out Adam's noise
        steps = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
