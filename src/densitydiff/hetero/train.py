"""Train the heterogeneity VAE: particles -> RUN/ with z.N.pkl each epoch, z.pkl, weights.pt.

RUN/config.yaml holds the resolved config, the command line and the data set; RUN/run.yaml the
run record (densitydiff.runrecord); RUN/checkpoints/last.ckpt is written (atomically) every
epoch and `resume=True` continues from it. Noise and shuffling come from (seed, step) and
(seed, epoch) alone, so a resumed run ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from densitydiff.configfile import to_dict
from densitydiff.errors import InputError
from densitydiff.hetero.config import HeteroConfig, read_config
from densitydiff.hetero.data import Particles, scan_images
from densitydiff.outputs import atomic_checkpoint_io, atomic_path, output_lock

__all__ = ["HeteroConfig", "read_config", "train_hetero"]


def train_hetero(
    particles: Particles,
    run_dir: str | os.PathLike,
    config: HeteroConfig | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    devices: int | str = 1,
    num_nodes: int = 1,
    accelerator: str = "auto",
    argv: Sequence[str] | None = None,
) -> Path:
    """Fit the VAE to `particles` (`data.open_particles`); return RUN/z.pkl.

    Every input is checked (including a pass over the images for NaN, which also gives their
    std) before RUN is created; a run that fails before its first checkpoint leaves no RUN.
    """
    started = time.perf_counter()
    config = config or HeteroConfig()
    config.validate()
    run_dir = Path(run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"{run_dir} exists and is not a folder; choose a new -o")
    if resume and not last.is_file():
        raise InputError(f"nothing to resume: {last} does not exist")
    if not resume and run_dir.is_dir() and any(run_dir.iterdir()):
        raise InputError(f"{run_dir} is not empty; use --resume or a new -o")
    if resume:
        from densitydiff.torchfile import read_torch_file

        hp = read_torch_file(last, "checkpoint to resume from").get("hyper_parameters", {})
        if hp.get("D") != particles.D or hp.get("n_images") != len(particles):
            raise InputError(f"{last} was trained on other particles (D, N differ)")
    img_std = scan_images(particles, config.chunk_size)
    created = not run_dir.exists()
    with output_lock(run_dir):
        try:
            return _fit(
                particles,
                img_std,
                run_dir,
                config,
                resume,
                progress,
                devices,
                num_nodes,
                accelerator,
                argv,
                started,
            )
        except BaseException:
            if created and not last.exists():
                shutil.rmtree(run_dir, ignore_errors=True)
            raise


def _latent_writer(run_dir: Path):
    """A callback writing RUN/z.{epoch}.pkl (cryoDRGN's numbering, from 0) after each epoch."""
    import lightning.pytorch as pl

    from densitydiff.formats.latents import write_latents

    class LatentWriter(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module) -> None:
            pl_module.on_train_epoch_end_latents()
            if trainer.is_global_zero:
                mu, logvar, _ = pl_module.epoch_latents
                write_latents(run_dir / f"z.{trainer.current_epoch}.pkl", mu, logvar)

    return LatentWriter()


def _fit(
    particles,
    img_std,
    run_dir,
    config,
    resume,
    progress,
    devices,
    num_nodes,
    accelerator,
    argv,
    started,
) -> Path:
    """The training itself, under the run folder's lock."""
    import lightning.pytorch as pl
    import torch
    import yaml

    from densitydiff.console import lightning_progress_bar, quiet_lightning
    from densitydiff.formats.latents import write_latents
    from densitydiff.hetero.checkpoint import save_hetero
    from densitydiff.hetero.data import ChunkedParticles
    from densitydiff.hetero.module import HeteroModule
    from densitydiff.runrecord import command, run_record, write_record

    run_dir.mkdir(parents=True, exist_ok=True)
    dataset = {
        "files": [str(f) for f in particles.files],
        "n_images": len(particles),
        "D": particles.D,
        "pixel_size": particles.pixel_size,
        "img_std": img_std,
    }
    record = run_record(
        config=asdict(config), seed=config.seed, inputs=particles.files, argv=argv, dataset=dataset
    )
    text = yaml.safe_dump(
        {"config": to_dict(config), "command": command(argv), "dataset": dataset}, sort_keys=False
    )
    with atomic_path(run_dir / "config.yaml") as tmp:
        tmp.write_text(text)
    write_record(run_dir / "run.yaml", record)

    pl.seed_everything(config.seed, workers=True, verbose=False)
    data = ChunkedParticles(particles, config.batch_size, config.chunk_size, config.seed)
    loader = torch.utils.data.DataLoader(data, batch_size=None)
    module = HeteroModule(
        particles.D, len(particles), asdict(config), img_std, particles.pixel_size
    )
    checkpoint = pl.callbacks.ModelCheckpoint(
        dirpath=run_dir / "checkpoints", save_last=True, save_top_k=1, every_n_epochs=1
    )
    bar = lightning_progress_bar(progress)
    with quiet_lightning():
        trainer = pl.Trainer(
            plugins=[atomic_checkpoint_io()],
            max_epochs=config.epochs,
            accelerator=accelerator,
            devices=devices,
            num_nodes=num_nodes,
            precision=config.precision,
            logger=pl.loggers.CSVLogger(run_dir, name="logs"),
            callbacks=[_latent_writer(run_dir), checkpoint] + ([bar] if bar is not None else []),
            enable_progress_bar=progress,
            enable_model_summary=False,
            deterministic=True,
            log_every_n_steps=1,
            default_root_dir=run_dir,
        )
        last = run_dir / "checkpoints" / "last.ckpt"
        trainer.fit(module, loader, ckpt_path=str(last) if resume else None)
    out = run_dir / "z.pkl"
    if trainer.is_global_zero:
        epochs = int(trainer.current_epoch)
        if module.epoch_latents is None:  # resumed a finished run: the last epoch's file
            from densitydiff.formats.latents import read_latents

            mu, logvar = read_latents(run_dir / f"z.{epochs - 1}.pkl")
        else:
            mu, logvar, _ = module.epoch_latents
        save_hetero(
            run_dir / "weights.pt",
            module.model,
            config,
            D=particles.D,
            pixel_size=particles.pixel_size,
            img_std=img_std,
            n_images=len(particles),
            epochs_trained=epochs,
            versions=record["versions"],
        )
        write_latents(out, mu, logvar)
        record["wall_seconds"] = round(time.perf_counter() - started, 3)
        record["epochs_trained"] = epochs
        write_record(run_dir / "run.yaml", record)
    return out
