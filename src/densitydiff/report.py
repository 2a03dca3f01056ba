"""Self-contained HTML pages: PNGs embedded as base64 data: URIs, a settings table from a run
record, one style sheet (shared by the sharpen evaluation report and `hetero analyze`)."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path


def embed_png(path: str | os.PathLike, alt: str) -> str:
    """An <img> holding the PNG as a data: URI (a page that travels alone), naming its file."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    name = html.escape(Path(path).name)
    return f'<img alt="{html.escape(alt)}" data-file="{name}" src="data:image/png;base64,{data}">'


STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1400px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; } td:first-child, td:nth-child(2) { text-align: left; }
table.settings td { text-align: left; font-family: monospace; }
table.settings th { text-align: left; }
img { display: block; max-width: 100%; margin: 0.5em 0; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #444; }
"""


def settings_rows(settings: dict | None, record: dict | None) -> list[tuple[str, str]]:
    """(name, value) rows of the settings table: the run's settings, then from the run record
    the command, date, wall time, seed, inputs (name, bytes, sha256) and package versions."""
    rows = [(str(k), str(v)) for k, v in (settings or {}).items()]
    if not record:
        return rows
    cmd = record.get("command") or {}
    if cmd.get("shell"):
        rows.append(("command", cmd["shell"]))
    for key, name in (("date", "date"), ("wall_seconds", "wall time (s)"), ("seed", "seed")):
        if record.get(key) is not None and name not in dict(rows):
            rows.append((name, str(record[key])))
    for entry in record.get("inputs") or []:
        sha = entry.get("sha256")
        size = entry.get("bytes")
        text = entry["path"] + (f" ({size} bytes, sha256 {sha[:16]}…)" if sha else "")
        rows.append(("input", text))
    versions = record.get("versions") or {}
    if versions:
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    return rows


def settings_table(rows: Sequence[tuple[str, str]]) -> str:
    """The (name, value) rows as an HTML table (id "settings")."""
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
    )
    return f'<table class="settings" id="settings"><tbody>{body}</tbody></table>'
