"""Noise schedules, losses, samplers on any tensor: DDPM (discrete t) and EDM (continuous sigma)."""
