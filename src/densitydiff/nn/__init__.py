"""Networks: residual MLP for latent priors, timestep/sigma embeddings (torch imported here)."""

from __future__ import annotations
