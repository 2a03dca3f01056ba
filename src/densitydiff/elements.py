"""Element symbols inferred from atom names where a model's element columns are blank.

Older PDB entries and MD outputs leave the element field (columns 77-78) empty. Readers then
guess from the atom name, and a guess that ignores the residue makes the alpha carbon "CA" a
calcium. The rules here use the residue, as structural-biology tools do:

- in amino acids, nucleotides and water the element is the name's first letter ("CA", "1HB",
  "OP1"), except the whole names SE, BR, CL (selenomethionine, halogenated bases);
- a residue named like its only atom is an ion ("CA" in residue CA is calcium, ZN in ZN);
- in any other residue a name whose first letter is not organic (FE, ZN, MG) is that two-letter
  element; a name that reads as an organic element or as a two-letter one (CA, CL, NA, HG) is
  resolved by the PDB column rule (one-letter elements are right-aligned: " NA " is nitrogen),
  and refused as ambiguous where that rule cannot be read (mmCIF, names starting in column 13).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import gemmi

# first letters of atom names that are usually organic labels, not two-letter elements
_ORGANIC = set("CNOSPH")
_POLYMER_TWO_LETTER = {"SE": "Se", "BR": "Br", "CL": "Cl"}

AtomKey = tuple[str, int, str, str, str, str]  # chain, seq number, icode, residue, name, altloc


@dataclass
class Inference:
    """What inference did: atoms set, atoms it could not decide (descriptions), blanks seen."""

    inferred: int = 0
    ambiguous: list[str] = field(default_factory=list)
    blank: int = 0


def _is_element(symbol: str) -> bool:
    return len(symbol) in (1, 2) and symbol.isalpha() and gemmi.Element(symbol).atomic_number > 0


def _first_letter(name: str) -> str:
    for ch in name:
        if ch.isalpha():
            return ch.upper()
    return ""


def _is_polymer_or_water(resname: str) -> bool:
    info = gemmi.find_tabulated_residue(resname)
    return info is not None and (info.is_amino_acid() or info.is_nucleic_acid() or info.is_water())


def infer_element(resname: str, name: str, column13: str | None = None) -> str | None:
    """Element symbol (as gemmi spells it: "C", "Ca") of atom `name` in residue `resname`, or
    None when it is ambiguous; see the module docstring for the rules.

    `column13` is the PDB record's column 13 (the first of the four name columns), or None when
    the file gives no alignment (mmCIF).
    """
    symbol = _infer(resname, name, column13)
    return None if symbol is None else gemmi.Element(symbol).name


def _infer(resname: str, name: str, column13: str | None) -> str | None:
    name = name.strip().upper()
    resname = resname.strip().upper()
    first = _first_letter(name)
    if not first:
        return None
    if _is_polymer_or_water(resname):
        return _POLYMER_TWO_LETTER.get(name, first)
    if name == resname and _is_element(name):
        return name  # an ion: CA in residue CA, ZN in ZN
    letters = name.lstrip("0123456789")
    two = letters[:2]
    if len(two) < 2 or not two.isalpha() or not _is_element(two):
        return first if _is_element(first) else None
    if not _is_element(first):
        return two  # FE, ZN, MG, ...: no one-letter reading
    if first not in _ORGANIC:
        return two  # BR, FE: the first letter is no organic label, the name is the element
    if column13 is not None and (column13 == " " or column13.isdigit()):
        return first  # right-aligned name: a one-letter element (" NA " in heme is nitrogen)
    if first == "H" and len(letters) >= 3:
        return "H"  # HG12, HD21, HB2: hydrogens; mercury would be named HG in residue HG
    return None


def _open(path: Path):
    return (
        gzip.open(path, "rt", errors="replace")
        if path.suffix.lower() == ".gz"
        else open(path, errors="replace")
    )


def pdb_blank_elements(path: Path) -> dict[AtomKey, str]:
    """ATOM/HETATM records of model 1 whose element field (columns 77-78) is empty.

    Maps the atom's key to the record's column 13 (which tells one-letter elements, right-
    aligned, from two-letter ones).
    """
    blank: dict[AtomKey, str] = {}
    with _open(path) as handle:
        for line in handle:
            if line.startswith(("ATOM  ", "HETATM")):
                if line[76:78].strip():
                    continue
                line = line.rstrip("\n").ljust(80)
                try:
                    seq = int(line[22:26])
                except ValueError:
                    seq = 0  # hybrid-36 or garbage: gemmi's own reading decides below
                key = (
                    line[21].strip(),
                    seq,
                    line[26].strip(),
                    line[17:20].strip(),
                    line[12:16].strip(),
                    line[16].strip(),
                )
                blank[key] = line[12]
            elif line.startswith("ENDMDL"):
                break
    return blank


def atom_key(chain: gemmi.Chain, res: gemmi.Residue, atom: gemmi.Atom) -> AtomKey:
    icode = res.seqid.icode.strip()
    altloc = atom.altloc if atom.altloc != "\0" else ""
    return (chain.name, res.seqid.num, icode, res.name.strip(), atom.name.strip(), altloc.strip())


def infer_elements(models, blank: dict[AtomKey, str] | None) -> Inference:
    """Set the element of every blank atom in `models` (gemmi models); report what was done.

    `blank` lists the PDB records with empty element columns (from `pdb_blank_elements`); None
    means no PDB columns to read (mmCIF): then atoms whose element gemmi left unknown are blank.
    Atoms it cannot decide are left unchanged and listed in `Inference.ambiguous` (model 1).
    """
    result = Inference()
    for index, model in enumerate(models):
        for chain in model:
            for res in chain:
                for atom in res:
                    key = atom_key(chain, res, atom)
                    if blank is not None:
                        if key not in blank:
                            continue
                        column13 = blank[key]
                    elif atom.element.name in ("X", ""):
                        column13 = None
                    else:
                        continue
                    symbol = infer_element(res.name, atom.name, column13)
                    if index == 0:
                        result.blank += 1
                    if symbol is None:
                        if index == 0:
                            result.ambiguous.append(
                                f"{chain.name}/{res.name}{res.seqid.num}/{atom.name}"
                            )
                        continue
                    atom.element = gemmi.Element(symbol)
                    if index == 0:
                        result.inferred += 1
    return result
