"""Train the latent diffusion prior: latents -> RUN/ with prior.pt, config.yaml, checkpoints."""

from __future__ import annotations

import logging
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from densitydiff.errors import InputError
from densitydiff.outputs import atomic_checkpoint_io, atomic_path, output_lock
from densitydiff.prior.latents import Latents, LatentStats, load_latents

FORMAT = "densitydiff.prior/1"


@dataclass
class PriorConfig:
    """Training settings (defaults: the slides' 16 x 128 residual MLP, Adam, batch 1024)."""

    epochs: int = 400
    batch_size: int = 1024
    lr: float = 1e-3
    lr_schedule: str = "constant"  # or "cosine" (decay to 0 over the epochs)
    width: int = 128
    depth: int = 16
    emb_dim: int = 64
    sigma_data: float = 1.0  # latents are standardised to unit variance per dimension
    p_mean: float = -1.2
    p_std: float = 1.2
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    ema_decay: float = 0.995
    posterior: bool = False  # train on z = mu + exp(logvar/2) eps when log-variances exist
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> PriorConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InputError(f"unknown prior config key(s): {', '.join(unknown)}")
        try:
            cfg = cls(**values)
        except TypeError as err:
            raise InputError(f"bad prior config: {err}") from None
        for f in fields(cls):
            v = getattr(cfg, f.name)
            if f.type in ("int", "float") and not isinstance(v, (int, float)):
                raise InputError(f"config {f.name} must be a number, got {v!r}")
        if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.width < 1 or cfg.depth < 0:
            raise InputError("epochs, batch_size and width must be >= 1, depth >= 0")
        if cfg.lr_schedule not in ("cosine", "constant"):
            raise InputError(f"lr_schedule must be cosine or constant, got {cfg.lr_schedule!r}")
        if not (0 < cfg.sigma_min < cfg.sigma_max) or cfg.lr <= 0 or not 0 <= cfg.ema_decay < 1:
            raise InputError("need 0 < sigma_min < sigma_max, lr > 0, 0 <= ema_decay < 1")
        return cfg


def read_config(path: str | os.PathLike | None, **overrides) -> PriorConfig:
    """PriorConfig from an optional YAML file, then keyword overrides that are not None."""
    values: dict = {}
    if path is not None:
        from densitydiff.configfile import read_yaml_mapping

        loaded = read_yaml_mapping(path)
        values.update(loaded.get("config", loaded))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return PriorConfig.from_dict(values)


def versions() -> dict[str, str]:
    """Versions of the packages that decide the result (written next to every run)."""
    import lightning
    import torch

    import densitydiff

    return {
        "densitydiff": densitydiff.__version__,
        "torch": str(torch.__version__),
        "lightning": str(lightning.__version__),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def train_prior(
    latents: str | os.PathLike | Latents,
    run_dir: str | os.PathLike,
    config: PriorConfig | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Fit the EDM prior to latents; write RUN/prior.pt (weights-only) and RUN/config.yaml.

    Checkpoints go to RUN/checkpoints/last.ckpt each epoch; resume=True continues from it
    (to the same or a larger number of epochs). Deterministic for a given config.seed on CPU.
    """
    config = config or PriorConfig()
    run_dir = Path(run_dir)
    source = str(latents) if not isinstance(latents, Latents) else "<in memory>"
    data = latents if isinstance(latents, Latents) else load_latents(latents)
    if config.posterior and data.logvar is None:
        raise InputError(f"{source}: --posterior needs log-variances (a second pickle) in the file")
    stats = LatentStats.fit(data, posterior=config.posterior)
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"{run_dir} exists and is not a folder; choose a new -o")
    if resume and not last.is_file():
        raise InputError(f"nothing to resume: {last} does not exist")
    if not resume and (run_dir / "prior.pt").exists():
        raise InputError(f"{run_dir} already holds a trained prior; use --resume or a new -o")
    if resume:
        _check_checkpoint(last)
    created = not run_dir.exists()
    with output_lock(run_dir):
        try:
            return _fit(data, stats, source, run_dir, config, resume, progress)
        except BaseException:  # a run that never checkpointed leaves no folder behind
            if created and not last.exists():
                shutil.rmtree(run_dir, ignore_errors=True)
            raise


class EpochShuffle:
    """A permutation per epoch from (seed, epoch) alone; Lightning calls `set_epoch`, so a
    resumed run sees the batches an uninterrupted one would have seen."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        import torch

        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def _check_checkpoint(path: Path) -> None:
    """Refuse a checkpoint that torch.load(weights_only=True) cannot read (truncated, unsafe)."""
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickle, zip and torch errors alike
        msg = " ".join(str(err).split())[:200] or type(err).__name__
        raise InputError(f"cannot resume from {path}: {msg}") from None


def _fit(data, stats, source, run_dir: Path, config, resume: bool, progress: bool) -> Path:
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    run_dir.mkdir(parents=True, exist_ok=True)

    import lightning.pytorch as pl  # heavy: only once the inputs are known to be good
    import torch
    import yaml

    from densitydiff.prior.module import PriorModule

    record = {
        "command": "prior train",
        "latents": source,
        "n_latents": int(data.mu.shape[0]),
        "dim": int(data.mu.shape[1]),
        "config": asdict(config),
        "versions": versions(),
        "date": __import__("datetime").datetime.now().isoformat(timespec="seconds"),
    }
    with atomic_path(run_dir / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(record, sort_keys=False))

    if not progress:
        for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    tensors = [torch.from_numpy(data.mu)]
    if config.posterior:
        tensors.append(torch.from_numpy(data.logvar))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(*tensors),
        batch_size=min(config.batch_size, len(data.mu)),
        sampler=EpochShuffle(len(data.mu), config.seed),
    )
    module = PriorModule(data.mu.shape[1], asdict(config), stats.mean, stats.std)
    checkpoint = pl.callbacks.ModelCheckpoint(
        dirpath=ckpt_dir, save_last=True, save_top_k=1, every_n_epochs=1
    )
    trainer = pl.Trainer(
        plugins=[atomic_checkpoint_io()],
        max_epochs=config.epochs,
        accelerator="auto",
        devices=1,
        logger=pl.loggers.CSVLogger(run_dir, name="logs"),
        callbacks=[checkpoint],
        enable_progress_bar=progress,
        enable_model_summary=False,
        deterministic=True,
        log_every_n_steps=1,
        default_root_dir=run_dir,
    )
    trainer.fit(module, loader, ckpt_path=str(last) if resume else None)

    out = run_dir / "prior.pt"
    payload = {
        "format": FORMAT,
        "dim": int(data.mu.shape[1]),
        "config": asdict(config),
        "state_dict": {k: v.detach().cpu() for k, v in module.ema.state_dict().items()},
        "mean": torch.from_numpy(stats.mean),
        "std": torch.from_numpy(stats.std),
        "latents": torch.from_numpy(data.mu),
        "epochs_trained": int(trainer.current_epoch),
        "versions": record["versions"],
    }
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
    return out
