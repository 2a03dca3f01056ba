"""Map sharpening: three models over one 3-D U-Net (regression, conditional VAE, SR3 DDPM),
their configs, Lightning training and monitoring. Heavy imports stay in the submodules."""
