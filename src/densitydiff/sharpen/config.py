"""Training configuration for the sharpening models: dataclasses, presets and YAML merging.

A run's config is a preset (`tiny` for tests on CPU, `small` for an hour or two on CPU, `base`
for a GPU) or a YAML file, overridden by command-line options; the resolved config is written
to the run directory so the run can be repeated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from densitydiff.errors import InputError

MODELS = ("unet", "vae", "ddpm")


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
    sampler: str = "dpmsolver++"  # ddpm | ddim | dpmsolver++
    sample_steps: int = 20
    clip_x0: list[float] | None = None  # [lo, hi] in the normalised space, or None
    residual: bool = False  # diffuse target - input instead of the target


@dataclass
class VAEConfig:
    """Conditional VAE: latent channels, encoder widths (latent is /2**len), beta of the ELBO."""

    latent_channels: int = 4
    encoder_widths: list[int] = field(default_factory=lambda: [16, 32])
    beta: float = 1e-3


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to lr * min_lr_ratio; gradient clipping."""

    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 500
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # DDPM only; 0 turns EMA off


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


@dataclass
class SharpenConfig:
    """Everything a sharpening training run needs."""

    model: str = "ddpm"  # unet | vae | ddpm
    loss: str = "l2"  # regression loss: l1 | l2
    residual: bool = True  # regression predicts target - input
    seed: int = 0
    net: NetConfig = field(default_factory=NetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


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
    return dataclasses.asdict(config)


def merge(base: dict[str, Any], override: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Recursive dict update; unknown keys raise InputError so typos do not pass silently."""
    out = dict(base)
    for key, value in override.items():
        if key not in out:
            raise InputError(f"unknown config key {where + key!r}")
        if isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = merge(out[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def from_dict(data: dict[str, Any]) -> SharpenConfig:
    """Build (and check) a SharpenConfig from a nested dict."""
    data = merge(to_dict(SharpenConfig()), data)
    sections = {
        "net": NetConfig,
        "diffusion": DiffusionConfig,
        "vae": VAEConfig,
        "optim": OptimConfig,
        "trainer": TrainerConfig,
    }
    try:
        kwargs = {k: (sections[k](**v) if k in sections else v) for k, v in data.items()}
    except TypeError:
        bad = [k for k in sections if not isinstance(data.get(k), dict)]
        raise InputError(f"config sections {bad} must be mappings of keys to values") from None
    config = SharpenConfig(**kwargs)
    validate(config)
    return config


_SCALARS = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _check_types(section, where: str = "") -> None:
    """Each scalar field holds its declared type (YAML `max_steps: a` is refused here)."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            _check_types(value, f"{where}{f.name}.")
            continue
        kinds = _SCALARS.get(str(f.type))
        wrong_bool = isinstance(value, bool) and str(f.type) in ("int", "float")
        if kinds is not None and (not isinstance(value, kinds) or wrong_bool):
            raise InputError(f"config {where}{f.name} must be {f.type}, got {value!r}")
        if str(f.type) == "list[int]" and not (
            isinstance(value, list) and all(isinstance(v, int) for v in value)
        ):
            raise InputError(f"config {where}{f.name} must be a list of integers, got {value!r}")


def validate(config: SharpenConfig) -> None:
    """Raise InputError on values no run could use."""
    _check_types(config)
    if not 0 <= config.seed < 2**32:
        raise InputError(f"seed must lie in 0 .. 2**32 - 1, got {config.seed}")
    if config.model not in MODELS:
        raise InputError(f"unknown model {config.model!r}: use one of {', '.join(MODELS)}")
    if config.loss not in ("l1", "l2"):
        raise InputError(f"unknown loss {config.loss!r}: use l1 or l2")
    if config.diffusion.schedule not in ("linear", "cosine"):
        raise InputError(f"unknown schedule {config.diffusion.schedule!r}")
    if config.diffusion.prediction not in ("epsilon", "v"):
        raise InputError(f"unknown prediction {config.diffusion.prediction!r}")
    if config.diffusion.sampler not in ("ddpm", "ddim", "dpmsolver++"):
        raise InputError(f"unknown sampler {config.diffusion.sampler!r}")
    if config.trainer.max_steps < 1 or config.trainer.batch_size < 1:
        raise InputError("max_steps and batch_size must be >= 1")
    if config.trainer.devices < 1 or config.trainer.num_nodes < 1:
        raise InputError("devices and num_nodes must be >= 1")
    if config.trainer.precision not in (None, "32", "32-true", "bf16-mixed", "16-mixed"):
        raise InputError(f"unknown precision {config.trainer.precision!r}")


def load_config(
    preset_or_path: str | Path | None = "tiny", overrides: dict[str, Any] | None = None
) -> SharpenConfig:
    """A preset name or YAML file (None: defaults), then `overrides` (nested dict) on top."""
    from densitydiff.configfile import read_yaml_mapping

    data: dict[str, Any] = {}
    if preset_or_path is not None:
        name = str(preset_or_path)
        if name in PRESETS:
            data = PRESETS[name]
        elif not Path(name).is_file():
            raise InputError(
                f"config {name!r} is neither a preset ({', '.join(PRESETS)}) nor a file"
            )
        else:
            data = read_yaml_mapping(name)
    resolved = merge(to_dict(SharpenConfig()), data)
    resolved = merge(resolved, overrides or {})
    return from_dict(resolved)


def dump_config(config: SharpenConfig) -> str:
    """YAML text of the resolved config."""
    import yaml

    return yaml.safe_dump(to_dict(config), sort_keys=False)
