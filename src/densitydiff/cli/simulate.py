"""`densitydiff simulate ...` (minimal group for the cryoem branch; the lead reconciles it)."""

from __future__ import annotations

import typer

from densitydiff.cli import particles as _particles

simulate_app = typer.Typer(
    help="Simulate data from atomic models.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_particles.register(simulate_app)


def register(app: typer.Typer) -> None:
    app.add_typer(simulate_app, name="simulate")
