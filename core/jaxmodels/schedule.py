"""The learning-rate schedule and the weights' moving average: pure functions of the step.

Both are functions of the model's step alone (not of a run's own count), so a resumed run continues
them exactly where the checkpoint left off.

- `lr_factor(preset)`: the share of the base learning rate used by step t (0-based): a linear warm-up
  over `warmup_steps` ((t+1)/W, as before), then constant (`lr_decay` "none") or a cosine from 1 down
  to `lr_floor` at step `lr_decay_steps` and that floor after it ("cosine"; optax's schedules).
- `ema_decay_at(decay, n)`: the decay of the n-th update of the exponential moving average of the
  weights, chosen so that the average is *debiased*: after n updates it is
  Σᵢ (1−d) dⁿ⁻ⁱ pᵢ / (1 − dⁿ), the weighted mean of every step's weights (optax.ema(debias=True)
  keeps a zero-started average and divides; this keeps the divided value itself, so the stored
  average is the one to use and the first update simply copies the weights).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import optax


def lr_factor(preset):
    """A function of the 0-based step (an int32 array) → the float32 share of the base rate."""
    warm = max(0, int(preset.warmup_steps))
    if preset.lr_decay == "none":
        return lambda step: jnp.minimum(1.0, (step + 1).astype(jnp.float32) / max(1, warm))
    horizon = preset.lr_decay_steps
    if horizon is None or int(horizon) <= warm:
        raise ValueError(f"a cosine decay needs its end step after the warm-up ({warm} steps), not {horizon}")
    cosine = optax.cosine_decay_schedule(1.0, decay_steps=int(horizon) - warm, alpha=float(preset.lr_floor))
    if warm == 0:
        return lambda step: cosine(step + 1).astype(jnp.float32)
    ramp = optax.linear_schedule(0.0, 1.0, transition_steps=warm)
    joined = optax.join_schedules([ramp, cosine], boundaries=[warm])
    return lambda step: joined(step + 1).astype(jnp.float32)


def ema_decay_at(decay: float, n):
    """The debiased EMA's decay for its n-th update (n ≥ 1, float32): d(1 − dⁿ⁻¹) / (1 − dⁿ).
    0 for the first (the average becomes the weights), → d as n grows. 1 − dᵏ is computed as
    −expm1(k log d), which keeps its digits where the plain difference would cancel."""
    log_d = math.log(decay)
    n = jnp.asarray(n, jnp.float32)
    return decay * -jnp.expm1((n - 1) * log_d) / -jnp.expm1(n * log_d)
