"""Noise schedules, losses and samplers on any tensor: DDPM (discrete) and EDM (continuous sigma)."""
