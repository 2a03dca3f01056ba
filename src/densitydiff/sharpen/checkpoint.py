"""Load a sharpening model for inference: packaged defaults, exported .pt files, Lightning runs.

Exported files (`export_sharpener`) are a weights-only dict: {"format": FORMAT, "config",
"state_dict" (EMA weights for a DDPM), "voxel_size", "patch", "training_structures", "name",
"extra"}. Lightning checkpoints from `densitydiff train sharpen` (RUN/checkpoints/*.ckpt) hold
the config in hyper_parameters; their voxel size and patch come from the training store named
in RUN/run.yaml when it can be read, else the lead's defaults (1.0 Å, 32) are assumed.
Everything goes through torch.load(..., weights_only=True).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from densitydiff.errors import InputError
from densitydiff.outputs import atomic_path

FORMAT = "densitydiff-sharpener-1"
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
PACKAGED = {"default": "default_ddpm.pt", "unet": "regression_unet.pt"}
ASSUMED_VOXEL_SIZE = 1.0
ASSUMED_PATCH = 32


@dataclass
class Sharpener:
    """A model ready for `sharpen_map`: network in eval mode plus what inference must know."""

    model: Any  # torch.nn.Module from densitydiff.sharpen.models.build_model
    config: Any  # SharpenConfig
    voxel_size: float
    patch: int
    name: str
    kind: str
    is_generative: bool
    training_structures: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def downsampling(self) -> int:
        """The U-Net's total downsampling factor: tile edges must be multiples of it."""
        return 2 ** (len(self.config.net.widths) - 1)


def _torch_load(path: Path) -> dict:
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike: not a checkpoint we can read
        msg = " ".join(str(exc).split())[:200]
        raise InputError(f"cannot read checkpoint {path}: {msg}") from None
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
    """The model's weights from a Lightning state_dict: EMA copy for a DDPM when present."""
    sd = ckpt["state_dict"]
    ema = {k[len("ema.module.") :]: v for k, v in sd.items() if k.startswith("ema.module.")}
    if kind == "ddpm" and ema:
        return ema
    return {k[len("model.") :]: v for k, v in sd.items() if k.startswith("model.")}


def _run_store_geometry(ckpt_path: Path) -> tuple[float, int, list[str], bool]:
    """(voxel size, patch, structures, assumed) from the store named in RUN/run.yaml (--data)."""
    import yaml

    run_dir = ckpt_path.parent.parent
    structures: list[str] = []
    txt = run_dir / "structures.txt"
    if txt.is_file():
        structures = [s for s in txt.read_text().split() if s and not s.startswith("(")]
    try:
        info = yaml.safe_load((run_dir / "run.yaml").read_text())
        argv = [str(a) for a in info.get("command", [])]
        store = Path(argv[argv.index("--data") + 1])
        if not store.is_absolute():
            store = run_dir.parent / store if not store.exists() else store
        from densitydiff.data.layout import read_root

        meta = read_root(store)
        return float(meta["voxel_size"]), int(meta["patch"]), structures, False
    except Exception:  # no run.yaml, no --data, store moved: fall back to the assumptions
        return ASSUMED_VOXEL_SIZE, ASSUMED_PATCH, structures, True


def _from_lightning(path: Path, ckpt: dict):
    hp = ckpt.get("hyper_parameters") or {}
    if "config" not in hp or "state_dict" not in ckpt:
        raise InputError(f"{path} is not a densitydiff training checkpoint (no config inside)")
    kind = hp["config"].get("model", "ddpm")
    config, model = _build(hp["config"], _lightning_state(ckpt, kind), path)
    voxel, patch, structures, assumed = _run_store_geometry(path)
    extra: dict = {"source": "lightning", "global_step": int(ckpt.get("global_step", 0))}
    if assumed:
        extra["geometry"] = "assumed (training store not found)"
    return config, model, voxel, patch, structures, extra


def load_sharpener(name_or_path: str | Path | Sharpener | None = None, device: str = "cpu"):
    """A `Sharpener` from "default" (None), "unet", an exported .pt or a training checkpoint."""
    if isinstance(name_or_path, Sharpener):
        name_or_path.model.to(device)
        return name_or_path
    key = "default" if name_or_path is None else str(name_or_path)
    if key in PACKAGED:
        path = MODELS_DIR / PACKAGED[key]
        if not path.is_file():
            raise InputError(
                f"no {key} model is installed ({path.name} is missing from the package); "
                "pass --checkpoint with a model file or a training checkpoint"
            )
    else:
        path = Path(key)
        if not path.is_file():
            raise InputError(f"no such checkpoint: {path}")
    ckpt = _torch_load(path)
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
    if voxel <= 0 or patch <= 0 or patch % 2 ** (len(config.net.widths) - 1):
        raise InputError(f"{path}: bad voxel size {voxel} or patch {patch} for this network")
    return Sharpener(
        model=model.to(device),
        config=config,
        voxel_size=voxel,
        patch=patch,
        name=name,
        kind=config.model,
        is_generative=config.model in ("vae", "ddpm"),
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
) -> Path:
    """Write a compact weights-only model file (EMA weights for a DDPM), atomically.

    `sampler` / `steps` set the diffusion model's default inference sampler (chosen by measuring
    quality against time, e.g. bench/samplers.py) without changing the weights.
    """
    import torch

    from densitydiff.sharpen.config import to_dict

    sharpener = load_sharpener(checkpoint)
    state = sharpener.model.state_dict()
    if half:
        state = {k: v.half() if torch.is_floating_point(v) else v for k, v in state.items()}
    config = to_dict(sharpener.config)
    if sampler is not None:
        config["diffusion"]["sampler"] = sampler
    if steps is not None:
        config["diffusion"]["sample_steps"] = int(steps)
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
    out = Path(out)
    with atomic_path(out, suffix=".tmp") as tmp:
        torch.save(data, tmp)
    return out
