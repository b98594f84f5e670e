"""JAX/Flax NNX models of facepair: presets, layers, the shared-encoder model, augmentation, losses and
the jitted training step. Knows arrays and configs, not projects or files (see core/train.py)."""
