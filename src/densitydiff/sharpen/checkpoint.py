"""Save and load sharpening models: packaged models, exported .pt files, Lightning runs.

Exported files (`export_sharpener`) are a weights-only dict: {"format": FORMAT, "config",
"state_dict" (EMA weights for a DDPM or refine model), "voxel_size", "patch",
"training_structures", "name", "extra"}. Lightning checkpoints from `densitydiff train sharpen`
(RUN/checkpoints/*.ckpt) hold the config and the training data's geometry ({"voxel_size",
"patch"}) in hyper_parameters; a checkpoint without the geometry (trained on an in-memory
dataset that has none) is given ASSUMED_VOXEL_SIZE and ASSUMED_PATCH, and says so in
`extra["geometry"]`. `load_predictor` reads a regression model to start a refine run.
Files are read with densitydiff.torchfile.read_torch_file (weights only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from densitydiff.errors import InputError
from densitydiff.torchfile import read_torch_file, write_torch_file

FORMAT = "densitydiff-sharpener-1"
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
# `default` is the regression U-Net retrained on realistic inputs: on the held-out list and the
# real map it beats the refine model's sample mean (docs/model.md); `refine` adds the std map.
PACKAGED = {"regression": "regression_unet.pt", "refine": "refine.pt"}
ALIASES = {"default": "regression", "unet": "regression"}  # unet: the U-Net's first name
ASSUMED_VOXEL_SIZE = 1.0  # Å, the packaged models' grid
ASSUMED_PATCH = 32


@dataclass
class SharpenCheckpoint:
    """A loaded sharpening model: the network in eval mode plus what inference must know."""

    model: Any  # torch.nn.Module from densitydiff.sharpen.models.build_model
    config: Any  # SharpenConfig
    voxel_size: float
    patch: int
    name: str
    training_structures: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def std_scale(self) -> float:
        """Factor applied to the samples' std map (`--std-out`): a calibration fitted on
        validation maps (sharpen.evaluate.fit_std_scale), stored as extra["std_scale"]; 1.0."""
        try:
            scale = float(self.extra.get("std_scale", 1.0))
        except (TypeError, ValueError):
            raise InputError(f"{self.name}: std_scale must be a number") from None
        if not np.isfinite(scale) or scale <= 0:
            raise InputError(f"{self.name}: std_scale must be positive, got {scale}")
        return scale

    @property
    def training_range(self) -> dict | None:
        """{"input": [lo, hi], "target": [lo, hi]} (Å) of the training pairs, when known:
        extra["training_pairs"] of the file (the packaged models carry theirs)."""
        pairs = self.extra.get("training_pairs")
        if not pairs:
            return None
        r_in = [float(p[0]) for p in pairs]
        r_out = [float(p[1]) for p in pairs]
        return {"input": [min(r_in), max(r_in)], "target": [min(r_out), max(r_out)]}

    @property
    def kind(self) -> str:
        """The config's model name: unet (regression) | vae | ddpm | refine."""
        return self.config.model

    @property
    def is_generative(self) -> bool:
        """Whether each draw is a new sample (VAE, DDPM, refine) or the one estimate."""
        return bool(self.model.is_generative)

    @property
    def downsampling(self) -> int:
        """The U-Nets' total downsampling factor: tile edges must be multiples of it."""
        return self.config.downsampling()


def _read_dict(path: Path) -> dict:
    data = read_torch_file(path, "checkpoint")
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a densitydiff checkpoint (no dict inside)")
    return data


def _build(config_dict: dict, state_dict: dict, where: Path):
    import torch

    from densitydiff.sharpen.config import from_dict
    from densitydiff.sharpen.models import build_model

    config = from_dict(config_dict)
    model = build_model(config)
    state = {k: v.float() if torch.is_floating_point(v) else v for k, v in state_dict.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:200]
        raise InputError(f"{where}: weights do not fit the config: {first}") from None
    return config, model.eval()


def _lightning_state(ckpt: dict, kind: str) -> dict:
    """The model's weights from a Lightning state_dict: the EMA copy when the kind keeps one."""
    from densitydiff.sharpen.config import EMA_MODELS

    sd = ckpt["state_dict"]
    ema = {k[len("ema.module.") :]: v for k, v in sd.items() if k.startswith("ema.module.")}
    if kind in EMA_MODELS and ema:
        return ema
    return {k[len("model.") :]: v for k, v in sd.items() if k.startswith("model.")}


def _from_lightning(path: Path, ckpt: dict):
    hp = ckpt.get("hyper_parameters") or {}
    if "config" not in hp or "state_dict" not in ckpt:
        raise InputError(f"{path} is not a densitydiff training checkpoint (no config inside)")
    kind = hp["config"].get("model", "ddpm")
    config, model = _build(hp["config"], _lightning_state(ckpt, kind), path)
    extra: dict = {"source": "lightning", "global_step": int(ckpt.get("global_step", 0))}
    geometry = hp.get("geometry") or {}
    try:
        voxel, patch = float(geometry["voxel_size"]), int(geometry["patch"])
    except (KeyError, TypeError, ValueError):
        voxel, patch = ASSUMED_VOXEL_SIZE, ASSUMED_PATCH
        extra["geometry"] = "assumed (the checkpoint holds no training geometry)"
    if geometry.get("pairs"):
        extra["training_pairs"] = [[float(a), float(b)] for a, b in geometry["pairs"]]
    return config, model, voxel, patch, _run_structures(path), extra


def _run_structures(ckpt_path: Path) -> list[str]:
    """The training structures listed in RUN/structures.txt beside RUN/checkpoints/."""
    txt = ckpt_path.parent.parent / "structures.txt"
    if not txt.is_file():
        return []
    return [s for s in txt.read_text().split() if s and not s.startswith("(")]


def model_file(name_or_path: str | Path | None = None) -> Path:
    """The file behind a model name: a packaged model's ("regression", aliases "default" = None
    and "unet"; "refine") or the path itself; InputError when it is not there."""
    key = "default" if name_or_path is None else str(name_or_path)
    key = ALIASES.get(key, key)
    if key in PACKAGED:
        path = MODELS_DIR / PACKAGED[key]
        if not path.is_file():
            raise InputError(
                f"no {key} model is installed ({path.name} is missing from the package); "
                "pass --checkpoint with a model file or a training checkpoint"
            )
        return path
    path = Path(key)
    if not path.is_file():
        raise InputError(f"no such checkpoint: {path}")
    return path


def stored_in_half(name_or_path: str | Path | None = None) -> bool:
    """Whether a model file keeps its weights in float16 (`export_sharpener(half=True)`), so a
    re-export with new `extra` fields can keep them bit for bit; False for training checkpoints."""
    import torch

    ckpt = _read_dict(model_file(name_or_path))
    if ckpt.get("format") != FORMAT:
        return False
    floats = [v for v in ckpt.get("state_dict", {}).values() if torch.is_floating_point(v)]
    return bool(floats) and all(v.dtype == torch.float16 for v in floats)


def load_sharpener(
    name_or_path: str | Path | SharpenCheckpoint | None = None, device: str = "cpu"
) -> SharpenCheckpoint:
    """A packaged model ("regression" = "default" = None = "unet"; "refine"), an exported .pt or a
    training checkpoint, ready for inference on `device`."""
    if isinstance(name_or_path, SharpenCheckpoint):
        name_or_path.model.to(device)
        return name_or_path
    path = model_file(name_or_path)
    ckpt = _read_dict(path)
    if ckpt.get("format") == FORMAT:
        try:
            config, model = _build(ckpt["config"], ckpt["state_dict"], path)
            voxel, patch = float(ckpt["voxel_size"]), int(ckpt["patch"])
            structures = [str(s) for s in ckpt.get("training_structures", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: incomplete model file ({exc})") from None
        extra = dict(ckpt.get("extra") or {})
        name = str(ckpt.get("name") or path.stem)
    else:
        config, model, voxel, patch, structures, extra = _from_lightning(path, ckpt)
        name = f"{path.parent.parent.name}/{path.name}"
    if voxel <= 0 or patch <= 0 or patch % config.downsampling():
        raise InputError(f"{path}: bad voxel size {voxel} or patch {patch} for this network")
    return SharpenCheckpoint(
        model=model.to(device),
        config=config,
        voxel_size=voxel,
        patch=patch,
        name=name,
        training_structures=structures,
        extra=extra,
    )


def export_sharpener(
    checkpoint: Path,
    out: Path,
    *,
    voxel_size: float,
    patch: int,
    training_structures: list[str],
    extra: dict | None = None,
    half: bool = False,
    name: str | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    std_scale: float | None = None,
    training_pairs: list | None = None,
    antithetic: bool | None = None,
) -> Path:
    """Write a compact weights-only model file (EMA weights for DDPM / refine), atomically.

    `sampler` / `steps` / `antithetic` set the diffusion model's default inference recipe
    (chosen by measuring quality against time, e.g. bench/samplers.py) without changing the
    weights. `std_scale`
    (sharpen.evaluate.fit_std_scale) and `training_pairs` [(r_in, r_out)] go into `extra`.
    """
    import torch

    from densitydiff.diffusion.sampling import check_steps, sampler_name
    from densitydiff.sharpen.config import to_dict

    check_steps(steps)
    sharpener = load_sharpener(checkpoint)
    state = sharpener.model.state_dict()
    if half:
        state = {k: v.half() if torch.is_floating_point(v) else v for k, v in state.items()}
    config = to_dict(sharpener.config)
    if sampler is not None:
        config["diffusion"]["sampler"] = sampler_name(sampler)
    if steps is not None:
        config["diffusion"]["sample_steps"] = int(steps)
    if antithetic is not None:
        config["diffusion"]["antithetic"] = bool(antithetic)
    data = {
        "format": FORMAT,
        "name": name or Path(out).stem,
        "config": config,
        "state_dict": state,
        "voxel_size": float(voxel_size),
        "patch": int(patch),
        "training_structures": [str(s) for s in training_structures],
        "extra": dict(extra or {}),
    }
    if std_scale is not None:
        if not np.isfinite(std_scale) or std_scale <= 0:
            raise InputError(f"std_scale must be positive, got {std_scale}")
        data["extra"]["std_scale"] = float(std_scale)
    if training_pairs is None:  # a training run's pairs (its store's) travel with the model
        training_pairs = sharpener.extra.get("training_pairs")
    if training_pairs is not None:
        data["extra"]["training_pairs"] = [[float(a), float(b)] for a, b in training_pairs]
    return write_torch_file(out, data, suffix=".tmp")


PREDICTOR_SHAPE = ("widths", "blocks_per_level", "attention_levels", "head_channels", "emb_dim",
                   "norm")  # fmt: skip
"""The NetConfig fields that make two U-Nets the same network (weights and function)."""


def load_predictor(
    source: str | Path, config: Any, voxel_size: float | None = None
) -> tuple[dict, Path]:
    """(state_dict, file) of a trained regression model to start a refine model's predictor.

    `source`: a packaged name (`regression`), an exported .pt or a `unet` run's .ckpt. Refused
    (InputError) unless it is a regression U-Net of `config.refine.predictor_net`'s shape and
    residual setting, trained on `voxel_size` (when known).
    """
    sharpener = load_sharpener(source)
    if sharpener.kind != "unet":
        raise InputError(
            f"--predictor {source}: a {sharpener.kind} model; the predictor must be a "
            "regression U-Net (model unet)"
        )
    want, got = config.refine.predictor_net, sharpener.config.net
    diff = [f"{k} {getattr(got, k)} (want {getattr(want, k)})" for k in PREDICTOR_SHAPE
            if getattr(got, k) != getattr(want, k)]  # fmt: skip
    if sharpener.config.residual != config.residual:
        diff.append(f"residual {sharpener.config.residual} (want {config.residual})")
    if diff:
        raise InputError(
            f"--predictor {source}: its U-Net differs from refine.predictor_net: " + ", ".join(diff)
        )
    if voxel_size is not None and abs(sharpener.voxel_size - float(voxel_size)) > 1e-4:
        raise InputError(
            f"--predictor {source}: trained on {sharpener.voxel_size:g} Å voxels, the training "
            f"data has {float(voxel_size):g} Å"
        )
    key = ALIASES.get(str(source), str(source))
    path = MODELS_DIR / PACKAGED[key] if key in PACKAGED else Path(source)
    return sharpener.model.state_dict(), path
