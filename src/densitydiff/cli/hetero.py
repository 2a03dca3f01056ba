"""`densitydiff hetero ...`: train the heterogeneity VAE on particles; decode volumes at latents."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from densitydiff.cli.options import progress_option, set_threads, threads_option

hetero_app = typer.Typer(
    help="cryoDRGN-style VAE for heterogeneous reconstruction (particles -> z.pkl, volumes).",
    no_args_is_help=True,
)


@hetero_app.command("train")
def train(
    particles: Path = typer.Argument(..., help="Particles: .mrcs, .txt list, .star or .cs."),
    out: Path = typer.Option(..., "-o", "--out", help="Run directory to write."),
    poses: Path | None = typer.Option(None, "--poses", help="cryoDRGN poses.pkl."),
    ctf: Path | None = typer.Option(None, "--ctf", help="cryoDRGN ctf.pkl."),
    ind: Path | None = typer.Option(None, "--ind", help="cryoDRGN .pkl of image indices."),
    datadir: Path | None = typer.Option(None, "--datadir", help="Folder of the .star/.cs stacks."),
    zdim: int | None = typer.Option(None, "--zdim", help="Latent dimension (8)."),
    epochs: int | None = typer.Option(None, "--epochs", "-n", help="Epochs (25)."),
    batch_size: int | None = typer.Option(None, "--batch-size", "-b", help="Batch size (8)."),
    lr: float | None = typer.Option(None, "--lr", help="Adam learning rate (1e-4)."),
    beta: float | None = typer.Option(None, "--beta", help="KL weight (1 / zdim)."),
    encoder: str | None = typer.Option(None, "--encoder", help="mlp (cryoDRGN's) | conv."),
    enc_dim: int | None = typer.Option(None, "--enc-dim", help="Encoder width (256)."),
    enc_layers: int | None = typer.Option(None, "--enc-layers", help="Encoder depth (3)."),
    dec_dim: int | None = typer.Option(None, "--dec-dim", help="Decoder width (256)."),
    dec_layers: int | None = typer.Option(None, "--dec-layers", help="Decoder depth (3)."),
    pe_type: str | None = typer.Option(None, "--pe-type", help="geom_lowf | gaussian."),
    invert: bool | None = typer.Option(
        None,
        "--invert-data/--uninvert-data",
        help="Multiply the images by -1 (cryoDRGN's default; our `simulate particles` stacks "
        "need it since they hold -CTF * (P V), as cryoDRGN's own simulator writes).",
    ),
    phase_flip: bool | None = typer.Option(
        None, "--phase-flip", help="Encode phase-flipped images."
    ),
    chunk_size: int | None = typer.Option(
        None, "--chunk-size", help="Images read at a time (1024)."
    ),
    precision: str | None = typer.Option(None, "--precision", help="32 | bf16-mixed | 16-mixed."),
    config: Path | None = typer.Option(
        None, "--config", help="YAML of HeteroConfig fields, or tiny."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (0)."),
    devices: str = typer.Option("1", "--devices", help="Devices for Lightning (a number or auto)."),
    num_nodes: int = typer.Option(1, "--num-nodes", help="Nodes for multi-node training."),
    accelerator: str = typer.Option("auto", "--accelerator", help="auto | cpu | gpu."),
    resume: bool = typer.Option(False, "--resume", help="Continue from RUN/checkpoints/last.ckpt."),
    progress: bool | None = progress_option(),
    threads: int | None = threads_option(),
) -> None:
    """Train the VAE; writes RUN/z.N.pkl each epoch, RUN/z.pkl, RUN/weights.pt, RUN/config.yaml.

    Example: densitydiff hetero train particles.mrcs --poses poses.pkl --ctf ctf.pkl --zdim 8
    --epochs 25 -o run
    """
    from densitydiff.extras import require

    require("train", what="hetero train")
    from densitydiff.console import show_progress
    from densitydiff.hetero.data import open_particles
    from densitydiff.hetero.train import read_config, train_hetero

    set_threads(threads)
    if resume and config is None and (out / "config.yaml").is_file():
        config = out / "config.yaml"
    cfg = read_config(
        config,
        zdim=zdim,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        beta=beta,
        encoder=encoder,
        enc_dim=enc_dim,
        enc_layers=enc_layers,
        dec_dim=dec_dim,
        dec_layers=dec_layers,
        pe_type=pe_type,
        invert_data=invert,
        phase_flip=phase_flip,
        chunk_size=chunk_size,
        precision=precision,
        seed=seed,
    )
    data = open_particles(particles, poses, ctf, ind, datadir)
    dev: int | str = int(devices) if devices.isdigit() else devices
    path = train_hetero(
        data,
        out,
        cfg,
        resume=resume,
        progress=show_progress(progress),
        devices=dev,
        num_nodes=num_nodes,
        accelerator=accelerator,
    )
    print(f"wrote {path}")


@hetero_app.command(
    "volume", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def volume(
    ctx: typer.Context,
    run: Path = typer.Argument(..., help="Run directory (or its weights.pt)."),
    out: Path = typer.Option(..., "-o", "--out", help="OUT.mrc (with --z) or a folder (--zfile)."),
    z: str | None = typer.Option(
        None, "--z", help="One latent, zdim numbers after --z: --z 0.1 -0.3 ... (last option)."
    ),
    zfile: Path | None = typer.Option(None, "--zfile", help="Latents z.txt, z.npy or z.pkl."),
    threads: int | None = threads_option(),
) -> None:
    """Decode volumes at latents (the images' pixel size, origin 0, as cryoDRGN's eval_vol).

    Example: densitydiff hetero volume run -o vol.mrc --z 0.1 -0.3
    """
    from densitydiff.errors import InputError

    if ctx.args and z is None:
        raise InputError(f"unexpected arguments {' '.join(ctx.args)}")
    if z is not None:  # --z takes the numbers that follow it (cryoDRGN's `--z` is nargs="+")
        try:
            z = [float(v) for v in [z, *ctx.args]]
        except ValueError:
            raise InputError(f"--z needs numbers, got {' '.join([z, *ctx.args])}") from None
    if (z is None) == (zfile is None):
        raise InputError("give one latent (--z a b ...) or a file of latents (--zfile), not both")
    from densitydiff.hetero.checkpoint import load_hetero
    from densitydiff.hetero.volume import write_volume, write_volumes
    from densitydiff.outputs import check_record_path
    from densitydiff.runrecord import run_record, write_record

    started = time.perf_counter()
    set_threads(threads)
    if zfile is None:
        check_record_path(out.with_suffix(".json"))
    model = load_hetero(run)
    weights = run / "weights.pt" if run.is_dir() else run
    inputs = [weights] + ([zfile] if zfile is not None else [])
    if zfile is not None:
        from densitydiff.formats.latents import read_latents

        mu, _ = read_latents(zfile)
        record = run_record(inputs=inputs, started=started, output=str(out))
        write_volumes(model, mu, out, source=str(zfile), record=record)
        print(f"wrote {len(mu)} volumes to {out}")
    else:
        path = write_volume(model, z, out)
        record = run_record(inputs=inputs, started=started, output=str(out), z=list(z))
        write_record(out.with_suffix(".json"), record)
        print(f"wrote {path}")


@hetero_app.command("analyze")
def analyze(
    run: Path = typer.Argument(..., help="Run directory of `hetero train`."),
    out: Path = typer.Option(..., "-o", "--out", help="Folder to write (whole)."),
    epoch: int | None = typer.Option(None, "--epoch", help="Analyze RUN/z.N.pkl (default z.pkl)."),
    k: int = typer.Option(8, "--k", help="k-means centres (one volume each)."),
    pc_points: int = typer.Option(10, "--pc-points", help="Volumes along PC1 (5th-95th pct)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (k-means starts)."),
    threads: int | None = threads_option(),
) -> None:
    """PCA of z, k-means centres and their volumes, volumes along PC1, an HTML page (index.html).

    Example: densitydiff hetero analyze run -o run/analyze --k 8
    """
    from densitydiff.formats.latents import read_latents
    from densitydiff.hetero.analyze import analyze as run_analyze
    from densitydiff.hetero.analyze import latents_file
    from densitydiff.hetero.checkpoint import load_hetero
    from densitydiff.outputs import check_output_dir
    from densitydiff.runrecord import run_record

    started = time.perf_counter()
    set_threads(threads)
    check_output_dir(out, "analyze.json")
    zfile = latents_file(run, epoch)
    model = load_hetero(run)
    mu, _ = read_latents(zfile)
    settings = dict(epoch=epoch, k=k, pc_points=pc_points)
    record = run_record(config=settings, seed=seed, inputs=[run / "weights.pt", zfile],
                        started=started, output=str(out))  # fmt: skip
    run_analyze(model, mu, out, k=k, pc_points=pc_points, seed=seed, record=record)
    print(f"wrote {out}/index.html ({len(mu)} latents, k = {k}, {pc_points} along PC1)")


def register(app: typer.Typer) -> None:
    app.add_typer(hetero_app, name="hetero")
