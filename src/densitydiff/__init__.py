"""densitydiff: deep generative models of 3-D electron density.

Sharpening / super-resolution of cryo-EM and X-ray maps with conditional diffusion, and
diffusion priors over the latent space of cryo-EM heterogeneity models. Heavy dependencies
(torch, lightning, diffusers) are imported inside the functions that need them.
"""

__version__ = "0.1.0"

from densitydiff.errors import InputError
from densitydiff.formats.maps import read_map, write_map
from densitydiff.maps import DensityMap

__all__ = ["DensityMap", "InputError", "__version__", "read_map", "write_map"]
