"""Simulation: atomic model -> density map (density); cryo-EM images (cryoem) from the shared
pieces fft (centred transforms), ctf (the CTF) and lattice (central slices); synthetic sets."""

from densitydiff.simulate.density import atom_mask, simulate_map

__all__ = ["atom_mask", "simulate_map"]
