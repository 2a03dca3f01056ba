"""Train a sharpening model with Lightning: one entry for the CLI and for Python.

`train_sharpen(config, data=STORE or dataset=Dataset, run_dir=RUN)` writes to RUN:
config.yaml (resolved), run.yaml (the run record: command, config, seed, versions, inputs;
densitydiff.runrecord), structures.txt (training structures), logs/ (CSV, TensorBoard when
installed), checkpoints/ (last.ckpt every val_every_n_steps and at the end, best.ckpt by
validation loss, written atomically; the model's hyperparameters hold the config and the
training data's voxel size and patch), monitor/ (PNG slices from the validation callback).
`resume=True` continues from checkpoints/last.ckpt at the saved step with the saved optimizer,
scheduler and EMA state.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from densitydiff.errors import InputError
from densitydiff.outputs import atomic_path
from densitydiff.runrecord import run_record, write_record
from densitydiff.sharpen.config import SharpenConfig, dump_config, from_dict, to_dict


def _atomic_checkpoint_io():
    """A CheckpointIO that writes via temp file + os.replace in the checkpoint's directory.

    Lightning's default `_atomic_save` goes through an fsspec transaction whose local temp
    file lives in the system temp dir; committing it is `shutil.move`, a copy (not atomic)
    when the run directory is on another filesystem, as on clusters.
    """
    import torch
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
            path = Path(path)
            with atomic_path(path, suffix=".tmp") as tmp:
                torch.save(checkpoint, tmp)

    return AtomicCheckpointIO()


def _final_checkpoint(last: Path, every: int):
    """A callback that writes `last` when training ends off the `every`-step saving period."""
    import lightning as L

    class FinalCheckpoint(L.Callback):
        def on_train_end(self, trainer, pl_module) -> None:
            if trainer.global_step % every or not last.exists():
                trainer.save_checkpoint(last)  # through the atomic CheckpointIO

    return FinalCheckpoint()


def _checkpoint_callbacks(ckpt_dir: Path, every: int, has_val: bool) -> list:
    """last.ckpt every `every` steps and at the end; best.ckpt by validation loss."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    callbacks = [
        ModelCheckpoint(
            dirpath=ckpt_dir,
            save_last=True,
            save_top_k=0,
            every_n_train_steps=every,
            enable_version_counter=False,  # a resumed run overwrites last.ckpt, no last-v1
        ),
        _final_checkpoint(ckpt_dir / "last.ckpt", every),
    ]
    if has_val:
        callbacks.append(
            ModelCheckpoint(
                dirpath=ckpt_dir,
                filename="best",
                monitor="val/loss",
                mode="min",
                save_top_k=1,
                enable_version_counter=False,
            )
        )
    return callbacks


def _geometry(data: str | Path | None, dataset) -> dict[str, Any] | None:
    """{"voxel_size", "patch"} of the training data (a store's attributes, or the dataset's)."""
    if data is not None:
        from densitydiff.data.layout import read_root

        meta = read_root(data)
        return {"voxel_size": float(meta["voxel_size"]), "patch": int(meta["patch"])}
    voxel, patch = getattr(dataset, "voxel_size", None), getattr(dataset, "patch", None)
    if voxel is None or patch is None:
        return None
    return {"voxel_size": float(voxel), "patch": int(patch)}


def _write_run_files(run_dir: Path, config: SharpenConfig, dataset, record: dict) -> None:
    with atomic_path(run_dir / "config.yaml") as tmp:
        tmp.write_text(dump_config(config))
    write_record(run_dir / "run.yaml", record)
    names = getattr(dataset, "structure_ids", None) or getattr(dataset, "structures", None)
    text = "\n".join(str(n) for n in names) if names else "(in-memory dataset, no structure list)"
    with atomic_path(run_dir / "structures.txt") as tmp:
        tmp.write_text(text + "\n")


def _open_store(data: str | Path):
    """Training and validation PatchDatasets from a store (validation may be absent)."""
    if not Path(data).exists():
        raise InputError(f"no training store at {data}")
    from densitydiff.data.dataset import PatchDataset

    train = PatchDataset(data, split="train", augment=True)
    try:
        val = PatchDataset(data, split="val", augment=False)
        val = val if len(val) > 0 else None
    except (InputError, KeyError, ValueError):
        val = None
    return train, val


def _precision(config: SharpenConfig) -> str:
    import torch

    if config.trainer.precision is not None:
        return "32-true" if config.trainer.precision == "32" else config.trainer.precision
    gpu = config.trainer.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if gpu else "32-true"


def train_sharpen(
    config: SharpenConfig | dict[str, Any],
    run_dir: str | Path,
    *,
    data: str | Path | None = None,
    dataset=None,
    val_dataset=None,
    resume: bool = False,
    callbacks: list | None = None,
    progress_bar: bool | None = None,
    argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Train the configured model; return {"run_dir", "global_step", "last", "best"}.

    `argv` is the command line for the run record (default: sys.argv).
    """
    started = time.perf_counter()
    import lightning as L
    import torch
    from lightning.pytorch.loggers import CSVLogger

    from densitydiff.sharpen.callbacks import PerformanceMonitor, SharpeningMonitor
    from densitydiff.sharpen.module import SharpenModule

    config = from_dict(config) if isinstance(config, dict) else config
    if (data is None) == (dataset is None):
        raise InputError("give exactly one of a training store (data) or a dataset")
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume and not last.is_file():
        raise InputError(f"cannot resume: no checkpoint at {last}")
    if not resume and last.exists():
        raise InputError(f"{run_dir} already holds a run; pass --resume or choose a new -o")
    if data is not None:
        dataset, val_dataset = _open_store(data)
    if len(dataset) == 0:
        raise InputError("the training set is empty")
    geometry = _geometry(data, dataset)
    run_dir.mkdir(parents=True, exist_ok=True)

    t = config.trainer
    L.seed_everything(config.seed, workers=True, verbose=False)
    is_zero = int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0
    record = run_record(
        config=to_dict(config),
        seed=config.seed,
        inputs=[data] if data is not None else [],
        argv=argv,
        geometry=geometry,
        resume=bool(resume),
    )
    if is_zero:
        _write_run_files(run_dir, config, dataset, record)

    loader_kw = dict(
        batch_size=t.batch_size,
        num_workers=t.num_workers,
        persistent_workers=t.num_workers > 0,
    )
    train_loader = torch.utils.data.DataLoader(dataset, shuffle=True, drop_last=False, **loader_kw)
    val_loader = None
    if val_dataset is not None and len(val_dataset) > 0:
        val_loader = torch.utils.data.DataLoader(val_dataset, shuffle=False, **loader_kw)

    every = max(1, min(t.val_every_n_steps, t.max_steps))
    # checkpoint period independent of max_steps, so a resumed run finds its callback's state
    cbs = _checkpoint_callbacks(ckpt_dir, max(1, t.val_every_n_steps), val_loader is not None)
    cbs.append(PerformanceMonitor())
    if t.monitor_every_n_steps > 0 and val_dataset is not None and len(val_dataset) > 0:
        cbs.append(
            SharpeningMonitor(val_dataset, t.monitor_every_n_steps, t.monitor_patches, run_dir)
        )
    cbs.extend(callbacks or [])

    loggers = [CSVLogger(save_dir=run_dir, name="logs")]
    if _tensorboard_available():
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=run_dir, name="tensorboard"))

    strategy = t.strategy
    if strategy == "auto" and t.devices * t.num_nodes > 1:
        strategy = "ddp"
    trainer = L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=strategy,
        precision=_precision(config),
        max_steps=t.max_steps,
        max_epochs=-1,
        gradient_clip_val=config.optim.grad_clip or None,
        val_check_interval=every if val_loader is not None else None,
        check_val_every_n_epoch=None,
        limit_val_batches=t.limit_val_batches if val_loader is not None else 0,
        num_sanity_val_steps=0,
        log_every_n_steps=t.log_every_n_steps,
        logger=loggers,
        callbacks=cbs,
        plugins=[_atomic_checkpoint_io()],
        default_root_dir=run_dir,
        enable_progress_bar=progress_bar if progress_bar is not None else sys.stderr.isatty(),
        enable_model_summary=False,
        deterministic=False,
    )
    module = SharpenModule(to_dict(config), geometry)
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if resume else None)
    if is_zero:
        record["global_step"] = int(trainer.global_step)
        record["wall_seconds"] = round(time.perf_counter() - started, 3)
        write_record(run_dir / "run.yaml", record)
    best = ckpt_dir / "best.ckpt"
    return {
        "run_dir": str(run_dir),
        "global_step": int(trainer.global_step),
        "last": str(last) if last.exists() else None,
        "best": str(best) if best.exists() else None,
        "module": module,
    }


def _tensorboard_available() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX"))
