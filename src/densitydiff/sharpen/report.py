"""Evaluation report: results.csv, results.json, FSC and slice PNGs, one self-contained HTML page.

The HTML page embeds every PNG as base64 (data: URIs) so it can be mailed or archived alone;
each <img> names the PNG beside it that it holds (`data-file`). A settings table gives the
command, date, seed, inputs and versions from the run record (densitydiff.runrecord), so a
page says how it was made.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

from densitydiff.outputs import atomic_path
from densitydiff.report import STYLE as _STYLE
from densitydiff.report import embed_png as _img
from densitydiff.report import settings_rows
from densitydiff.report import settings_table as _settings_table


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "structure"


def jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def results_json(rows: Sequence[dict], summary: dict) -> dict:
    """{"rows": [...], "summary": {method: means}} with inf written as "inf" (strict JSON)."""
    clean_rows = [{k: jsonable(v) for k, v in r.items()} for r in rows]
    clean_sum = {m: {k: jsonable(v) for k, v in s.items()} for m, s in summary.items()}
    return {"rows": clean_rows, "summary": clean_sum}


def write_csv(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """One line per row, columns in the rows' key order; None as an empty cell."""
    from densitydiff.sharpen.evaluate import ROW_KEYS

    keys = list(ROW_KEYS) + [k for r in rows for k in r if k not in ROW_KEYS]
    keys = list(dict.fromkeys(keys))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in keys})
    with atomic_path(path) as tmp:
        Path(tmp).write_text(buf.getvalue())
    return Path(path)


def structure_figures(ev, out_dir: str | os.PathLike) -> dict[str, Path]:
    """fsc_<structure>.png (each method against the truth) and slices_<structure>.png."""
    from densitydiff.viz import plot_fsc, plot_slices

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    slug = _slug(ev.structure)
    fsc_png = plot_fsc(ev.curves, out / f"fsc_{slug}.png")
    volumes = {"truth": ev.volumes["truth"]}
    volumes.update({k: v for k, v in ev.volumes.items() if k != "truth"})
    truth = ev.maps.get("truth")
    voxel = float(truth.voxel_size[0]) if truth is not None else None
    slices_png = plot_slices(volumes, out / f"slices_{slug}.png", voxel_size=voxel)
    return {"fsc": fsc_png, "slices": slices_png}


def _fmt(v, key: str) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return html.escape(v)
    if key in ("fsc_auc", "ssim", "cc_box", "cc_mask"):
        return f"{v:.3f}"
    if key == "n":
        return str(v)
    return f"{v:.2f}"


def _table(records: Sequence[dict], keys: Sequence[str], heads: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(k), k)}</td>" for k in keys) + "</tr>" for r in records
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(
    rows: Sequence[dict],
    out_dir: str | os.PathLike,
    evaluations: Sequence = (),
    *,
    figures: dict[str, dict[str, Path]] | None = None,
    title: str = "densitydiff evaluate",
    settings: dict | None = None,
    record: dict | None = None,
) -> Path:
    """Write results.csv, results.json, the figures of `evaluations` and report.html; return it.

    `figures` (structure -> {"fsc": png, "slices": png}) adds figures drawn earlier
    (structure_figures), so callers need not keep every volume in memory. `record` (a run
    record) adds the command, date, inputs and versions to the settings table.
    """
    from densitydiff.sharpen.evaluate import METRICS, summarise

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = dict(figures or {})
    for ev in evaluations:
        figs[ev.structure] = structure_figures(ev, out)
    summary = summarise(rows)
    write_csv(rows, out / "results.csv")
    with atomic_path(out / "results.json") as tmp:
        Path(tmp).write_text(json.dumps(results_json(rows, summary), indent=2))

    heads = [
        "structure",
        "method",
        "FSC 0.5 (Å)",
        "FSC 0.143 (Å)",
        "FSC-AUC",
        "PSNR (dB)",
        "SSIM",
        "CC box",
        "CC mask",
        "seconds",
    ]
    keys = ["structure", "method", *METRICS, "seconds"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts.append("<h2>Settings</h2>" + _settings_table(settings_rows(settings, record)))
    parts.append(
        "<p>Every map is compared with the truth simulated at the target resolution. "
        "FSC 0.5 / 0.143: resolution where the FSC against the truth falls below the threshold "
        "(smaller is better); FSC-AUC: mean FSC up to Nyquist; CC mask: inside 3 Å of an atom. "
        "The B-factor baseline uses the B that maximises CC box with the truth, which flatters "
        "it.</p>"
    )
    mean_rows = [{"structure": f"mean ({s['n']})", "method": m, **s} for m, s in summary.items()]
    parts.append("<h2>Mean over structures</h2>" + _table(mean_rows, keys, heads))
    parts.append("<h2>Per structure</h2>" + _table(rows, keys, heads))
    for name, f in figs.items():
        parts.append(f"<h2>{html.escape(name)}</h2>")
        captions = {
            "fsc": "FSC of each map against the truth (0.5 and 0.143 marked).",
            "slices": "Central slices of each map (one grey scale per row; a row ending in "
            "'std' is the per-voxel standard deviation over the samples drawn).",
        }
        for key, alt in (("fsc", f"FSC curves, {name}"), ("slices", f"central slices, {name}")):
            if key in f:
                parts.append(f"<figure>{_img(f[key], alt)}"
                             f"<figcaption>{captions[key]}</figcaption></figure>")  # fmt: skip
    parts.append("</body></html>")
    page = out / "report.html"
    with atomic_path(page) as tmp:
        Path(tmp).write_text("\n".join(parts), encoding="utf-8")
    return page
