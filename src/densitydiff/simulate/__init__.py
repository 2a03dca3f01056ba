"""Simulation: atomic model -> density map (density.py); cryo-EM images and synthetic sets."""

from densitydiff.simulate.density import atom_mask, simulate_map

__all__ = ["atom_mask", "simulate_map"]
