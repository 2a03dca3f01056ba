"""`densitydiff prior ...`: train, sample, interpolate, evaluate, plot a latent diffusion prior."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from densitydiff.cli.options import (
    legacy,
    pick,
    progress_option,
    set_threads,
    threads_option,
)

prior_app = typer.Typer(
    help="Diffusion prior over cryo-EM heterogeneity latents (cryoDRGN z.pkl in and out).",
    no_args_is_help=True,
)


@prior_app.command("train")
def train(
    latents: Path = typer.Argument(..., help="Latents: cryoDRGN z.pkl, .npy or .pt (N x D)."),
    out: Path = typer.Option(..., "-o", "--out", help="Run directory to write."),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs (default 400)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Batch size (1024)."),
    config: Path | None = typer.Option(None, "--config", help="YAML of PriorConfig fields."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (0)."),
    posterior: bool = typer.Option(
        False, "--posterior", help="Train on z = mu + exp(logvar/2) eps (needs log-variances)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from RUN/checkpoints/last.ckpt."),
    progress: bool | None = progress_option(),
    threads: int | None = threads_option(),
) -> None:
    """Train the EDM prior on latents; writes RUN/prior.pt, RUN/config.yaml, RUN/checkpoints/.

    Example: densitydiff prior train z.50.pkl -o prior_run --epochs 400
    """
    from densitydiff.extras import require

    require("train", what="prior train")
    from densitydiff.console import show_progress
    from densitydiff.prior.train import read_config, train_prior

    set_threads(threads)
    if resume and config is None and (out / "config.yaml").is_file():
        config = out / "config.yaml"
    cfg = read_config(
        config,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        posterior=True if posterior else None,
    )
    path = train_prior(latents, out, cfg, resume=resume, progress=show_progress(progress))
    print(f"wrote {path}")


@prior_app.command("sample")
def sample(
    run: Path = typer.Argument(..., help="Run directory (or its prior.pt)."),
    n: int = typer.Option(..., "-n", help="Number of latents to draw."),
    out: Path = typer.Option(
        ..., "-o", "--out", help="Output .txt (for cryodrgn eval_vol --zfile), .npy, .pt or .pkl."
    ),
    method: str = typer.Option(
        "ode", "--method", help="ode | heun | sde | langevin | gaussian | gaussian-langevin."
    ),
    beta: float = typer.Option(1.0, "--beta", help="Langevin strength of the SDE (0 = ODE)."),
    steps: int = typer.Option(
        64, "--steps", help="Sampler steps of heun / sde (one per noise level)."
    ),
    rtol: float = typer.Option(1e-4, "--rtol", help="dopri5 relative tolerance (ode)."),
    atol: float = typer.Option(1e-4, "--atol", help="dopri5 absolute tolerance (ode)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    volumes: Path | None = typer.Option(
        None, "--volumes", help="hetero run: decode the latents into volumes; -o is a folder."
    ),
    threads: int | None = threads_option(),
) -> None:
    """Draw N latents from the learned prior (or the N(0, I) reference) and save them.

    Example: densitydiff prior sample prior_run -n 10000 -o z_prior.txt --method ode
    """
    from densitydiff.prior.latents import save_latents
    from densitydiff.prior.sample import sample_prior

    started = time.perf_counter()
    set_threads(threads)
    settings = dict(n=n, method=method, beta=beta, steps=steps, rtol=rtol, atol=atol)
    prior, hetero = _prior_and_decoder(run, volumes, out)
    z, info = sample_prior(
        prior, n, method, seed=seed, beta=beta, steps=steps, rtol=rtol, atol=atol
    )
    info.update({"n": n, "out": str(out)})
    if volumes is None:
        save_latents(out, z)
        _write_record(out, run, settings, seed, started, nfe=info.get("nfe"))
    else:
        _write_volumes(hetero, z, out, run, volumes, settings, seed, started, nfe=info.get("nfe"))
    if as_json:
        print(json.dumps(info))
    else:
        what = "latents" if volumes is None else "latents and volumes"
        print(f"wrote {n} {what} to {out} ({method}, NFE {info['nfe']}, {info['seconds']:.2f} s)")


@prior_app.command("interpolate")
def interpolate(
    run: Path = typer.Argument(..., help="Run directory (or its prior.pt)."),
    out: Path = typer.Option(
        ..., "-o", "--out", help="Output .txt (for cryodrgn eval_vol --zfile), .npy, .pt or .pkl."
    ),
    start: int | None = typer.Option(None, "--start", help="Index of the first training latent."),
    end: int | None = typer.Option(None, "--end", help="Index of the last training latent."),
    za: str | None = typer.Option(None, "--za", help="First latent as 'a,b,c,...'."),
    zb: str | None = typer.Option(None, "--zb", help="Last latent as 'a,b,c,...'."),
    points: int | None = typer.Option(
        None, "--points", help="Points on the path, ends included (default 10)."
    ),
    steps_legacy: int | None = legacy("--steps"),
    through: str = typer.Option("noise", "--through", help="noise (ODE) | latent (straight)."),
    mode: str = typer.Option("spherical", "--mode", help="In noise: spherical | linear."),
    volumes: Path | None = typer.Option(
        None, "--volumes", help="hetero run: decode the latents into volumes; -o is a folder."
    ),
    threads: int | None = threads_option(),
) -> None:
    """Path between two latents through the ODE's noise space, or a straight line.

    Example: densitydiff prior interpolate prior_run --start 0 --end 17 --points 10 -o path.txt
    """
    from densitydiff.errors import InputError
    from densitydiff.prior.interpolate import interpolate as run_interpolate
    from densitydiff.prior.latents import parse_vector, save_latents

    started = time.perf_counter()
    points = pick(points, steps_legacy, "--points", "--steps")
    points = 10 if points is None else points
    set_threads(threads)
    prior, hetero = _prior_and_decoder(run, volumes, out)

    def end_point(index: int | None, text: str | None, name: str):
        if (index is None) == (text is None):
            raise InputError(f"give exactly one of --{name} index or --z{name[0]} vector")
        if text is not None:
            return parse_vector(text, prior.dim)
        if not 0 <= index < len(prior.latents):
            raise InputError(f"--{name} {index} is outside 0..{len(prior.latents) - 1}")
        return prior.latents[index]

    path = run_interpolate(
        prior, end_point(start, za, "start"), end_point(end, zb, "end"), points, through, mode
    )
    settings = dict(start=start, end=end, za=za, zb=zb, points=points, through=through, mode=mode)
    if volumes is None:
        save_latents(out, path)
        _write_record(out, run, settings, None, started)
    else:
        _write_volumes(hetero, path, out, run, volumes, settings, None, started, strip="path.png")
    what = "latents" if volumes is None else "latents and volumes"
    print(f"wrote {len(path)} {what} to {out} (through {through})")


@prior_app.command("evaluate")
def evaluate(
    run: Path = typer.Argument(..., help="Run directory (or its prior.pt)."),
    latents: Path = typer.Argument(..., help="Data latents to compare with (z.pkl, .npy, .pt)."),
    method: str = typer.Option("ode", "--method", help="Sampler for the learned prior."),
    seed: int = typer.Option(0, "--seed", help="Random seed (split and samples)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    threads: int | None = threads_option(),
) -> None:
    """MMD, energy distance and SW2 to the data: learned prior, N(0, I), and two data halves.

    Example: densitydiff prior evaluate prior_run z.50.pkl --json
    """
    from densitydiff.errors import InputError
    from densitydiff.prior.evaluate import evaluate_prior
    from densitydiff.prior.latents import load_latents
    from densitydiff.prior.sample import load_prior

    set_threads(threads)
    prior = load_prior(run)
    data = load_latents(latents).mu
    if data.shape[1] != prior.dim:
        raise InputError(f"{latents}: latents have dimension {data.shape[1]}, prior {prior.dim}")
    if len(data) < 4:
        raise InputError(f"{latents}: need at least 4 latents to split into halves")
    result = evaluate_prior(prior, data, seed=seed, method=method)
    if as_json:
        print(json.dumps(result))
        return
    print(f"{'':12s} {'mmd':>10s} {'energy':>10s} {'sw2':>10s}")
    for key in ("floor", "learned", "gaussian", "learned_all", "gaussian_all"):
        r = result[key]
        print(f"{key:12s} {r['mmd']:10.4g} {r['energy']:10.4g} {r['sw2']:10.4g}")
    print(
        f"MMD learned/floor {result['mmd_learned_over_floor']:.3g}, "
        f"learned/N(0,I) {result['mmd_learned_over_gaussian']:.3g} (half-size sets), "
        f"{result['mmd_learned_over_gaussian_all']:.3g} (all data)"
    )


@prior_app.command("plot")
def plot(
    run: Path = typer.Argument(..., help="Run directory (or its prior.pt)."),
    latents: Path = typer.Argument(..., help="Data latents (z.pkl, .npy, .pt)."),
    out: Path = typer.Option(..., "-o", "--out", help="Figure (.png, .pdf, .svg)."),
    n: int = typer.Option(2000, "-n", help="Prior samples to draw."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    threads: int | None = threads_option(),
) -> None:
    """Data vs prior samples on the data's first two principal components, with a path.

    Example: densitydiff prior plot prior_run z.50.pkl -o prior.png
    """
    from densitydiff.errors import InputError
    from densitydiff.outputs import check_record_path
    from densitydiff.prior.latents import load_latents
    from densitydiff.prior.plot import plot_prior
    from densitydiff.prior.sample import load_prior

    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise InputError(f"{out}: figure must end in .png, .pdf or .svg")
    started = time.perf_counter()
    check_record_path(out.with_suffix(".json"))
    set_threads(threads)
    prior = load_prior(run)
    data = load_latents(latents).mu
    if data.shape[1] != prior.dim:
        raise InputError(f"{latents}: latents have dimension {data.shape[1]}, prior {prior.dim}")
    plot_prior(prior, data, out, n=n, seed=seed)
    _write_record(out, run, {"n": n}, seed, started, inputs=[latents])
    print(f"wrote {out}")


def _write_record(out: Path, run: Path, settings: dict, seed, started, inputs=(), **extra) -> None:
    """OUT.json beside OUT: the command line, settings, seed, versions and the prior file read."""
    from densitydiff.runrecord import run_record, write_record

    prior_file = run / "prior.pt" if run.is_dir() else run
    record = run_record(config=settings, seed=seed, inputs=[prior_file, *inputs], started=started,
                        output=str(out), **extra)  # fmt: skip
    write_record(out.with_suffix(".json"), record)


def _prior_and_decoder(run: Path, volumes: Path | None, out: Path):
    """The prior, and (with `--volumes`) the hetero run that decodes its latents, checked to
    agree on the latent dimension before any sampling. Without it OUT is a latent file (hetero
    is None); with it OUT must be a folder `atomic_dir` may write."""
    from densitydiff.errors import InputError
    from densitydiff.outputs import check_output_dir, check_record_path
    from densitydiff.prior.sample import load_prior

    if volumes is None:
        _check_suffix(out)
        check_record_path(out.with_suffix(".json"))
        return load_prior(run), None
    from densitydiff.hetero.checkpoint import load_hetero

    check_output_dir(out, "volumes.json")
    prior = load_prior(run)
    hetero = load_hetero(volumes)
    if prior.dim != hetero.zdim:
        raise InputError(
            f"the prior's latents have dimension {prior.dim} but the run {volumes} has zdim "
            f"{hetero.zdim}"
        )
    return prior, hetero


def _write_volumes(hetero, z, out: Path, run: Path, volumes: Path, settings: dict, seed,
                   started, strip: str | None = None, **extra) -> None:  # fmt: skip
    """OUT/vol_XXX.mrc decoded by the hetero run, z.txt, z.npy, and volumes.json (run record)."""
    from densitydiff.hetero.volume import write_volumes
    from densitydiff.runrecord import run_record

    prior_file = run / "prior.pt" if run.is_dir() else run
    weights = volumes / "weights.pt" if volumes.is_dir() else volumes
    record = run_record(config=settings, seed=seed, inputs=[prior_file, weights], started=started,
                        output=str(out), **extra)  # fmt: skip
    write_volumes(hetero, z, out, source=str(prior_file), record=record, latents=True, strip=strip)


def _check_suffix(out: Path) -> None:
    from densitydiff.errors import InputError

    if out.suffix.lower() not in (".txt", ".npy", ".pt", ".pth", ".pkl"):
        raise InputError(f"{out}: output must end in .txt, .npy, .pt or .pkl")


def register(app: typer.Typer) -> None:
    app.add_typer(prior_app, name="prior")
