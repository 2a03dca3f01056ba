"""Networks: 3-D U-Net, 3-D VAE, residual MLP, timestep/sigma embeddings."""
