"""The training step: sample → augment → forward/backward → guarded Adam update, fused and jitted.

`Trainer.train_steps(state, data, n)` runs up to `steps_per_call` steps in one dispatch (a
`lax.scan`), so Python never sits in the hot loop; it donates the state, so the device keeps one
copy of the weights. Faces live on the device as uint8 (the whole set) and each step samples its
batch there; with `streamed=True` the host hands over exactly the batches of one call instead (for
sets that do not fit). Data parallelism: the batch is sharded over the mesh's `data` axis and the
parameters are replicated, so XLA inserts the gradient all-reduce.

The learning rate of step t is the state's base rate times the preset's schedule at t (warm-up,
then constant or a cosine decay: core/jaxmodels/schedule.py). With `preset.ema_decay` > 0 the state
also keeps an exponential moving average of the weights (float32, updated in the same step, after
the parameters), which previews and conversion use (core/train/model_io.py `load_model`). With
`preset.gan_power` > 0 it also holds a patch discriminator and its Adam state
(core/jaxmodels/discriminator.py): the step adds `gan_power` × its adversarial loss to the
reconstruction loss, then updates the discriminator on the same batch's real and reconstructed faces.
With `preset.true_face` > 0 it holds a code discriminator (core/jaxmodels/true_face.py) the same
way: the encoder is pushed to give B's faces codes that pass as A's, and the discriminator learns
on the batch's codes.

The NaN guard: a step whose loss or gradient is not finite changes neither weights nor optimizer
state; it is counted (`skipped`, and `bad_streak` for consecutive ones) so the job can react.

With `preset.lr_dropout` p > 0 each weight's update is dropped with probability p at every step
(DeepFaceLab's learning-rate dropout, which keeps 30 %: p = 0.7); Adam's moments still see every
gradient.

Randomness is a pure function of (seed, step), so a resumed run repeats exactly what an
uninterrupted one would have done.

For benchmarks:

    trainer, state = make_train_state("original", batch=16, seed=0)
    data = trainer.put_data(synthetic_faces(trainer.preset, 64, seed=0))
    state, metrics = trainer.train_steps(state, data, trainer.steps_per_call)   # compiles
    jax.block_until_ready(metrics)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from core.jaxmodels import augment as aug
from core.jaxmodels import discriminator as gan
from core.jaxmodels import true_face as tf
from core.jaxmodels.architectures import make_model
from core.jaxmodels.losses import side_loss, uses_maps
from core.jaxmodels.precision import compute_dtype_name
from core.jaxmodels.presets import Preset, get_preset
from core.jaxmodels.schedule import ema_decay_at, lr_factor


class TrainState(NamedTuple):
    params: dict          # nested dict of float32 arrays (the model's nnx.Param values)
    opt_state: tuple      # optax state: Adam's moments per parameter tensor (the params' tree)
    step: jax.Array       # int32: steps attempted so far
    seed: jax.Array       # uint32 PRNG key data; a step's randomness is fold_in(seed, step)
    lr: jax.Array         # float32 base learning rate (the job may lower it)
    skipped: jax.Array    # int32: non-finite steps skipped, in total
    bad_streak: jax.Array  # int32: consecutive non-finite steps, up to now
    ema: dict = {}        # the weights' debiased moving average, float32 like params ({}: the preset keeps none)
    disc: dict = {}       # the patch discriminator's weights ({}: gan_power 0)
    disc_opt: tuple = ()  # its optax Adam state
    code_disc: dict = {}  # the true-face code discriminator's weights ({}: true_face 0)
    code_disc_opt: tuple = ()  # its optax Adam state


class FaceData(NamedTuple):
    """Both sides' faces (n, R, R, 3) uint8 and weight maps (n, R, R, 3) uint8 (mask, eyes, mouth);
    optionally per side an int32 index table the step draws faces from (uniform yaw:
    core/train/yaw_balance.py), else each face alike."""

    faces_a: jax.Array
    maps_a: jax.Array
    faces_b: jax.Array
    maps_b: jax.Array
    picks_a: jax.Array | None = None
    picks_b: jax.Array | None = None


class Batch(NamedTuple):
    """One augmented step's floats in [0, 1]: warped inputs, unwarped targets, target maps."""

    in_a: jax.Array
    tgt_a: jax.Array
    maps_a: jax.Array
    in_b: jax.Array
    tgt_b: jax.Array
    maps_b: jax.Array


def default_mesh(devices=None) -> Mesh:
    """A 1-D mesh on the `data` axis over all devices (all processes' devices under jax.distributed)."""
    devs = np.array(jax.devices() if devices is None else devices)
    return Mesh(devs, ("data",))


def compute_dtype_for(platform: str):
    """bf16 compute with fp32 parameters on accelerators; fp32 everywhere on a CPU (unless
    $FACEPAIR_COMPUTE_DTYPE says otherwise: core/jaxmodels/precision.py)."""
    return jnp.bfloat16 if compute_dtype_name(platform) == "bfloat16" else jnp.float32


_B1, _B2, _EPS = 0.9, 0.999, 1e-8  # Adam's constants (optax.scale_by_adam's defaults)


def _optimizer(clip_norm: float) -> optax.GradientTransformation:
    # The learning rate is applied by the step (it lives in the state so the job can lower it).
    return optax.chain(optax.clip_by_global_norm(clip_norm), optax.scale_by_adam(b1=_B1, b2=_B2, eps=_EPS))


def _adam_direction(adam: optax.ScaleByAdamState) -> dict:
    """Adam's update direction from its already-updated moments, as optax.scale_by_adam computes
    it: bias-corrected mu / (sqrt(bias-corrected nu) + eps). (tests/test_train.py checks it against
    optax's own updates.)"""
    c1 = 1 - _B1 ** adam.count
    c2 = 1 - _B2 ** adam.count
    return jax.tree.map(lambda m, v: (m / c1.astype(m.dtype)) / (jnp.sqrt(v / c2.astype(v.dtype)) + _EPS),
                        adam.mu, adam.nu)


def _where(pred, new, old):
    return jax.tree.map(lambda n, o: jnp.where(pred, n, o), new, old)


class Trainer:
    """Everything static about a run (preset, batch, mesh, dtype) and its compiled functions."""

    def __init__(self, preset: Preset | str, batch: int, mesh: Mesh | None = None, dtype=None,
                 steps_per_call: int | None = None, streamed: bool = False):
        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        self.batch = int(batch)
        self.mesh = mesh if mesh is not None else default_mesh()
        n_dev = self.mesh.size
        if self.batch < 1 or self.batch % n_dev:
            raise ValueError(f"batch {self.batch} does not split evenly over {n_dev} devices")
        platform = self.mesh.devices.flat[0].platform
        self.dtype = dtype if dtype is not None else compute_dtype_for(platform)
        # On XLA:CPU a conv weight gradient inside a loop body is 15–70× slower than outside one
        # (see layers.conv2d), so a CPU runs one step per dispatch; dispatch stays asynchronous.
        default_k = 1 if platform == "cpu" else self.preset.steps_per_call
        self.steps_per_call = int(steps_per_call or default_k)
        self.streamed = streamed
        self.replicated = NamedSharding(self.mesh, P())
        self.sharded = NamedSharding(self.mesh, P("data"))
        self.graphdef, abstract = nnx.split(nnx.eval_shape(lambda: self._model(0)))
        self.abstract_params = nnx.to_pure_dict(abstract)
        self.tx = _optimizer(self.preset.clip_norm)
        self.gan = self.preset.gan_power > 0
        if self.gan:
            self.disc_graphdef = nnx.split(nnx.eval_shape(lambda: self._discriminator(0)))[0]
            self.disc_tx = _optimizer(self.preset.clip_norm)
        self.true_face = self.preset.true_face > 0
        if self.true_face:
            self.code_disc_graphdef = nnx.split(nnx.eval_shape(lambda: self._code_discriminator(0)))[0]
            self.code_disc_tx = _optimizer(self.preset.clip_norm)
        self.uses_maps = uses_maps(self.preset.loss, self.preset.mask)
        self.lr_factor = lr_factor(self.preset)  # raises for a cosine without an end step
        self._train = jax.jit(self._train_steps, donate_argnums=0, out_shardings=self.replicated)
        self._apply = jax.jit(self._apply_batch, donate_argnums=0, out_shardings=self.replicated)
        self._init = jax.jit(self._init_state, out_shardings=self.replicated)
        self._predict = jax.jit(self._predict_fn, static_argnums=2)

    # ---- construction ---------------------------------------------------------------------
    def _model(self, seed):
        # Initial weights from the "rbg" generator: threefry takes ~30 s to compile per model on a
        # CPU for no benefit here. (Per-step randomness stays threefry: sharding-invariant.)
        return make_model(self.preset, rngs=nnx.Rngs(jax.random.key(seed, impl="rbg")), dtype=self.dtype,
                          param_dtype=jnp.float32)

    def _discriminator(self, seed):
        key = jax.random.fold_in(jax.random.key(seed, impl="rbg"), 7)
        return gan.PatchDiscriminator(gan.width_for(self.preset.encoder_channels), rngs=nnx.Rngs(key),
                                      dtype=self.dtype, param_dtype=jnp.float32)

    def _code_discriminator(self, seed):
        key = jax.random.fold_in(jax.random.key(seed, impl="rbg"), 11)
        return tf.CodeDiscriminator(self.preset.encoder_upscale, tf.width_for(self.preset.encoder_upscale),
                                    rngs=nnx.Rngs(key), dtype=self.dtype, param_dtype=jnp.float32)

    def _init_state(self, seed) -> TrainState:
        params = nnx.to_pure_dict(nnx.split(self._model(seed))[1])
        disc = nnx.to_pure_dict(nnx.split(self._discriminator(seed))[1]) if self.gan else {}
        code_disc = nnx.to_pure_dict(nnx.split(self._code_discriminator(seed))[1]) if self.true_face else {}
        return TrainState(
            params=params,
            opt_state=self.tx.init(params),
            step=jnp.zeros((), jnp.int32),
            seed=jax.random.key_data(jax.random.fold_in(jax.random.key(seed), 1)),  # threefry
            lr=jnp.asarray(self.preset.lr, jnp.float32),
            skipped=jnp.zeros((), jnp.int32),
            bad_streak=jnp.zeros((), jnp.int32),
            ema=jax.tree.map(jnp.copy, params) if self.preset.ema_decay else {},
            disc=disc,
            disc_opt=self.disc_tx.init(disc) if self.gan else (),
            code_disc=code_disc,
            code_disc_opt=self.code_disc_tx.init(code_disc) if self.true_face else (),
        )

    def init_state(self, seed: int = 0) -> TrainState:
        """A fresh state, replicated over the mesh (identical on every process for a seed)."""
        return self._init(jnp.asarray(seed, jnp.uint32))

    def abstract_state(self) -> TrainState:
        """Shapes and dtypes of a state, without computing one (checkpoint restore targets)."""
        return jax.eval_shape(self._init_state, 0)

    def put_data(self, data: FaceData) -> FaceData:
        """Place host arrays on every device (replicated); works under jax.distributed too."""
        return FaceData(*(None if x is None else put_replicated(np.asarray(x), self.replicated) for x in data))

    def put_state(self, state: TrainState) -> TrainState:
        return jax.tree.map(lambda x: put_replicated(np.asarray(x), self.replicated), state)

    # ---- the step ---------------------------------------------------------------------------
    def model(self, params: dict):
        return nnx.merge(self.graphdef, params)

    def _loss(self, params: dict, b: Batch, disc: dict, code_disc: dict):
        model = self.model(params)
        if self.true_face:  # the codes too (df: one encoder pass over both batches, as reconstruct_both)
            na = b.in_a.shape[0]
            z = model.encode(jnp.concatenate([b.in_a, b.in_b], axis=0))
            (ra, ma), (rb, mb) = model.decode(z[:na], "a"), model.decode(z[na:], "b")
        else:
            (ra, ma), (rb, mb) = model.reconstruct_both(b.in_a, b.in_b)
        cfg = self.preset.loss
        la = side_loss(ra, ma, b.tgt_a, b.maps_a, cfg)
        lb = side_loss(rb, mb, b.tgt_b, b.maps_b, cfg)
        total, zero = la + lb, jnp.zeros((), jnp.float32)
        adv, fakes, tf_g, codes = zero, (), zero, ()
        if self.gan:
            fakes = (gan.judged(ra, b.maps_a), gan.judged(rb, b.maps_b))
            d = nnx.merge(self.disc_graphdef, disc)
            adv = sum(gan.generator_loss(d(f)) for f in fakes) / 2
            total = total + self.preset.gan_power * adv
            fakes = jax.lax.stop_gradient(fakes)
        if self.true_face:  # B's codes judged as A's (DeepFaceLab: src's codes as dst's)
            tf_g = gan.generator_loss(nnx.merge(self.code_disc_graphdef, code_disc)(z[na:]))
            total = total + self.preset.true_face * tf_g
            codes = jax.lax.stop_gradient((z[:na], z[na:]))
        return total, (la, lb, adv, fakes, tf_g, codes)

    def _disc_loss(self, disc: dict, b: Batch, fakes):
        d = nnx.merge(self.disc_graphdef, disc)
        reals = (gan.judged(b.tgt_a, b.maps_a), gan.judged(b.tgt_b, b.maps_b))
        return sum(gan.discriminator_loss(d(r), d(f)) for r, f in zip(reals, fakes, strict=True)) / 2

    def _disc_update(self, state: TrainState, b: Batch, fakes, lr, finite):
        """The discriminator's guarded Adam step on the batch's real targets and reconstructions."""
        if not self.gan:
            return state.disc, state.disc_opt, jnp.zeros((), jnp.float32), finite
        d_loss, grads = jax.value_and_grad(self._disc_loss)(state.disc, b, fakes)
        ok = finite & jnp.isfinite(d_loss)
        updates, opt = self.disc_tx.update(grads, state.disc_opt, state.disc)
        disc = jax.tree.map(lambda p, u: jnp.where(ok, p - lr * u, p), state.disc, updates)
        return disc, _where(ok, opt, state.disc_opt), d_loss, ok

    def _code_disc_loss(self, code_disc: dict, codes):
        d = nnx.merge(self.code_disc_graphdef, code_disc)
        za, zb = codes
        return gan.discriminator_loss(d(za), d(zb))

    def _code_disc_update(self, state: TrainState, codes, lr, finite):
        """The code discriminator's guarded Adam step: A's codes "real", B's judged."""
        if not self.true_face:
            return state.code_disc, state.code_disc_opt, jnp.zeros((), jnp.float32), finite
        d_loss, grads = jax.value_and_grad(self._code_disc_loss)(state.code_disc, codes)
        ok = finite & jnp.isfinite(d_loss)
        updates, opt = self.code_disc_tx.update(grads, state.code_disc_opt, state.code_disc)
        code_disc = jax.tree.map(lambda p, u: jnp.where(ok, p - lr * u, p), state.code_disc, updates)
        return code_disc, _where(ok, opt, state.code_disc_opt), d_loss, ok

    def _apply_batch(self, state: TrainState, b: Batch):
        """One guarded optimisation step on a ready batch; returns (state, metrics).

        Adam works tensor by tensor (as PyTorch's foreach Adam does): flattening all parameters
        into one vector each step cost a concatenation of every tensor and the slices back
        (lite on a 2-core CPU: 283 -> 261 ms a step without it)."""
        (loss, (la, lb, adv, fakes, tf_g, codes)), grads = jax.value_and_grad(self._loss, has_aux=True)(
            state.params, b, state.disc, state.code_disc)
        gnorm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))
        finite = jnp.isfinite(loss) & jnp.isfinite(gnorm)
        _, opt_state = self.tx.update(grads, state.opt_state, state.params)  # optax's new moments
        opt_state = _where(finite, opt_state, state.opt_state)
        # The moments are written in place (the state is donated) before the parameters read them:
        # otherwise XLA recomputes them inside the parameter update from the old ones, which it must
        # then copy first (every mu and nu each step: 41 MB for lite, 656 MB for original, whose
        # step on a 2-core CPU went 2,956 -> 2,868 ms without them; docs/performance.md).
        opt_state = jax.lax.optimization_barrier(opt_state)
        lr = state.lr * self.lr_factor(state.step)
        direction = self._dropped(_adam_direction(opt_state[1]), state)
        params = jax.tree.map(lambda p, u: jnp.where(finite, p - lr * u, p), state.params, direction)
        disc, disc_opt, d_loss, d_ok = self._disc_update(state, b, fakes, lr, finite)
        code_disc, code_disc_opt, tf_d, tf_ok = self._code_disc_update(state, codes, lr, finite)
        new = state._replace(
            params=params,
            opt_state=opt_state,
            step=state.step + 1,
            skipped=state.skipped + (~finite).astype(jnp.int32),
            bad_streak=jnp.where(finite, 0, state.bad_streak + 1),
            ema=self._ema_update(state.ema, params, state.step + 1, finite),
            disc=disc,
            disc_opt=disc_opt,
            code_disc=code_disc,
            code_disc_opt=code_disc_opt,
        )
        metrics = {"loss_a": la, "loss_b": lb, "grad_norm": gnorm, "finite": finite, "lr": lr,
                   "gan_g": adv, "gan_d": jnp.where(d_ok, d_loss, 0.0),
                   "true_face_g": tf_g, "true_face_d": jnp.where(tf_ok, tf_d, 0.0)}
        return new, metrics

    def _dropped(self, direction: dict, state: TrainState) -> dict:
        """Adam's direction with each weight's share dropped at random (lr_dropout), else as it is."""
        p = self.preset.lr_dropout
        if not p:
            return direction
        step_key = jax.random.fold_in(jax.random.wrap_key_data(state.seed), state.step)
        leaves, tree = jax.tree.flatten(direction)
        keys = jax.random.split(jax.random.fold_in(step_key, 0x1D), len(leaves))
        kept = [u * jax.random.bernoulli(k, 1.0 - p, u.shape).astype(u.dtype) for u, k in zip(leaves, keys, strict=True)]
        return jax.tree.unflatten(tree, kept)

    def _ema_update(self, ema: dict, params: dict, n, finite):
        """The moving average after update n (the step's count): d·ema + (1−d)·params, with the
        debiased decay d of schedule.ema_decay_at; a skipped (non-finite) step leaves it alone."""
        if not ema:
            return ema
        d = ema_decay_at(self.preset.ema_decay, n)
        return jax.tree.map(lambda e, p: jnp.where(finite, d * e + (1 - d) * p, e), ema, params)

    def _sample(self, state: TrainState, data: FaceData, i: jax.Array) -> Batch:
        """The augmented batch of step `state.step` (call index i within a streamed chunk)."""
        key = jax.random.fold_in(jax.random.wrap_key_data(state.seed), state.step)
        k_ia, k_ib, k_aa, k_ab = jax.random.split(key, 4)
        out, faces_a = [], None
        for faces, maps, picks, k_i, k_a in ((data.faces_a, data.maps_a, data.picks_a, k_ia, k_aa),
                                              (data.faces_b, data.maps_b, data.picks_b, k_ib, k_ab)):
            if self.streamed:
                idx = i * self.batch + jnp.arange(self.batch)
            elif picks is None:
                idx = jax.random.randint(k_i, (self.batch,), 0, faces.shape[0])
            else:
                idx = picks[jax.random.randint(k_i, (self.batch,), 0, picks.shape[0])]
            idx = jax.lax.with_sharding_constraint(idx, self.sharded)
            if not self.uses_maps:  # the loss never reads them: augment none (0 channels)
                maps = maps[..., :0]
            f = jax.lax.with_sharding_constraint(faces[idx], self.sharded)
            m = jax.lax.with_sharding_constraint(maps[idx], self.sharded)
            # B's faces may take the colour of this batch's A faces (the footage's lighting).
            out.extend(aug.augment(k_a, f, m, self.preset.augment, colour_ref=faces_a))
            faces_a = f
        return Batch(*out)

    def _train_steps(self, state: TrainState, data: FaceData, n: jax.Array):
        """Up to steps_per_call steps; steps at index ≥ n are no-ops (one compile, any count)."""
        if self.steps_per_call == 1:
            st, m = self._apply_batch(state, self._sample(state, data, jnp.zeros((), jnp.int32)))
            return st, jax.tree.map(lambda v: v[None], {**m, "done": n > 0})

        def body(st, i):
            def run(st):
                st, m = self._apply_batch(st, self._sample(st, data, i))
                return st, {**m, "done": jnp.ones((), bool)}

            def skip(st):
                return st, _empty_metrics()

            return jax.lax.cond(i < n, run, skip, st)

        return jax.lax.scan(body, state, jnp.arange(self.steps_per_call))

    def train_steps(self, state: TrainState, data: FaceData, n: int | None = None):
        """Run n (≤ steps_per_call, default all) steps in one dispatch. Returns (state, metrics):
        metrics are arrays of length steps_per_call, with `done` False for the unused tail.
        The input state is donated: use the returned one."""
        n = self.steps_per_call if n is None else int(n)
        if not 0 < n <= self.steps_per_call:
            raise ValueError(f"n must be in 1..{self.steps_per_call}, not {n}")
        return self._train(state, data, jnp.asarray(n, jnp.int32))

    def apply_batch(self, state: TrainState, batch: Batch):
        """One step on a batch you made (tests: the NaN guard); donates the state."""
        return self._apply(state, batch)

    # ---- inference ----------------------------------------------------------------------
    def _predict_fn(self, params: dict, faces_u8: jax.Array, side: str):
        return predict(self.model(params), faces_u8, side)

    def predict(self, params: dict, faces_u8, side: str):
        """Encode uint8 faces (n, R, R, 3) and decode them as `side`: (rgb, mask or None) in [0, 1]."""
        return self._predict(params, faces_u8, side)

    def sample_batch(self, state: TrainState, data: FaceData) -> Batch:
        """The augmented batch the next step would train on (for tests and previews of the input)."""
        return jax.jit(self._sample)(state, data, jnp.asarray(0, jnp.int32))


def predict(model, faces_u8: jax.Array, side: str):
    """Swap uint8 faces (n, R, R, 3) through `model` as `side`: (rgb, mask or None), float32 in
    [0, 1]. The one forward pass of inference, shared by the trainer's previews and the swapper."""
    rgb, mask = model(faces_u8.astype(jnp.float32) / 255.0, side)
    return rgb.astype(jnp.float32), (None if mask is None else mask.astype(jnp.float32))


def _empty_metrics() -> dict:
    z = jnp.zeros((), jnp.float32)
    return {"loss_a": z, "loss_b": z, "grad_norm": z, "finite": jnp.ones((), bool), "lr": z,
            "gan_g": z, "gan_d": z, "true_face_g": z, "true_face_d": z, "done": jnp.zeros((), bool)}


def put_replicated(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A host array as a replicated global array (each process supplies its own identical copy)."""
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def make_train_state(preset: Preset | str, batch: int, seed: int = 0, **kw) -> tuple[Trainer, TrainState]:
    """A trainer for `preset` at `batch` faces per side over all devices, and a fresh state."""
    trainer = Trainer(preset, batch, **kw)
    return trainer, trainer.init_state(seed)


def synthetic_faces(preset: Preset | str, n: int, seed: int = 0) -> FaceData:
    """Random smooth 'faces' with an elliptic mask, for benchmarks and smoke tests (host numpy)."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    r = p.resolution
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:r, 0:r] / (r - 1)
    hull = (((yy - 0.55) / 0.42) ** 2 + ((xx - 0.5) / 0.34) ** 2 <= 1).astype(np.uint8) * 255
    eyes = ((np.abs(yy - 0.42) < 0.06) & (np.abs(np.abs(xx - 0.5) - 0.17) < 0.09)).astype(np.uint8) * 255
    mouth = ((np.abs(yy - 0.75) < 0.06) & (np.abs(xx - 0.5) < 0.15)).astype(np.uint8) * 255
    maps = np.broadcast_to(np.stack([hull, eyes, mouth], -1), (n, r, r, 3)).copy()

    def faces():
        low = rng.uniform(0, 255, (n, 4, 4, 3)).astype(np.float32)
        up = np.repeat(np.repeat(low, r // 4, axis=1), r // 4, axis=2)
        return np.clip(up + rng.normal(0, 12, up.shape), 0, 255).astype(np.uint8)

    return FaceData(faces(), maps, faces(), maps.copy())
