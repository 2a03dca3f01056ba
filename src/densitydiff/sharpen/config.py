"""Training configuration for the sharpening models: dataclasses, presets and YAML merging.

A run's config is a preset (`tiny` for tests on CPU, `small` for an hour or two on CPU, `base`
for a GPU) or a YAML file, overridden by command-line options (densitydiff.configfile builds and
checks it); the resolved config is written to the run directory so the run can be repeated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from densitydiff import configfile
from densitydiff.diffusion.sampling import sampler_name
from densitydiff.errors import InputError

MODELS = ("unet", "vae", "ddpm", "refine")
EMA_MODELS = ("ddpm", "refine")
"""The models that keep an EMA of their weights (used for validation, sampling and export)."""


@dataclass
class NetConfig:
    """UNet3D shape (see densitydiff.nn.unet3d.UNet3D)."""

    widths: list[int] = field(default_factory=lambda: [16, 32])
    blocks_per_level: int = 1
    attention_levels: list[int] = field(default_factory=list)
    head_channels: int = 32
    emb_dim: int = 64
    dropout: float = 0.0
    gradient_checkpointing: bool = False
    norm: str = "group"  # group | channel (local: with no attention, tiles are exact)


@dataclass
class DiffusionConfig:
    """Noise schedule, prediction target and the sampler used for validation/inference."""

    timesteps: int = 1000
    schedule: str = "cosine"  # linear | cosine
    prediction: str = "epsilon"  # epsilon | v
    sampler: str = "dpmsolver++"  # a name from densitydiff.diffusion.sampling.SAMPLERS
    sample_steps: int = 20
    clip_x0: list[float] | None = None  # [lo, hi] in the normalised space, or None
    residual: bool = False  # diffuse target - input instead of the target
    antithetic: bool = False  # inference draws in antithetic pairs (sampling.antithetic_noise)


@dataclass
class VAEConfig:
    """Conditional VAE: latent channels, encoder widths (latent is /2**len), beta of the ELBO."""

    latent_channels: int = 4
    encoder_widths: list[int] = field(default_factory=lambda: [16, 32])
    beta: float = 1e-3


def _regression_unet() -> NetConfig:
    """The packaged regression U-Net's shape (models/configs/regression_unet.yaml)."""
    return NetConfig(widths=[16, 32], attention_levels=[], head_channels=32, emb_dim=64,
                     norm="channel")  # fmt: skip


@dataclass
class RefineConfig:
    """Predict-and-refine (Whang et al. 2022): a regression U-Net plus a DDPM of its residual.

    `predictor_net` is the predictor's shape (a `--predictor` model must have it); `predictor`
    names where its weights came from (a packaged name, .pt or .ckpt; loaded once, at the start
    of a run). `clip_residual` [lo, hi] (normalised units) bounds every sampled residual; the
    default holds every target - input difference we measured (2 Å - 4 Å z-scored maps of the
    packaged examples: -9.0 to 10.2) with a margin, and still stops a chain that drifts.
    """

    predictor_net: NetConfig = field(default_factory=_regression_unet)
    freeze_predictor: bool = True
    predictor: str | None = None
    clip_residual: list[float] | None = field(default_factory=lambda: [-16.0, 16.0])


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to lr * min_lr_ratio; gradient clipping."""

    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 500
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # DDPM and refine only; 0 turns EMA off


@dataclass
class TrainerConfig:
    """Lightning Trainer settings. precision None: bf16-mixed on GPU, 32 on CPU."""

    max_steps: int = 100_000
    batch_size: int = 8
    num_workers: int = 2
    devices: int = 1
    num_nodes: int = 1
    accelerator: str = "auto"
    strategy: str = "auto"  # "auto" picks DDP for devices * num_nodes > 1
    precision: str | None = None
    val_every_n_steps: int = 1000
    limit_val_batches: int = 20
    log_every_n_steps: int = 50
    monitor_every_n_steps: int = 1000  # sharpening callback; 0 turns it off
    monitor_patches: int = 4
    # the monitor also sharpens the packaged real map (EMD-5168 / 3MFP): monitor/real_cc_mask
    monitor_real_map: bool = True


@dataclass
class SharpenConfig:
    """Everything a sharpening training run needs."""

    model: str = "ddpm"  # unet | vae | ddpm | refine
    loss: str = "l2"  # regression loss: l1 | l2
    residual: bool = True  # regression predicts target - input
    seed: int = 0
    net: NetConfig = field(default_factory=NetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def downsampling(self) -> int:
        """The largest U-Net downsampling factor of the model: patch edges must be multiples."""
        nets = [self.net, self.refine.predictor_net] if self.model == "refine" else [self.net]
        return 2 ** (max(len(n.widths) for n in nets) - 1)

    def validate(self) -> None:
        """Raise InputError on values no run could use; spell the sampler canonically."""
        if not 0 <= self.seed < 2**32:  # numpy's seeds; -1 used to end in a traceback
            raise InputError(f"seed must lie in 0 .. 2**32 - 1, got {self.seed}")
        if self.model not in MODELS:
            raise InputError(f"unknown model {self.model!r}: use one of {', '.join(MODELS)}")
        if self.loss not in ("l1", "l2"):
            raise InputError(f"unknown loss {self.loss!r}: use l1 or l2")
        if self.diffusion.schedule not in ("linear", "cosine"):
            raise InputError(f"unknown schedule {self.diffusion.schedule!r}")
        if self.diffusion.prediction not in ("epsilon", "v"):
            raise InputError(f"unknown prediction {self.diffusion.prediction!r}")
        self.diffusion.sampler = sampler_name(self.diffusion.sampler)
        clip = self.refine.clip_residual
        if clip is not None:
            try:
                lo, hi = (float(v) for v in clip)
            except (TypeError, ValueError):
                msg = f"refine.clip_residual must be [lo, hi] or null, got {clip}"
                raise InputError(msg) from None
            if not lo < hi:
                raise InputError(f"refine.clip_residual needs lo < hi, got {clip}")
            self.refine.clip_residual = [lo, hi]
        if self.trainer.max_steps < 1 or self.trainer.batch_size < 1:
            raise InputError("max_steps and batch_size must be >= 1")
        if self.trainer.devices < 1 or self.trainer.num_nodes < 1:
            raise InputError("devices and num_nodes must be >= 1")
        if self.trainer.precision not in (None, "32", "32-true", "bf16-mixed", "16-mixed"):
            raise InputError(f"unknown precision {self.trainer.precision!r}")


PRESETS: dict[str, dict[str, Any]] = {
    # tests on CPU: 16^3 patches, two levels of 8/16 channels, no attention
    "tiny": {
        "net": {"widths": [8, 16], "head_channels": 8, "emb_dim": 32},
        "diffusion": {"timesteps": 200, "sample_steps": 10},
        "vae": {"latent_channels": 2, "encoder_widths": [8, 16]},
        "optim": {"lr": 2e-3, "warmup_steps": 10, "ema_decay": 0.99},
        "trainer": {
            "max_steps": 300,
            "batch_size": 2,
            "num_workers": 0,
            "val_every_n_steps": 100,
            "limit_val_batches": 2,
            "log_every_n_steps": 10,
            "monitor_every_n_steps": 100,
            "monitor_patches": 1,
            "monitor_real_map": False,  # keeps the test runs fast
        },
    },
    # CPU in an hour or two: 32^3 patches, attention at the 8^3 bottleneck only
    "small": {
        "net": {"widths": [16, 32, 64], "attention_levels": [2], "head_channels": 32},
        "diffusion": {"timesteps": 200},
        "vae": {"encoder_widths": [16, 32]},
        "optim": {"lr": 5e-4, "warmup_steps": 200},
        "trainer": {"max_steps": 5000, "batch_size": 4, "val_every_n_steps": 500},
    },
    # GPU: 64^3 patches, attention at 16^3 and 8^3 (4096 and 512 tokens), never at full size
    "base": {
        "net": {
            "widths": [64, 128, 256, 512],
            "blocks_per_level": 2,
            "attention_levels": [2, 3],
            "head_channels": 64,
            "emb_dim": 256,
        },
        "diffusion": {"timesteps": 1000},
        "vae": {"latent_channels": 8, "encoder_widths": [64, 128]},
        "optim": {"lr": 1e-4, "warmup_steps": 2000, "ema_decay": 0.9999},
        "trainer": {"max_steps": 400_000, "batch_size": 8, "num_workers": 8},
    },
}


def to_dict(config: SharpenConfig) -> dict[str, Any]:
    """Plain nested dict (YAML- and checkpoint-safe)."""
    return configfile.to_dict(config)


def from_dict(data: dict[str, Any]) -> SharpenConfig:
    """Build (and check) a SharpenConfig from a nested dict over the defaults."""
    return configfile.build(SharpenConfig, data)


def validate(config: SharpenConfig) -> None:
    """Raise InputError on values no run could use."""
    config.validate()


def load_config(
    preset_or_path: str | Path | None = "tiny", overrides: dict[str, Any] | None = None
) -> SharpenConfig:
    """A preset name or YAML file (None: defaults), then `overrides` (nested dict) on top."""
    return configfile.resolve(SharpenConfig, PRESETS, preset_or_path, overrides)


def dump_config(config: SharpenConfig) -> str:
    """YAML text of the resolved config."""
    return configfile.dump_yaml(config)
