"""JAX/Flax NNX models of facepair: presets, layers, the shared-encoder model, augmentation, losses and
the jitted training step. Knows arrays and configs, not projects or files (see core/train/job.py).

Imports nothing of `core` outside itself, and importing it changes nothing: the XLA:CPU flag
(`xla_cpu.configure`) is applied by whoever starts a job or a benchmark, before JAX starts.
"""
