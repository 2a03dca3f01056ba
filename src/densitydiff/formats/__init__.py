"""Files in and out: maps (dispatch by extension), MRC/CCP4, MTZ, particle stacks, poses, CTF,
latents, RELION star, cryoSPARC cs, restricted pickles."""
