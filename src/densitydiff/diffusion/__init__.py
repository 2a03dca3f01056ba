"""Diffusion maths on plain tensors: EDM preconditioning, loss and samplers (no I/O, no maps)."""

from __future__ import annotations
