"""Map commands: `info`, `fsc`, `compare`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

MIN_OVERLAP = 0.5  # --resample refuses pairs whose boxes share less of the smaller box
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def info(
    path: Path = typer.Argument(..., help="Map file (.mrc .map .ccp4 .mrcs, .gz, .mtz)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Shape, voxel size, origin (x, y, z as ChimeraX shows them) and statistics of a map.

    Example: densitydiff info emd_5168_monomer.mrc
    """
    import numpy as np

    from densitydiff.formats.maps import read_volume

    m = read_volume(path)
    a = m.array.astype(np.float64)  # float32 sums of large values overflow
    record = {
        "path": str(path),
        "shape_xyz": list(m.shape[::-1]),
        "voxel_size_xyz": list(m.voxel_size[::-1]),
        "origin_xyz": list(m.origin[::-1]),
        "min": float(a.min()),
        "max": float(a.max()),
        "mean": float(a.mean()),
        "std": float(a.std()),
    }
    if m.unit_cell is not None:
        record["unit_cell"] = list(m.unit_cell)
    if as_json:
        print(json.dumps(record))
        return
    from densitydiff.console import decimal

    for key, value in record.items():
        if key.startswith(("voxel_size", "origin")) or key == "unit_cell":
            value = "[" + ", ".join(decimal(v) for v in value) + "]"
        elif isinstance(value, float):
            value = f"{value:.6g}"
        print(f"{key:15s} {value}")


def _pair_on_one_grid(a_path: Path, b_path: Path, resample: bool):
    """Read two maps; put the second on the first's grid, or refuse when grids differ."""
    from densitydiff.errors import InputError
    from densitydiff.formats.maps import read_volume

    a, b = read_volume(a_path), read_volume(b_path)
    if not a.same_grid(b):
        if not resample:
            raise InputError(
                f"{a_path} and {b_path} are on different grids (shape, voxel size or origin: "
                f"{a.shape[::-1]} / {b.shape[::-1]} voxels, {a.voxel_size[::-1]} / "
                f"{b.voxel_size[::-1]} Å, origin {a.origin[::-1]} / {b.origin[::-1]}); "
                "pass --resample to interpolate the second onto the first"
            )
        from densitydiff.grids import interpolate_onto, overlap_fraction

        shared = overlap_fraction(a, b)
        if shared < MIN_OVERLAP:
            raise InputError(
                f"{a_path} and {b_path} barely overlap ({100 * shared:.0f} % of the smaller box "
                f"is shared, below {100 * MIN_OVERLAP:.0f} %): origins {_xyz(a.origin)} / "
                f"{_xyz(b.origin)} Å (x, y, z); their FSC would measure the offset, not the maps"
            )
        b = interpolate_onto(b, a)
    return a, b


def _xyz(zyx) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in zyx[::-1]) + ")"


def _read_mask(path: Path | None, like):
    if path is None:
        return None
    from densitydiff.errors import InputError
    from densitydiff.formats.maps import read_volume

    mask = read_volume(path)
    if not mask.same_grid(like):
        raise InputError(f"mask {path} is not on the grid of the maps")
    return mask.array


def _require_signal(path: Path, array, what: str) -> None:
    """A constant map has no Fourier shell power: correlations with it are 0/0."""
    from densitydiff.errors import InputError

    if float(array.max()) == float(array.min()):
        value = float(array.min())
        raise InputError(f"{path}: the map is constant ({value:g}); {what} is undefined")
def _fsc_mask(a, b, mask, threshold, model, radius, soft_edge_width):
    """(mask array or None, description) from --mask, --mask-threshold or --mask-model."""
    from densitydiff.errors import InputError
    from densitydiff.filters import soft_edge

    given = [mask is not None, threshold is not None, model is not None]
    if sum(given) > 1:
        raise InputError("give one of --mask, --mask-threshold or --mask-model")
    if not any(given):
        if soft_edge_width is not None:
            raise InputError("--mask-soft-edge needs --mask, --mask-threshold or --mask-model")
        return None, None
    if mask is not None:
        array = _read_mask(mask, a)
        if soft_edge_width is not None:
            array = soft_edge(array >= 0.5, a.voxel_size, soft_edge_width)
        return array, {"kind": "file", "path": str(mask), "soft_edge": soft_edge_width}
    width = 6.0 if soft_edge_width is None else soft_edge_width
    if threshold is not None:
        binary = 0.5 * (a.array + b.array) >= threshold  # on the average map, as RELION
        if not binary.any():
            raise InputError(f"--mask-threshold {threshold:g}: the mask is empty (map max "
                             f"{float((0.5 * (a.array + b.array)).max()):.4g})")  # fmt: skip
        info = {"kind": "threshold", "threshold": threshold, "soft_edge": width}
    else:
        from densitydiff.simulate.density import atom_mask
        from densitydiff.structures import read_structure

        binary = atom_mask(read_structure(model), a, radius)
        if not binary.any():
            raise InputError(f"--mask-model {model}: no atom lies inside the map's box")
        info = {"kind": "model", "path": str(model), "radius": radius, "soft_edge": width}
    return soft_edge(binary, a.voxel_size, width), info


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _figures(metrics, curve) -> dict:
    return {
        "fsc_0.5": metrics.resolution_at(curve, 0.5),
        "fsc_0.143": metrics.resolution_at(curve, 0.143),
        "fsc_auc": metrics.fsc_auc(curve),
    }


def fsc(
    map_a: Path = typer.Argument(..., help="First map (e.g. half map 1, or a prediction)."),
    map_b: Path = typer.Argument(..., help="Second map, on the same grid."),
    mask: Path | None = typer.Option(None, "--mask", help="Mask map (0..1) on the same grid."),
    mask_threshold: float | None = typer.Option(
        None, "--mask-threshold", help="Mask: voxels of the average map >= T, soft-edged."
    ),
    mask_model: Path | None = typer.Option(
        None, "--mask-model", help="Mask: atoms of this model + --mask-radius, soft-edged."
    ),
    mask_radius: float = typer.Option(3.0, "--mask-radius", help="Model mask radius (Å)."),
    mask_soft_edge: float | None = typer.Option(
        None,
        "--mask-soft-edge",
        help="Raised-cosine edge (Å); default 6 for threshold/model masks, none for --mask.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the phase randomisation."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the FSC curve as a PNG."),
    resample: bool = typer.Option(False, "--resample", help="Interpolate B onto A's grid."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Fourier shell correlation: resolution at FSC 0.5 and 0.143 (Å) and the FSC-AUC.

    With a mask (--mask, --mask-threshold or --mask-model) the masked FSC is corrected by phase
    randomisation (Chen et al. 2013) beyond the unmasked FSC's 0.8 crossing, as RELION's
    postprocess does; the figures are then those of the corrected curve (docs/metrics.md).

    Example: densitydiff fsc half1.mrc half2.mrc --mask-threshold 0.02 --plot fsc.png
    """
    from densitydiff import metrics
    from densitydiff.errors import InputError

    if plot is not None and plot.suffix.lower() not in FIGURE_SUFFIXES:
        raise InputError(f"--plot {plot}: a figure must end in {', '.join(FIGURE_SUFFIXES)}")
    a, b = _pair_on_one_grid(map_a, map_b, resample)
    for path, m in ((map_a, a), (map_b, b)):
        _require_signal(path, m.array, "FSC")
    voxel = a.require_isotropic("FSC")
    mask_array, mask_info = _fsc_mask(
        a, b, mask, mask_threshold, mask_model, mask_radius, mask_soft_edge
    )
    if mask_array is None:
        curve = metrics.fsc(a.array, b.array, voxel)
        curves = {f"{map_a.name} vs {map_b.name}": curve}
        record = _figures(metrics, curve)
    else:
        result = metrics.masked_fsc(a.array, b.array, voxel, mask_array, seed=seed)
        curve = result.corrected
        curves = {
            "unmasked": result.unmasked,
            "masked": result.masked,
            "phase-randomised masked": result.randomised,
            "corrected": result.corrected,
        }
        record = _figures(metrics, curve)
        record.update(
            unmasked=_figures(metrics, result.unmasked),
            masked=_figures(metrics, result.masked),
            corrected=dict(_figures(metrics, result.corrected)),
            randomised_beyond=1.0 / result.frequency,
            mask={**mask_info, "mean": float(mask_array.mean())},
            curves={
                "unmasked": [float(c) for c in result.unmasked.fsc],
                "masked": [float(c) for c in result.masked.fsc],
                "phase_randomised": [float(c) for c in result.randomised.fsc],
                "corrected": [float(c) for c in result.corrected.fsc],
            },
        )
    record["frequencies"] = [float(f) for f in curve.frequencies]
    record["fsc"] = [float(c) for c in curve.fsc]
    if plot is not None:
        from densitydiff.viz import plot_fsc

        plot_fsc(curves, plot)
    if as_json:
        print(json.dumps(record))
        return
    rows = [("", record)] if mask_array is None else [
        (f"{name:9s} ", record[name]) for name in ("unmasked", "masked", "corrected")
    ]  # fmt: skip
    for name, figures in rows:
        print(f"{name}resolution at FSC 0.5   {figures['fsc_0.5']:.2f} Å")
        print(f"{name}resolution at FSC 0.143 {figures['fsc_0.143']:.2f} Å")
        print(f"{name}FSC-AUC                 {figures['fsc_auc']:.3f}")
    if mask_array is not None:
        print(f"phases randomised beyond {record['randomised_beyond']:.2f} Å")


def compare(
    map_path: Path = typer.Argument(..., help="The map to assess."),
    reference: Path = typer.Argument(..., help="Reference map, or an atomic model (PDB/mmCIF)."),
    model: Path | None = typer.Option(
        None, "--model", help="Atomic model for CC_mask (the mask is atoms + --mask-radius)."
    ),
    resolution: float | None = typer.Option(
        None, "--resolution", "-r", help="Resolution (Å) at which to simulate a model reference."
    ),
    mask_radius: float = typer.Option(3.0, "--mask-radius", help="Mask radius around atoms (Å)."),
    resample: bool = typer.Option(False, "--resample", help="Interpolate REF onto MAP's grid."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """FSC figures, PSNR, SSIM, CC_box and CC_mask of a map against a reference map or model.

    Example: densitydiff compare emd_5168_monomer.mrc 3mfp.pdb.gz --resolution 6.6
    """
    from densitydiff import metrics
    from densitydiff.errors import InputError
    from densitydiff.formats.maps import read_volume
    from densitydiff.structures import is_structure_file

    structure = None
    if is_structure_file(reference):
        from densitydiff.simulate.density import simulate_map
        from densitydiff.structures import read_structure

        if resolution is None:
            raise InputError("comparing against an atomic model needs --resolution (Å)")
        target = read_volume(map_path)
        structure = read_structure(reference)
        ref = simulate_map(structure, resolution, target.voxel_size, like=target)
    else:
        target, ref = _pair_on_one_grid(map_path, reference, resample)
    if model is not None:
        from densitydiff.structures import read_structure

        structure = read_structure(model)
    mask = None
    if structure is not None:
        from densitydiff.simulate.density import atom_mask

        mask = atom_mask(structure, target, mask_radius)
    _require_signal(map_path, target.array, "compare")
    _require_signal(reference, ref.array, "compare")
    voxel = target.require_isotropic("compare")
    record = metrics.compare_maps(target.array, ref.array, voxel, mask=mask)
    if as_json:
        print(json.dumps(record))
        return
    for key in ("fsc_0.5", "fsc_0.143"):
        print(f"resolution at {key.replace('fsc_', 'FSC '):9s} {_fmt(record[key])} Å")
    for key in ("fsc_auc", "psnr", "ssim", "cc_box", "cc_mask"):
        print(f"{key:22s} {_fmt(record[key])}")


def register(app: typer.Typer) -> None:
    app.command("info")(info)
    app.command("fsc")(fsc)
    app.command("compare")(compare)
