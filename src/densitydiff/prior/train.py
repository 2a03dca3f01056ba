"""Train the latent diffusion prior: latents -> RUN/ with prior.pt, config.yaml, run.yaml."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from densitydiff.configfile import dump_yaml
from densitydiff.errors import InputError
from densitydiff.outputs import atomic_checkpoint_io, atomic_path, output_lock
from densitydiff.prior.config import PriorConfig, read_config
from densitydiff.prior.latents import Latents, LatentStats, load_latents

__all__ = ["PriorConfig", "read_config", "train_prior"]


def train_prior(
    latents: str | os.PathLike | Latents,
    run_dir: str | os.PathLike,
    config: PriorConfig | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    argv: Sequence[str] | None = None,
) -> Path:
    """Fit the EDM prior to latents; write RUN/prior.pt (weights-only) and RUN/config.yaml.

    Checkpoints go to RUN/checkpoints/last.ckpt each epoch; resume=True continues from it
    (to the same or a larger number of epochs). Deterministic for a given config.seed on CPU.
    RUN/config.yaml holds the resolved config, RUN/run.yaml the run record (densitydiff.runrecord).
    """
    started = time.perf_counter()
    config = config or PriorConfig()
    config.validate()
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
            return _fit(latents, data, stats, source, run_dir, config, resume, progress, argv,
                        started)  # fmt: skip
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
    """Refuse a checkpoint that a weights-only load cannot read (truncated, unsafe)."""
    from densitydiff.torchfile import read_torch_file

    read_torch_file(path, "checkpoint to resume from")


def _fit(latents, data, stats, source, run_dir, config, resume, progress, argv, started) -> Path:
    """The training itself, under the run folder's lock."""
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    run_dir.mkdir(parents=True, exist_ok=True)

    import lightning.pytorch as pl  # heavy: only once the inputs are known to be good
    import torch

    from densitydiff.console import lightning_progress_bar, quiet_lightning
    from densitydiff.prior.module import PriorModule
    from densitydiff.runrecord import run_record, write_record

    record = run_record(
        config=asdict(config),
        seed=config.seed,
        inputs=[] if isinstance(latents, Latents) else [source],
        argv=argv,
        latents=source,
        n_latents=int(data.mu.shape[0]),
        dim=int(data.mu.shape[1]),
    )
    with atomic_path(run_dir / "config.yaml") as tmp:
        tmp.write_text(dump_yaml(config))
    write_record(run_dir / "run.yaml", record)

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
    bar = lightning_progress_bar(progress)
    with quiet_lightning():
        trainer = pl.Trainer(
            plugins=[atomic_checkpoint_io()],
            max_epochs=config.epochs,
            accelerator="auto",
            devices=1,
            logger=pl.loggers.CSVLogger(run_dir, name="logs"),
            callbacks=[checkpoint] + ([bar] if bar is not None else []),
            enable_progress_bar=progress,
            enable_model_summary=False,
            deterministic=True,
            log_every_n_steps=1,
            default_root_dir=run_dir,
        )
        trainer.fit(module, loader, ckpt_path=str(last) if resume else None)

    from densitydiff.prior.checkpoint import save_prior

    out = save_prior(
        run_dir / "prior.pt",
        module.ema.module,
        config,
        stats,
        data.mu,
        epochs_trained=int(trainer.current_epoch),
        versions=record["versions"],
    )
    record["wall_seconds"] = round(time.perf_counter() - started, 3)
    write_record(run_dir / "run.yaml", record)
    return out
