"""Read atomic models (PDB/mmCIF, optionally gzipped) through gemmi, checking element columns.

Force-field tools often write PDB files with no element column, so readers guess the element
from the atom name and an alpha carbon "CA" becomes calcium. `read_structure` infers blank
elements from the atom names with the residue as context (`densitydiff.elements`), says how
many on stderr, refuses what stays ambiguous, and refuses element columns that contradict the
atom names in standard residues (a density simulated from them would be silently wrong).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import gemmi
import numpy as np

from densitydiff.elements import infer_elements, pdb_blank_elements
from densitydiff.errors import InputError

INFERRED_KEY = "densitydiff.elements_inferred"  # Structure.info key: how many were inferred

# Elements that occur in the standard amino acids and nucleotides.
_POLYMER_ELEMENTS = {"C", "N", "O", "S", "P", "H", "D"}

PDB_SUFFIXES = (".pdb", ".ent")
CIF_SUFFIXES = (".cif", ".mmcif")
STRUCTURE_SUFFIXES = (*PDB_SUFFIXES, *CIF_SUFFIXES)  # each also with .gz


def is_structure_file(path: str | os.PathLike) -> bool:
    """True when the name ends in a PDB/mmCIF suffix, optionally followed by .gz."""
    return Path(path).name.lower().removesuffix(".gz").endswith(STRUCTURE_SUFFIXES)


def structure_id(path: str | os.PathLike) -> str:
    """File name without .gz and its structure suffix: 1orc.pdb.gz -> 1orc (else the stem)."""
    name = Path(path).name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    for suffix in STRUCTURE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def centroid(model: gemmi.Model) -> np.ndarray:
    """Mean position of the model's atoms, (z, y, x) Å."""
    pos = np.array([[a.pos.z, a.pos.y, a.pos.x] for cra in model.all() for a in [cra.atom]])
    if len(pos) == 0:
        raise InputError("the structure has no atoms")
    return pos.mean(axis=0)


def _is_pdb_text(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith((*PDB_SUFFIXES, ".pdb1")) or not name.endswith(CIF_SUFFIXES)


def _name_element(atom_name: str) -> str:
    """The element an atom name in a standard residue implies: its first letter ("1HB" -> H)."""
    for ch in atom_name.strip():
        if ch.isalpha():
            return ch.upper()
    return ""


def _element_problems(model: gemmi.Model) -> list[str]:
    """Descriptions of atoms whose element is unknown or contradicts the atom name."""
    unknown, calcium, mismatch = [], [], []
    for chain in model:
        for res in chain:
            info = gemmi.find_tabulated_residue(res.name)
            standard = info is not None and info.is_standard() and not info.is_water()
            for atom in res:
                el = atom.element.name
                where = f"{chain.name}/{res.name}{res.seqid.num}/{atom.name}"
                if el in ("X", ""):
                    unknown.append(where)
                elif standard and el not in _POLYMER_ELEMENTS:
                    if atom.name.strip() == "CA" and el == "Ca":
                        calcium.append(where)
                    else:
                        mismatch.append(f"{where} ({el})")
                elif standard and el != _name_element(atom.name) and el != "D":
                    mismatch.append(f"{where} ({el})")
    problems = []
    if calcium:
        problems.append(
            f"{len(calcium)} alpha carbons named CA in amino-acid residues are calcium (e.g. "
            f"{calcium[0]}): the element column is wrong or missing (force-field files do this)"
        )
    if unknown:
        problems.append(f"{len(unknown)} atoms have an unknown element (e.g. {unknown[0]})")
    if mismatch:
        problems.append(
            f"{len(mismatch)} atoms in standard residues have an element that contradicts their "
            f"name (e.g. {mismatch[0]})"
        )
    return problems


def _fix_elements(model: gemmi.Model) -> None:
    """Set elements from atom names: first letter in standard residues, gemmi's guess elsewhere."""
    for chain in model:
        for res in chain:
            info = gemmi.find_tabulated_residue(res.name)
            standard = info is not None and info.is_standard()
            for atom in res:
                name = atom.name.strip()
                if standard:
                    atom.element = gemmi.Element(_name_element(name) or "X")
                    continue
                if atom.element.name not in ("X", ""):
                    continue
                # ions are residues named like their only atom ("CA", "ZN"); else the first letter
                if name.upper() == res.name.strip().upper() and gemmi.Element(name).atomic_number:
                    atom.element = gemmi.Element(name)
                else:
                    atom.element = gemmi.Element(_name_element(name) or "X")


def _is_ligand(res: gemmi.Residue) -> bool:
    """Not water, and a non-polymer entity or not an amino acid/nucleotide (ions, sugars, ...)."""
    if res.is_water():
        return False
    if res.entity_type in (gemmi.EntityType.NonPolymer, gemmi.EntityType.Branched):
        return True
    info = gemmi.find_tabulated_residue(res.name)
    return info is None or not (info.is_amino_acid() or info.is_nucleic_acid())


def _remove_ligands(st: gemmi.Structure) -> None:
    """Delete ligands, ions and sugars (also when a missing TER merged them into a chain)."""
    for chain in st[0]:
        for i in range(len(chain) - 1, -1, -1):
            if _is_ligand(chain[i]):
                del chain[i]


def inferred_elements(st: gemmi.Structure) -> int:
    """How many element symbols `read_structure` inferred from atom names (for run records)."""
    return int(st.info[INFERRED_KEY]) if INFERRED_KEY in st.info else 0


def resolve_elements(
    st: gemmi.Structure, path: Path, *, strict: bool = False, quiet: bool = False
) -> int:
    """Infer blank element columns of every model of `st` (read from `path`); return the count.

    Refuses (InputError) atoms whose element stays ambiguous, or with `strict` any blank. Says
    how many were inferred in one line on stderr unless `quiet`.
    """
    blank = pdb_blank_elements(path) if _is_pdb_text(path) else None
    if strict:
        n_blank = len(blank) if blank is not None else sum(
            a.element.name in ("X", "") for ch in st[0] for r in ch for a in r
        )
        if n_blank:
            raise InputError(
                f"{path}: {n_blank} atoms have no element symbol (empty element column) and "
                "--strict-elements refuses to infer them; fill the element columns"
            )
        return 0
    result = infer_elements(st, blank)
    if result.ambiguous:
        raise InputError(
            f"{path}: cannot tell the element of {len(result.ambiguous)} atoms from their names "
            f"(e.g. {result.ambiguous[0]}: calcium or an alpha carbon?); fill their element "
            "columns (77-78)"
        )
    if result.inferred and not quiet:
        print(
            f"densitydiff: {path.name}: inferred {result.inferred} element symbols from atom "
            "names (empty element columns)",
            file=sys.stderr,
        )
    st.info[INFERRED_KEY] = str(result.inferred)
    return result.inferred


def read_structure(
    path: str | os.PathLike,
    *,
    remove_waters: bool = True,
    remove_hydrogens: bool = True,
    remove_ligands: bool = False,
    fix_elements: bool = False,
    strict_elements: bool = False,
    quiet: bool = False,
    all_models: bool = False,
) -> gemmi.Structure:
    """Read model 1 of a PDB/mmCIF file (.gz too), inferring blank element columns.

    Blank elements are inferred from atom names and residues (`resolve_elements`; the count is
    `inferred_elements(st)`); `strict_elements=True` refuses any blank instead.
    `fix_elements=True` also overrides element columns that contradict the atom names in
    standard residues (force-field files that wrote "Ca" for alpha carbons) instead of refusing.
    `all_models=True` keeps every model (a trajectory) and checks each. Raises InputError for a
    missing or unreadable file, no atoms, or bad elements.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such structure file: {path}")
    try:
        st = gemmi.read_structure(str(path))
    except (RuntimeError, ValueError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable PDB/mmCIF file ({exc})") from None
    if len(st) == 0 or st[0].count_atom_sites() == 0:
        raise InputError(f"{path}: the file holds no atoms")
    while len(st) > 1 and not all_models:
        del st[1]
    _check_elements(st, path, fix_elements, strict_elements, quiet)
    st.setup_entities()
    if remove_hydrogens:
        st.remove_hydrogens()
    if remove_ligands:
        _remove_ligands(st)
    if remove_waters:
        st.remove_waters()
    st.remove_empty_chains()
    if any(model.count_atom_sites() == 0 for model in st):
        raise InputError(f"{path}: no atoms left after removing waters/hydrogens/ligands")
    return st


def _check_elements(
    st: gemmi.Structure, path: Path, fix_elements: bool, strict: bool, quiet: bool
) -> None:
    """Infer blank element columns in every model (`resolve_elements`), then refuse elements
    that contradict the atom names, or repair those too (`fix_elements`)."""
    if fix_elements and not strict:  # the old repair: guesses where ambiguous too
        inferred = infer_elements(st, pdb_blank_elements(path) if _is_pdb_text(path) else None)
        for model in st:
            _fix_elements(model)
        st.info[INFERRED_KEY] = str(inferred.inferred)
        return
    resolve_elements(st, path, strict=strict, quiet=quiet)
    problems = next((p for p in map(_element_problems, st) if p), [])
    if problems:
        raise InputError(
            f"{path}: bad element symbols: {'; '.join(problems)}. Pass fix_elements=True "
            "(CLI: --fix-elements) to set elements from the atom names"
        )
