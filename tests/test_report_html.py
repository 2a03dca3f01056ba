"""report.html as a reader's browser meets it: well-formed HTML, every image a real PNG that is
also in the folder, a settings table with the command and versions from the run record, and
the std map in the montage when samples were drawn."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from tests.conftest import EXAMPLES, run_cli

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr"}


class _Checker(HTMLParser):
    """Tag balance (void elements excepted), the <img> attributes, the settings table's cells."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[dict] = []
        self.settings: dict[str, str] = {}
        self._in_settings = False
        self._cell: list[str] | None = None
        self._row: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        if tag == "table" and a.get("id") == "settings":
            self._in_settings = True
        if self._in_settings and tag in ("th", "td"):
            self._cell = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if self._in_settings and tag in ("th", "td") and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        if self._in_settings and tag == "tr":
            if len(self._row) == 2:
                self.settings.setdefault(self._row[0], self._row[1])
            self._row = []
        if tag == "table":
            self._in_settings = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def check_report(page: Path) -> _Checker:
    """Parse report.html; assert well-formed, every <img> a PNG equal to its file beside it."""
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    c = _Checker()
    c.feed(text)
    c.close()
    assert not c.errors and not c.stack, (c.errors, c.stack)
    assert c.images, "no figures"
    for img in c.images:
        assert img.get("alt"), img.keys()
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        file = page.parent / img["data-file"]
        assert file.is_file() and file.read_bytes() == data, file
    return c


def test_evaluate_report_is_valid_html_with_settings_from_the_run_record(tmp_path):
    report = tmp_path / "rep"
    code, _, err = run_cli("evaluate", EXAMPLES / "1orc.pdb.gz", "--no-models", "--report", report)
    assert code == 0, err
    c = check_report(report / "report.html")
    assert {i["data-file"] for i in c.images} == {"fsc_1orc.png", "slices_1orc.png"}
    record = json.loads((report / "run.json").read_text())
    s = c.settings
    assert s["command"] == record["command"]["shell"] and s["command"].startswith("densitydiff ")
    assert "evaluate" in s["command"] and "--no-models" in s["command"]
    assert s["input resolution (Å)"] == "4.0" and s["seed"] == "0"
    assert f"torch {record['versions']['torch']}" in s["versions"]
    assert f"densitydiff {record['versions']['densitydiff']}" in s["versions"]
    assert record["inputs"][0]["sha256"][:16] in s["input"]


def test_the_std_map_of_drawn_samples_is_a_row_of_the_montage(tmp_path):
    from densitydiff.maps import DensityMap
    from densitydiff.sharpen.evaluate import StructureEvaluation
    from densitydiff.sharpen.report import structure_figures, write_report

    rng = np.random.default_rng(0)
    truth = rng.normal(size=(16, 16, 16)).astype(np.float32)
    ev = StructureEvaluation("toy", [], volumes={"truth": truth, "ddpm": truth + 0.1,
                                                  "ddpm std": np.abs(truth) * 0.1})  # fmt: skip
    ev.maps["truth"] = DensityMap(truth, 1.5)
    figures = structure_figures(ev, tmp_path)
    from PIL import Image

    with Image.open(figures["slices"]) as im:
        assert im.size[1] == 3 * 390  # three rows: truth, ddpm, ddpm std
    page = write_report([], tmp_path, figures={"toy": figures}, settings={"samples": 4})
    c = check_report(page)
    assert c.settings == {"samples": "4"}
    assert "std" in page.read_text() and len(c.images) == 2
