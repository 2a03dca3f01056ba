"""Files in and out: MRC/CCP4, MTZ, particle stacks, RELION star, cryoSPARC cs, pickles."""
