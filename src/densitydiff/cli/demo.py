"""`densitydiff demo`: the main job on packaged data (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    out_dir: Path = typer.Option(Path("demo_out"), "-o", "--out-dir", help="Output folder."),
) -> None:
    """Simulate a packaged structure at 4 Å and 2 Å, print their FSC, write maps and a plot.

    Example: densitydiff demo -o demo_out
    """
    from densitydiff.demo import run_demo

    record = run_demo(out_dir)
    print(f"structure {record['structure']}: 4 Å map against the 2 Å map")
    print(f"resolution at FSC 0.5   {record['fsc_0.5']:.2f} Å")
    print(f"resolution at FSC 0.143 {record['fsc_0.143']:.2f} Å")
    print(f"FSC-AUC                 {record['fsc_auc']:.3f}")
    print(f"maps, fsc.png and demo.json written to {out_dir}/")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
