"""JAX/Flax NNX models of facepair: presets, layers, the shared-encoder model, augmentation, losses and
the jitted training step. Knows arrays and configs, not projects or files (see core/train/job.py)."""

# Before any model runs: XLA:CPU's own multithreaded convolutions instead of YNNPACK's (see xla_cpu).
from core.jaxmodels import xla_cpu as _xla_cpu  # noqa: E402

_xla_cpu.configure()
