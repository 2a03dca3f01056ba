"""read_structure on real PDB/mmCIF files and corrupted copies (blank elements, CA as calcium)."""

from __future__ import annotations

import gzip

import gemmi
import pytest

from densitydiff import InputError
from densitydiff.structures import read_structure
from tests.conftest import EXAMPLES

# protein atoms per entry from the data set's manifest (waters removed, no ligands present)
PROTEIN_ATOMS = {"1orc.pdb.gz": 500, "1aki.cif.gz": 1001, "3mfp.pdb.gz": 2882}


@pytest.mark.parametrize("name", sorted(PROTEIN_ATOMS))
def test_reads_real_files(name):
    st = read_structure(EXAMPLES / name)
    assert len(st) == 1
    assert st[0].count_atom_sites() == PROTEIN_ATOMS[name]
    elements = {cra.atom.element.name for cra in st[0].all()}
    assert elements <= {"C", "N", "O", "S"} and {"C", "N", "O"} <= elements


def test_waters_kept_on_request():
    st = read_structure(EXAMPLES / "1orc.pdb.gz", remove_waters=False)
    assert st[0].count_atom_sites() == 559  # manifest n_atoms
    assert sum(res.is_water() for ch in st[0] for res in ch) > 0


def _pdb_text():
    return gzip.decompress((EXAMPLES / "1orc.pdb.gz").read_bytes()).decode()


def _atom_lines(text):
    return [ln for ln in text.splitlines() if ln.startswith(("ATOM  ", "HETATM"))]


def test_blank_element_columns_are_refused_then_fixed(tmp_path):
    text = _pdb_text()
    blanked = "\n".join(
        ln[:76] + "  " + ln[78:] if ln.startswith(("ATOM  ", "HETATM")) else ln
        for ln in text.splitlines()
    )
    path = tmp_path / "blank.pdb"
    path.write_text(blanked + "\n")
    with pytest.raises(InputError, match="empty element column.*fix_elements=True"):
        read_structure(path)
    fixed = read_structure(path, fix_elements=True)
    want = read_structure(EXAMPLES / "1orc.pdb.gz")
    got = [(c.atom.name, c.atom.element.name) for c in fixed[0].all()]
    assert got == [(c.atom.name, c.atom.element.name) for c in want[0].all()]


def test_alpha_carbon_as_calcium_is_refused_then_fixed(tmp_path):
    lines = []
    for ln in _pdb_text().splitlines():
        if ln.startswith("ATOM  ") and ln[12:16] == " CA ":
            ln = ln[:76] + "CA" + ln[78:]
        lines.append(ln)
    path = tmp_path / "ca.pdb"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="calcium.*fix_elements=True"):
        read_structure(path)
    fixed = read_structure(path, fix_elements=True)
    cas = [c.atom.element.name for c in fixed[0].all() if c.atom.name == "CA"]
    assert len(cas) == 64 and set(cas) == {"C"}


def test_unknown_element_in_mmcif_is_refused(tmp_path):
    doc = gemmi.cif.read(str(EXAMPLES / "1aki.cif.gz"))
    table = doc.sole_block().find("_atom_site.", ["type_symbol"])
    for row in table:
        row[0] = "?"
    path = tmp_path / "x.cif"
    doc.write_file(str(path))
    with pytest.raises(InputError, match="unknown element"):
        read_structure(path)
    fixed = read_structure(path, fix_elements=True)
    assert {c.atom.element.name for c in fixed[0].all()} == {"C", "N", "O", "S"}


def _record(serial, name, resname, resnum, xyz, element, het=False):
    x, y, z = xyz
    return (
        f"{'HETATM' if het else 'ATOM  '}{serial:5d} {name:<4s} {resname:>3s} A{resnum:4d}    "
        f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00 20.00          {element:>2s}"
    )


def test_model_one_hydrogens_and_ligands(tmp_path):
    model = [
        _record(1, "N", "GLY", 1, (0, 0, 0), "N"),
        _record(2, "CA", "GLY", 1, (1.4, 0, 0), "C"),
        _record(3, "HA2", "GLY", 1, (1.8, 1, 0), "H"),
        _record(4, "ZN", "ZN", 2, (5, 5, 5), "ZN", het=True),
        _record(5, "O", "HOH", 3, (8, 8, 8), "O", het=True),
    ]
    second = [_record(1, "N", "GLY", 1, (9, 9, 9), "N")]
    text = "MODEL        1\n" + "\n".join(model) + "\nENDMDL\nMODEL        2\n"
    text += "\n".join(second) + "\nENDMDL\nEND\n"
    path = tmp_path / "small.pdb"
    path.write_text(text)
    names = lambda st: [c.atom.name for c in st[0].all()]  # noqa: E731
    assert names(read_structure(path)) == ["N", "CA", "ZN"]
    assert names(read_structure(path, remove_ligands=True)) == ["N", "CA"]
    everything = read_structure(path, remove_waters=False, remove_hydrogens=False)
    assert names(everything) == ["N", "CA", "HA2", "ZN", "O"]
    assert len(everything) == 1
    ion = read_structure(path, remove_ligands=False)
    assert [c.atom.element.name for c in ion[0].all()][-1] == "Zn"


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="no such"):
        read_structure(tmp_path / "missing.pdb")
    garbage = tmp_path / "garbage.cif"
    garbage.write_text("data_x\nloop_\n_atom_site.id\n'unterminated\n")
    with pytest.raises(InputError):
        read_structure(garbage)
    binary = tmp_path / "binary.pdb.gz"
    binary.write_bytes(b"\x00\x01not gzip at all")
    with pytest.raises(InputError, match="readable|no atoms"):
        read_structure(binary)
    empty = tmp_path / "empty.pdb"
    empty.write_text("HEADER    NOTHING\nREMARK   1 no atoms here\nEND\n")
    with pytest.raises(InputError, match="no atoms"):
        read_structure(empty)
    only_water = tmp_path / "water.pdb"
    only_water.write_text(_record(1, "O", "HOH", 1, (0, 0, 0), "O", het=True) + "\nEND\n")
    with pytest.raises(InputError, match="no atoms left"):
        read_structure(only_water)
