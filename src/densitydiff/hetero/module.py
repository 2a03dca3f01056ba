"""Lightning module of the heterogeneity VAE: the image formation model, the loss, Adam.

Loss (cryoDRGN's `train_vae`): mean squared error between the data's transform and the
decoder's slice times the CTF, over the slice's circular mask, plus beta KL(q(z|x) || N(0, I))
divided by the number of mask points. The data are moved back by the pose's shift with the
simulator's phase ramp (`simulate.fft.shift_phases(D, -t)`) and compared with CTF * slice, the
simulator's CTF (`simulate.ctf.ctf`), so the model is exactly `simulate.cryoem.form_images`.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from densitydiff.formats.ctf import CTFParams
from densitydiff.hetero.config import HeteroConfig
from densitydiff.hetero.model import HeteroVAE
from densitydiff.simulate.ctf import ctf as ctf_images
from densitydiff.simulate.ctf import phase_flip
from densitydiff.simulate.fft import fft2_centered, shift_phases


def observed_half(model: HeteroVAE, images: torch.Tensor, translations: torch.Tensor):
    """The data's transforms / D, moved back to the centre, on the decoder's half plane (B, P)."""
    D = model.D
    spectra = fft2_centered(images) * shift_phases(D, -translations).to(images.device)
    return spectra.reshape(len(images), -1)[:, model.idx] / D


def ctf_half(model: HeteroVAE, ctf_rows: torch.Tensor) -> torch.Tensor:
    """The CTF (B, P) of each image on the half plane (the simulator's CTF)."""
    c = ctf_images(CTFParams.from_array(ctf_rows.cpu().numpy()), device=model.idx.device)
    return c.reshape(len(ctf_rows), -1)[:, model.idx]


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(N(mu, exp logvar) || N(0, I)) (Kingma & Welling 2014, app. B)."""
    return torch.mean(-0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1))


class HeteroModule(pl.LightningModule):
    """Trains the VAE on batches of `data.ChunkedParticles`; keeps every image's q(z) of the epoch.

    `sign` is -1 when the data are inverted (cryoDRGN's default), `img_std` the data's pixel
    std: the model sees sign * image / img_std. Latent noise depends on (seed, step) only, so a
    resumed run draws what an uninterrupted one would have drawn.
    """

    def __init__(
        self, D: int, n_images: int, config: dict[str, Any], img_std: float, pixel_size: float
    ) -> None:
        super().__init__()
        self.save_hyperparameters("D", "n_images", "config", "img_std", "pixel_size")
        self.config = HeteroConfig.from_dict(config)
        self.sign = -1.0 if self.config.invert_data else 1.0
        self.model = HeteroVAE(D, self.config)
        self.register_buffer("z_mu", torch.zeros(n_images, self.config.zdim), persistent=False)
        self.register_buffer("z_logvar", torch.zeros(n_images, self.config.zdim), persistent=False)
        self.register_buffer("z_seen", torch.zeros(n_images), persistent=False)
        self.epoch_latents: tuple | None = None

    def step_generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.config.seed) * 1_000_003 + self.global_step)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        return images * (self.sign / float(self.hparams.img_std))

    def loss(self, batch: dict, generator: torch.Generator | None = None):
        """(loss, gen_loss, kl, mu, logvar) of a batch."""
        m = self.model
        x = self.normalise(batch["images"])
        enc_in = x
        if self.config.phase_flip:
            enc_in = phase_flip(x, CTFParams.from_array(batch["ctf"].cpu().numpy())).to(x)
        mu, logvar = m.encode(enc_in)
        eps = torch.randn(mu.shape, generator=generator).to(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        pred = m.slices(z, batch["rotations"]) * ctf_half(m, batch["ctf"]).to(x.device)
        target = observed_half(m, x, batch["translations"])
        gen_loss = torch.mean((pred - target).abs() ** 2)
        kl = kl_divergence(mu.float(), logvar.float())
        mask_points = 2 * m.idx.numel() - 1  # the whole circular mask
        loss = gen_loss + self.config.kl_weight * kl / mask_points
        return loss, gen_loss, kl, mu, logvar

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, gen_loss, kl, mu, logvar = self.loss(batch, self.step_generator())
        i = batch["index"].to(self.z_mu.device)
        self.z_mu[i] = mu.detach().float()
        self.z_logvar[i] = logvar.detach().float()
        self.z_seen[i] = 1.0
        n = len(batch["index"])
        self.log("loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        self.log("gen_loss", gen_loss, on_step=False, on_epoch=True, batch_size=n)
        self.log("kl", kl, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def on_train_epoch_start(self) -> None:
        loader = self.trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if dataset is not None and hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)
            dataset.set_rank(self.global_rank, self.trainer.world_size)

    def on_train_epoch_end_latents(self) -> None:
        """Gather every rank's q(z) of the epoch (each image was seen by one rank)."""
        mu, logvar, seen = self.z_mu, self.z_logvar, self.z_seen
        if self.trainer.world_size > 1:
            mu, logvar, seen = (
                self.all_gather(t).sum(0)
                for t in (mu * seen[:, None], logvar * seen[:, None], seen)
            )
            keep = seen > 0
            mu[keep] /= seen[keep, None]
            logvar[keep] /= seen[keep, None]
            seen = keep.float()
        self.epoch_latents = (
            mu.cpu().numpy().copy(),
            logvar.cpu().numpy().copy(),
            seen.cpu().numpy().copy(),
        )

    def configure_optimizers(self):
        return torch.optim.Adam(
            self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
