"""Physics on arrays: density from models, cryo-EM image formation, synthetic data sets."""
