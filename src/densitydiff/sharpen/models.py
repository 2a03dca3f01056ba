"""The sharpening models over one UNet3D backbone: regression, conditional VAE, SR3 DDPM, and
predict-and-refine (the regression U-Net plus a DDPM of its residual).

One protocol for all: `loss(batch, generator=None)` on the batch dicts of PatchDataset
({"input", "target": (B,1,P,P,P) z-scored, "input_resolution", "target_resolution": (B,) Å})
for training, `sharpen(input, r_in, r_out, *, generator=None, sampling=None)` for inference,
and `is_generative` on the class (a generative model draws a new sample per generator;
`sampling`, a densitydiff.diffusion.sampling.Sampling, only matters to the DDPM, whose default
is its config's). Outputs stay in the normalised space; callers map them back.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from densitydiff.diffusion.ddpm import DDPM
from densitydiff.diffusion.sampling import Sampling, antithetic_noise
from densitydiff.nn.unet3d import UNet3D
from densitydiff.nn.vae3d import ConditionalVAE3d
from densitydiff.sharpen.config import SharpenConfig

RESOLUTIONS = ("input_resolution", "target_resolution")


def _net_kwargs(config: SharpenConfig) -> dict:
    n = config.net
    return dict(
        widths=list(n.widths),
        blocks_per_level=n.blocks_per_level,
        attention_levels=list(n.attention_levels),
        head_channels=n.head_channels,
        emb_dim=n.emb_dim,
        dropout=n.dropout,
        gradient_checkpointing=n.gradient_checkpointing,
        norm=n.norm,
    )


class SharpeningModel(nn.Module):
    """The protocol the models share; inference (densitydiff.sharpen.infer) uses only it.

    `is_generative`: each draw is a new sample. `sampling`: the default Sampling of a diffusion
    model (None otherwise). `is_local`: the output at a voxel depends only on inputs within
    `receptive_radius()` voxels (then tiles can be made exact).
    """

    is_generative: bool = False
    sampling: Sampling | None = None

    @property
    def is_local(self) -> bool:
        return False

    def receptive_radius(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} is not a local network")

    def loss(self, batch: dict, generator=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss, extra scalars to log) for a training batch."""
        raise NotImplementedError

    def sharpen(self, inp, input_resolution=None, target_resolution=None, *, generator=None,
                sampling=None) -> torch.Tensor:  # fmt: skip
        """Sharpened normalised patches (B, 1, P, P, P) for normalised inputs."""
        raise NotImplementedError

    @torch.no_grad()
    def sharpen_draws(self, inp, input_resolution=None, target_resolution=None, *,
                      generators, sampling=None) -> torch.Tensor:  # fmt: skip
        """One draw per generator, stacked (S, B, 1, P, P, P); draw s equals `sharpen` with
        generators[s]. Models whose draws share work (refine's predictor) override it."""
        return torch.stack([self.sharpen(inp, input_resolution, target_resolution, generator=g,
                                         sampling=sampling) for g in generators])  # fmt: skip


def _resolutions(batch: dict) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    return batch.get("input_resolution"), batch.get("target_resolution")


class RegressionSharpener(SharpeningModel):
    """U-Net from the input map to the target map (residual by default), L1 or L2 loss."""

    is_generative = False

    def __init__(self, config: SharpenConfig):
        super().__init__()
        self.net = UNet3D(1, 1, conditions=RESOLUTIONS, **_net_kwargs(config))
        self.loss_kind = config.loss
        self.residual = config.residual

    @property
    def is_local(self) -> bool:
        return bool(self.net.is_local)

    def receptive_radius(self) -> int:
        return self.net.receptive_radius()

    def forward(self, inp, input_resolution=None, target_resolution=None) -> torch.Tensor:
        out = self.net(inp, None, input_resolution, target_resolution)
        return inp + out if self.residual else out

    def loss(self, batch: dict, generator=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.regression_loss(self(batch["input"], *_resolutions(batch)), batch["target"]), {}

    def regression_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The configured L1 or L2 distance of a prediction from its target."""
        pred, target = pred.float(), target.float()
        return F.l1_loss(pred, target) if self.loss_kind == "l1" else F.mse_loss(pred, target)

    @torch.no_grad()
    def sharpen(
        self,
        inp: torch.Tensor,
        input_resolution=None,
        target_resolution=None,
        *,
        generator: torch.Generator | None = None,
        sampling: Sampling | None = None,
    ) -> torch.Tensor:
        """The regression estimate (deterministic: `generator` and `sampling` are unused)."""
        return self(inp, input_resolution, target_resolution)


class VAESharpener(SharpeningModel):
    """Conditional VAE; loss = -ELBO with a beta on the KL term (Higgins et al. 2017)."""

    is_generative = True

    def __init__(self, config: SharpenConfig):
        super().__init__()
        self.vae = ConditionalVAE3d(
            latent_channels=config.vae.latent_channels,
            encoder_widths=list(config.vae.encoder_widths),
            decoder=dict(_net_kwargs(config), conditions=RESOLUTIONS),
        )
        self.beta = config.vae.beta

    def loss(self, batch: dict, generator=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inp, target = batch["input"], batch["target"]
        mu, logvar = self.vae.encode(target, inp)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * (0.5 * logvar).exp()  # reparameterisation (K&W eq. 10)
        recon = self.vae.decode(z, inp, *_resolutions(batch)).float()
        rec = F.mse_loss(recon, target.float())
        # KL(N(mu, s^2) || N(0, 1)) per latent element (Kingma & Welling 2014, App. B)
        kl = 0.5 * torch.mean(mu.float() ** 2 + logvar.float().exp() - 1 - logvar.float())
        return rec + self.beta * kl, {"recon": rec.detach(), "kl": kl.detach()}

    @torch.no_grad()
    def sharpen(
        self,
        inp: torch.Tensor,
        input_resolution=None,
        target_resolution=None,
        *,
        generator: torch.Generator | None = None,
        sampling: Sampling | None = None,
    ) -> torch.Tensor:
        """One plausible output per input: z drawn from the prior N(0, I) (`sampling` unused)."""
        z = torch.randn(self.vae.latent_shape(inp), generator=generator, device=inp.device)
        return self.vae.decode(z, inp, input_resolution, target_resolution)


class DDPMSharpener(SharpeningModel):
    """SR3-style conditional DDPM: the network sees [y_t, input] and predicts eps or v.

    With `diffusion.residual` the chain runs on y_0 = target - input (the detail the input
    lacks), as residual super-resolution diffusion does; the input supplies the rest.
    """

    is_generative = True

    def __init__(self, config: SharpenConfig):
        super().__init__()
        self.net = UNet3D(2, 1, **_net_kwargs(config))
        d = config.diffusion
        self.ddpm = DDPM(d.timesteps, d.schedule, d.prediction)
        self.sampling = Sampling(d.sampler, d.sample_steps, d.clip_x0, d.antithetic)  # default
        self.residual = d.residual

    def model_fn(self, inp, input_resolution=None, target_resolution=None):
        """Closure f(y_t, t) over the conditioning input (what the samplers call)."""

        def fn(y_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.net(torch.cat([y_t, inp], dim=1), t, input_resolution, target_resolution)

        return fn

    def loss(self, batch: dict, generator=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        fn = self.model_fn(batch["input"], *_resolutions(batch))
        y0 = batch["target"] - batch["input"] if self.residual else batch["target"]
        return self.ddpm.loss(fn, y0, generator=generator), {}

    @torch.no_grad()
    def sharpen(
        self,
        inp: torch.Tensor,
        input_resolution=None,
        target_resolution=None,
        *,
        generator: torch.Generator | None = None,
        sampling: Sampling | None = None,
        noise_sign: float = 1.0,
    ) -> torch.Tensor:
        """Sample y_0 given the input (normalised space); deterministic for a seeded generator
        (`noise_sign` -1: its antithetic partner)."""
        s = sampling or self.sampling
        y0 = self.ddpm.sample(
            self.model_fn(inp, input_resolution, target_resolution),
            tuple(inp.shape),
            sampler=s.sampler,
            steps=s.steps,
            generator=generator,
            device=inp.device,
            clip_x0=s.clip_x0,
            noise_sign=noise_sign,
        )
        return inp + y0 if self.residual else y0

    @torch.no_grad()
    def sharpen_draws(self, inp, input_resolution=None, target_resolution=None, *,
                      generators, sampling=None) -> torch.Tensor:  # fmt: skip
        """One draw per generator; in antithetic pairs when the recipe says so."""
        s = sampling or self.sampling
        return torch.stack([self.sharpen(inp, input_resolution, target_resolution, generator=g,
                                         sampling=s, noise_sign=sign)
                            for g, sign in antithetic_noise(generators, s.antithetic)])  # fmt: skip


def predictor_config(config: SharpenConfig) -> SharpenConfig:
    """The regression config of a refine model's predictor: `refine.predictor_net`, same loss
    and residual setting."""
    return dataclasses.replace(config, model="unet", net=config.refine.predictor_net)


class RefineSharpener(SharpeningModel):
    """Predict-and-refine (Whang et al. 2022, "Deblurring via Stochastic Refinement").

    A regression U-Net (`predictor`) estimates the target; a conditional DDPM, whose network
    sees [y_t, input, prediction], models the residual y_0 = target - prediction. One draw is
    prediction + sampled residual, so the mean over draws sits on the prediction and their
    spread is the uncertainty. A frozen predictor (refine.freeze_predictor) stays in eval mode
    and gets no gradient; otherwise the loss is regression + diffusion, with the prediction
    detached as the DDPM's condition. Residuals are clamped to refine.clip_residual.
    """

    is_generative = True

    def __init__(self, config: SharpenConfig):
        super().__init__()
        r, d = config.refine, config.diffusion
        self.predictor = RegressionSharpener(predictor_config(config))
        self.net = UNet3D(3, 1, **_net_kwargs(config))
        self.ddpm = DDPM(d.timesteps, d.schedule, d.prediction)
        self.clip_residual = tuple(r.clip_residual) if r.clip_residual is not None else None
        # the default chain clamps its x0 (the residual) to the same bounds
        self.sampling = Sampling(d.sampler, d.sample_steps, self.clip_residual or d.clip_x0,
                                 d.antithetic)  # fmt: skip
        self.freeze_predictor = bool(r.freeze_predictor)
        if self.freeze_predictor:  # eval now too: Lightning keeps each submodule's own mode
            self.predictor.requires_grad_(False).eval()

    @property
    def is_local(self) -> bool:
        return bool(self.predictor.is_local and self.net.is_local)

    def receptive_radius(self) -> int:
        """The predictor's radius plus the residual network's (it sees the prediction)."""
        return self.predictor.receptive_radius() + self.net.receptive_radius()

    def train(self, mode: bool = True) -> RefineSharpener:
        """Train mode for the residual network; a frozen predictor stays in eval mode."""
        super().train(mode)
        if self.freeze_predictor:
            self.predictor.eval()
        return self

    def model_fn(self, inp, prediction, input_resolution=None, target_resolution=None):
        """Closure f(y_t, t) over the conditions [input, prediction] (what the samplers call)."""

        def fn(y_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            x = torch.cat([y_t, inp, prediction], dim=1)
            return self.net(x, t, input_resolution, target_resolution)

        return fn

    def loss(self, batch: dict, generator=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inp, target = batch["input"], batch["target"]
        res = _resolutions(batch)
        if self.freeze_predictor:
            with torch.no_grad():
                pred = self.predictor(inp, *res)
        else:
            pred = self.predictor(inp, *res)
        cond = pred.detach()
        fn = self.model_fn(inp, cond, *res)
        diffusion = self.ddpm.loss(fn, (target - cond).float(), generator=generator)
        if self.freeze_predictor:
            return diffusion, {}
        regression = self.predictor.regression_loss(pred, target)
        extras = {"regression": regression.detach(), "diffusion": diffusion.detach()}
        return regression + diffusion, extras

    @torch.no_grad()
    def sample_residual(
        self,
        inp: torch.Tensor,
        prediction: torch.Tensor,
        input_resolution=None,
        target_resolution=None,
        *,
        generator: torch.Generator | None = None,
        sampling: Sampling | None = None,
        noise_sign: float = 1.0,
    ) -> torch.Tensor:
        """One residual per patch given [input, prediction], clamped to clip_residual."""
        s = sampling or self.sampling
        y0 = self.ddpm.sample(
            self.model_fn(inp, prediction, input_resolution, target_resolution),
            tuple(inp.shape),
            sampler=s.sampler,
            steps=s.steps,
            generator=generator,
            device=inp.device,
            clip_x0=s.clip_x0,
            noise_sign=noise_sign,
        )
        return y0 if self.clip_residual is None else y0.clamp(*self.clip_residual)

    @torch.no_grad()
    def sharpen(
        self,
        inp: torch.Tensor,
        input_resolution=None,
        target_resolution=None,
        *,
        generator: torch.Generator | None = None,
        sampling: Sampling | None = None,
    ) -> torch.Tensor:
        """prediction + one sampled residual; deterministic for a seeded generator."""
        return self.sharpen_draws(inp, input_resolution, target_resolution,
                                  generators=[generator], sampling=sampling)[0]  # fmt: skip

    @torch.no_grad()
    def sharpen_draws(self, inp, input_resolution=None, target_resolution=None, *,
                      generators, sampling=None) -> torch.Tensor:  # fmt: skip
        """prediction + a sampled residual per generator (in antithetic pairs when the recipe
        says so), the prediction computed once: S draws cost 1 + S chains, not S (1 + chain)."""
        s = sampling or self.sampling
        pred = self.predictor(inp, input_resolution, target_resolution)
        res = (input_resolution, target_resolution)
        return torch.stack([pred + self.sample_residual(inp, pred, *res, generator=g,
                                                        sampling=s, noise_sign=sign)
                            for g, sign in antithetic_noise(generators, s.antithetic)])  # fmt: skip


def build_model(config: SharpenConfig) -> SharpeningModel:
    """The model the config names ("unet" | "vae" | "ddpm" | "refine")."""
    kinds = {"unet": RegressionSharpener, "vae": VAESharpener, "ddpm": DDPMSharpener,
             "refine": RefineSharpener}  # fmt: skip
    return kinds[config.model](config)
