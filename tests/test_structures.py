"""read_structure on real PDB/mmCIF files and corrupted copies (blank elements, CA as calcium)."""

from __future__ import annotations

import gzip
import json

import gemmi
import numpy as np
import pytest

from densitydiff import InputError
from densitydiff.elements import infer_element
from densitydiff.structures import inferred_elements, read_structure
from tests.conftest import EXAMPLES, TESTDATA

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


def _blanked(path, out):
    """A copy of a real PDB file with every element column (77-78) emptied."""
    text = gzip.decompress(path.read_bytes()).decode()
    out.write_text(
        "\n".join(
            ln[:76].ljust(76) + "  " + ln[78:] if ln.startswith(("ATOM  ", "HETATM")) else ln
            for ln in text.splitlines()
        )
        + "\n"
    )
    return out


def _elements(st):
    return [(c.residue.name, c.atom.name, c.atom.element.name) for c in st[0].all()]


@pytest.mark.parametrize("source", [EXAMPLES / "1orc.pdb.gz", TESTDATA / "1hvr.pdb.gz"])
def test_blank_element_columns_are_inferred_as_the_original_ones(tmp_path, capsys, source):
    """1hvr has a modified residue (CSO), a ligand (XK2), hydrogens and waters."""
    path = _blanked(source, tmp_path / "blank.pdb")
    keep = {"remove_waters": False, "remove_hydrogens": False}
    got = read_structure(path, **keep)
    want = read_structure(source, **keep, quiet=True)
    assert _elements(got) == _elements(want)
    n_records = sum(ln.startswith(("ATOM  ", "HETATM")) for ln in path.read_text().splitlines())
    assert inferred_elements(got) == n_records
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"inferred {n_records} element symbols" in err
    assert inferred_elements(want) == 0
    with pytest.raises(InputError, match="strict-elements"):
        read_structure(path, strict_elements=True)


def test_element_rules_use_the_residue():
    assert infer_element("GLY", "CA") == "C"  # alpha carbon
    assert infer_element("CA", "CA") == "Ca"  # calcium ion, residue named like the atom
    assert infer_element("LIG", "CA", column13="C") is None  # bare CA elsewhere: ambiguous
    assert infer_element("LIG", "CA", column13=None) is None  # mmCIF: no columns to read
    assert infer_element("HEM", "NA", column13=" ") == "N"  # right-aligned: nitrogen
    assert infer_element("HEM", "FE", column13="F") == "Fe"
    assert infer_element("MSE", "SE") == "Se"
    assert infer_element("LYS", "1HZ") == "H"
    assert infer_element("XK2", "C31") == "C"
    assert infer_element("XK2", "HG12", column13="H") == "H"


def test_ambiguous_calcium_is_refused_with_the_atom_named(tmp_path):
    lines = [
        _record(1, "N", "GLY", 1, (0, 0, 0), ""),
        _record(2, "CA", "GLY", 1, (1.4, 0, 0), ""),
        _record(3, "CA", "CA", 2, (5, 5, 5), "", het=True),
    ]
    ok = tmp_path / "ok.pdb"
    ok.write_text("\n".join(lines) + "\nEND\n")
    st = read_structure(ok, quiet=True)
    assert [c.atom.element.name for c in st[0].all()] == ["N", "C", "Ca"]
    bare = tmp_path / "bare.pdb"
    bare.write_text(
        "\n".join([*lines, _record(4, "CA", "UNL", 3, (9, 9, 9), "", het=True)]) + "\nEND\n"
    )
    with pytest.raises(InputError, match="UNL3/CA"):
        read_structure(bare)


def test_fix_elements_still_accepted(tmp_path):
    path = _blanked(EXAMPLES / "1orc.pdb.gz", tmp_path / "blank.pdb")
    fixed = read_structure(path, fix_elements=True)
    assert _elements(fixed) == _elements(read_structure(EXAMPLES / "1orc.pdb.gz"))


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


def test_unknown_elements_in_mmcif_are_inferred(tmp_path):
    doc = gemmi.cif.read(str(EXAMPLES / "1aki.cif.gz"))
    table = doc.sole_block().find("_atom_site.", ["type_symbol"])
    for row in table:
        row[0] = "?"
    path = tmp_path / "x.cif"
    doc.write_file(str(path))
    want = read_structure(EXAMPLES / "1aki.cif.gz")
    assert _elements(read_structure(path, quiet=True)) == _elements(want)
    with pytest.raises(InputError, match="strict-elements"):
        read_structure(path, strict_elements=True)
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


def _md_style(path, out):
    """A copy with blank element columns and names left-aligned from column 13, as MD tools
    write them (so "CA  " reads as calcium by the PDB column rule)."""
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    lines = []
    for ln in text.splitlines():
        if ln.startswith(("ATOM  ", "HETATM")):
            ln = ln.ljust(80)
            ln = ln[:12] + f"{ln[12:16].strip():<4s}" + ln[16:76] + "  " + ln[78:]
        lines.append(ln)
    out.write_text("\n".join(lines) + "\n")
    return out


def test_simulate_map_infers_elements_by_default_and_strict_refuses(cli, tmp_path):
    path = _md_style(EXAMPLES / "1orc.pdb.gz", tmp_path / "md.pdb")
    code, _, err = cli("simulate", "map", path, "-o", tmp_path / "a.mrc", "-r", "6")
    assert code == 0, err
    assert err.count("\n") == 1 and "inferred 559 element symbols" in err
    record = json.loads((tmp_path / "a.json").read_text())
    assert record["config"]["elements_inferred"] == 559  # the run record keeps the count
    code, _, err = cli("simulate", "map", path, "-o", tmp_path / "b.mrc", "-r", "6",
                       "--strict-elements")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "--strict-elements" in err
    assert not (tmp_path / "b.mrc").exists()
    code, _, err = cli("simulate", "map", path, "-o", tmp_path / "c.mrc", "-r", "6",
                       "--fix-elements")  # fmt: skip
    assert code == 0, err
    from densitydiff import read_map

    np.testing.assert_array_equal(read_map(tmp_path / "a.mrc").array,
                                  read_map(tmp_path / "c.mrc").array)  # fmt: skip


def test_trajectory_frames_get_the_inferred_elements(tmp_path):
    from densitydiff.simulate.hetero import trajectory_source

    st = gemmi.read_structure(str(EXAMPLES / "1orc.pdb.gz"))
    st.remove_waters()
    st.add_model(st[0].clone())
    st[1].num = 2
    st.setup_entities()
    st.write_pdb(str(tmp_path / "traj.pdb"))
    path = _md_style(tmp_path / "traj.pdb", tmp_path / "md_traj.pdb")
    assert gemmi.read_structure(str(path))[1][0][0]["CA"][0].element.name == "Ca"  # the trap
    source = trajectory_source(path)
    want = [c.atom.element.name for c in st[0].all()]
    for frame in source.structures:
        frame = frame() if callable(frame) else frame
        assert [c.atom.element.name for c in frame[0].all()] == want
    with pytest.raises(InputError, match="strict-elements"):
        trajectory_source(path, strict_elements=True)


def test_simulate_particles_accepts_the_element_options(cli, tmp_path):
    path = _md_style(EXAMPLES / "1orc.pdb.gz", tmp_path / "md.pdb")
    args = ["--structures", path, path, "--n-images", "2", "--box", "16", "--pixel-size", "4"]
    code, _, err = cli("simulate", "particles", "-o", tmp_path / "s", *args, "--strict-elements")
    assert code == 2 and "--strict-elements" in err
    assert not (tmp_path / "s" / "particles.mrcs").exists()
    code, _, err = cli("simulate", "particles", "-o", tmp_path / "f", *args, "--fix-elements")
    assert code == 0, err
