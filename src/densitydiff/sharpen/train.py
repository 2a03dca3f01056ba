"""Train a sharpening model with Lightning: one entry for the CLI and for Python.

`train_sharpen(config, data=STORE or dataset=Dataset, run_dir=RUN)` writes to RUN:
config.yaml (resolved), run.yaml (the run record: command, config, seed, versions, inputs;
densitydiff.runrecord), structures.txt (training structures), logs/ (CSV, TensorBoard when
installed), checkpoints/ (last.ckpt every val_every_n_steps and at the end, best.ckpt by
validation loss, written atomically; the model's hyperparameters hold the config and the
training data's voxel size and patch), monitor/ (PNG slices from the validation callback).
`resume=True` continues from checkpoints/last.ckpt at the saved step with the saved optimizer,
scheduler and EMA state. A refine run reads its predictor (config refine.predictor) once, at
the start; a resumed run takes it from the checkpoint and does not read it again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from densitydiff.errors import InputError
from densitydiff.outputs import atomic_checkpoint_io, atomic_path, output_lock
from densitydiff.runrecord import run_record, write_record
from densitydiff.sharpen.config import SharpenConfig, dump_config, from_dict, to_dict


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
    """{"voxel_size", "patch", "pairs"} of the training data (a store's attributes, or the
    dataset's); the pairs become the model's training range (docs/sharpen.md, "Guards")."""
    if data is not None:
        from densitydiff.data.layout import read_root

        meta = read_root(data)
        pairs = getattr(dataset, "pairs", None) or meta["pairs"]
        return {"voxel_size": float(meta["voxel_size"]), "patch": int(meta["patch"]),
                "pairs": [[float(a), float(b)] for a, b in pairs]}  # fmt: skip
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
    from densitydiff.data.layout import verify_store

    verify_store(data, decode=False)  # half-built or damaged: refused before any work

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

    `argv` is the command line for the run record (default: sys.argv). One run per folder at
    a time (a lock); a run that fails before its first checkpoint removes the folder it
    created, so a folder holds either a resumable run or nothing.
    """
    started = time.perf_counter()
    config = from_dict(config) if isinstance(config, dict) else config
    if (data is None) == (dataset is None):
        raise InputError("give exactly one of a training store (data) or a dataset")
    run_dir = Path(run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"{run_dir} exists and is not a folder; choose a new -o")
    if resume and not last.is_file():
        raise InputError(f"cannot resume: no checkpoint at {last}")
    if not resume and last.exists():
        raise InputError(f"{run_dir} already holds a run; pass --resume or choose a new -o")
    if resume:
        from densitydiff.torchfile import read_torch_file

        read_torch_file(last, "checkpoint to resume from")  # truncated or unsafe: refused now
    if data is not None:
        dataset, val_dataset = _open_store(data)
    if len(dataset) == 0:
        raise InputError("the training set is empty")
    _check_patch(config, dataset)
    geometry = _geometry(data, dataset)
    predictor = _predictor(config, geometry, resume, run_dir)
    fit = (config, run_dir, data, dataset, val_dataset, geometry, predictor, resume, callbacks,
           progress_bar, argv, started)  # fmt: skip
    if not _is_rank_zero():  # DDP's other processes run this too: rank 0 holds the folder
        run_dir.mkdir(parents=True, exist_ok=True)
        return _fit(*fit)
    with output_lock(run_dir), _removed_unless_checkpointed(run_dir, last):
        return _fit(*fit)


def _predictor(config: SharpenConfig, geometry, resume: bool, run_dir: Path):
    """(state_dict or None, run-record entry or None) of a refine run's predictor.

    Read from refine.predictor at the start of a run (checked: kind, shape, voxel size); on
    resume the checkpoint holds the weights and the entry is the first run's.
    """
    if config.model != "refine":
        return None, None
    if resume:
        import yaml

        old = run_dir / "run.yaml"
        record = yaml.safe_load(old.read_text()) if old.is_file() else None
        return None, (record or {}).get("predictor")
    source = config.refine.predictor
    if source is None:
        if config.refine.freeze_predictor:
            raise InputError(
                "model refine with a frozen predictor needs a trained regression model: "
                "pass --predictor (e.g. regression, a .pt or a unet run's .ckpt)"
            )
        return None, None
    from densitydiff.runrecord import describe_input
    from densitydiff.sharpen.checkpoint import load_predictor

    state, path = load_predictor(source, config, (geometry or {}).get("voxel_size"))
    return state, {"source": str(source), **describe_input(path)}


def _is_rank_zero() -> bool:
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def _check_patch(config: SharpenConfig, dataset) -> None:
    """The U-Nets halve the patch len(widths) - 1 times: the patch edge must allow it."""
    patch = getattr(dataset, "patch", None)
    factor = config.downsampling()
    if patch is not None and int(patch) % factor:
        levels = factor.bit_length()
        raise InputError(
            f"patch edge {patch} is not divisible by {factor}, the downsampling of a "
            f"{levels}-level U-Net; build the store with --patch a multiple of "
            f"{factor} or use fewer net.widths"
        )


@contextlib.contextmanager
def _removed_unless_checkpointed(run_dir: Path, last: Path):
    """A run that fails before its first checkpoint leaves no folder behind (if it made it)."""
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if created and not last.exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _fit(config, run_dir, data, dataset, val_dataset, geometry, predictor, resume, callbacks,
         progress_bar, argv, started) -> dict[str, Any]:  # fmt: skip
    """The training itself, under the run folder's lock."""
    import lightning as L
    import torch
    from lightning.pytorch.loggers import CSVLogger

    from densitydiff.console import lightning_progress_bar, quiet_lightning, show_progress
    from densitydiff.sharpen.callbacks import PerformanceMonitor, RealMapMonitor, SharpeningMonitor
    from densitydiff.sharpen.module import SharpenModule

    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    t = config.trainer
    L.seed_everything(config.seed, workers=True, verbose=False)
    is_zero = _is_rank_zero()
    predictor_state, predictor_entry = predictor
    extra = {"predictor": predictor_entry} if predictor_entry is not None else {}
    record = run_record(
        config=to_dict(config),
        seed=config.seed,
        inputs=[data] if data is not None else [],
        argv=argv,
        geometry=geometry,
        resume=bool(resume),
        **extra,
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
    if t.monitor_every_n_steps > 0 and t.monitor_real_map:
        cbs.append(RealMapMonitor(t.monitor_every_n_steps, geometry))
    cbs.extend(callbacks or [])

    loggers = [CSVLogger(save_dir=run_dir, name="logs")]
    if _tensorboard_available():
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=run_dir, name="tensorboard"))

    strategy = t.strategy
    if strategy == "auto" and t.devices * t.num_nodes > 1:
        strategy = "ddp"
    progress = show_progress(progress_bar)
    bar = lightning_progress_bar(progress)
    if bar is not None:
        cbs.append(bar)
    with quiet_lightning():
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
            plugins=[atomic_checkpoint_io()],
            default_root_dir=run_dir,
            enable_progress_bar=progress,
            enable_model_summary=False,
            deterministic=False,
        )
        module = SharpenModule(to_dict(config), geometry, predictor_state)
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
