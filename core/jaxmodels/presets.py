"""Model presets: typed, frozen configs chosen by name.

A preset fixes everything a checkpoint depends on (architecture, resolution, loss) plus sensible
training defaults (batch, learning rate). Every preset is the 2018 shape — a strided-conv encoder,
a dense bottleneck reshaped to 4×4, one upscale in the encoder, then per-identity decoders of upscale
blocks — scaled in width, depth and resolution; `arch` "liae" rearranges the same blocks the
DeepFaceLab way (core/jaxmodels/liae.py). `param_count` is the documented parameter count; tests
check the built model against it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class LossConfig:
    """How a side's reconstruction is scored (see core/jaxmodels/losses.py)."""

    kind: str = "l1"              # "l1" or "mse"
    dssim: float = 0.0            # weight of the DSSIM term added to the pixel loss (0 = off)
    mask_weighted: bool = False   # weight pixels by the landmark-hull mask
    background: float = 0.1       # weight of pixels outside the mask when mask_weighted
    eye_multiplier: float = 1.0   # extra weight on the eye regions (1 = none)
    mouth_multiplier: float = 1.0  # extra weight on the mouth region (1 = none)
    mask_loss: float = 1.0        # weight of the learned-mask loss (presets with a mask output)


@dataclass(frozen=True)
class AugmentConfig:
    """On-device augmentation ranges (see core/jaxmodels/augment.py)."""

    rotation_deg: float = 10.0
    zoom: float = 0.05
    shift: float = 0.05
    flip: float = 0.5            # probability of a horizontal flip
    lightness: float = 0.08      # colour jitter in Lab: L scale and shift (fraction of range)
    chroma: float = 4.0          # a*/b* shift, in Lab units
    warp: float = 0.03           # random-warp control-point σ as a fraction of the face size
    warp_grid: int = 5
    colour_transfer: float = 0.0  # share of B's faces shown in an A face's colour (DFL's ct_mode rct)


LR_DECAYS = ("none", "cosine")
ARCHS = ("df", "liae")  # core/jaxmodels/architectures.py
WARP_MAX = 0.2  # the random warp's σ, a share of the face size
GAN_POWER_MAX = 5.0  # DeepFaceLab's range for its GAN power (0.1 is its usual value)
TRUE_FACE_MAX = 1.0  # core.jaxmodels.true_face.TRUE_FACE_MAX


@dataclass(frozen=True)
class Preset:
    name: str
    resolution: int
    encoder_channels: tuple[int, ...]  # one 5×5 stride-2 conv each; resolution / 2**len == 4
    dense: int                         # bottleneck width
    bottleneck_channels: int           # the dense output is reshaped to 4×4×this
    encoder_upscale: int               # channels after the encoder's upscale block (8×8×this)
    decoder_channels: tuple[int, ...]  # one upscale block each
    arch: str = "df"                   # "df": a decoder per person; "liae": one decoder, inter blocks
    residual_blocks: int = 0           # residual blocks after each decoder upscale
    mask: bool = False                 # a learned mask output (4th channel)
    coverage: float | None = None      # the model's crop, mean-face units (None: the extracted crops' own)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    batch: int = 16                    # default faces per side per step
    lr: float = 5e-5
    warmup_steps: int = 100            # linear learning-rate warm-up (core/jaxmodels/schedule.py)
    lr_decay: str = "none"             # after the warm-up: "none" (constant) or "cosine" down to lr_floor
    lr_decay_steps: int | None = None  # the step the cosine reaches its floor (None: the run's --steps)
    lr_floor: float = 0.1              # the cosine's end, a share of the base learning rate
    ema_decay: float = 0.0             # EMA of the weights for previews and conversion (0 = none kept)
    gan_power: float = 0.0             # weight of the patch discriminator's loss (0 = no discriminator)
    gan_from: int = 0                  # the step the discriminator joins at (before it: the plain step)
    gan_warp: float | None = None      # the random warp's strength while it trains (None: augment.warp's)
    true_face: float = 0.0             # weight of the code discriminator's loss (core/jaxmodels/true_face.py; df only)
    lr_dropout: float = 0.0            # share of the weights' updates dropped at random each step (0 = none)
    uniform_yaw: bool = False          # batches balanced over head yaw (core/train/yaw_balance.py)
    clip_norm: float = 1.0
    steps_per_call: int = 10           # steps fused into one dispatch (lax.scan)
    param_count: int = 0             # exact parameter count (checked by tests)
    hardware: str = ""
    description: str = ""

    def program_at(self, step: int) -> Preset:
        """The preset the training step runs at `step`: before `gan_from` without its discriminator
        (the plain step, at the plain step's speed), else this one with `gan_warp`'s random warp."""
        if not self.gan_power:
            return self
        if step < self.gan_from:
            return replace(self, gan_power=0.0, gan_from=0, gan_warp=None)
        if self.gan_warp is None or self.gan_warp == self.augment.warp:
            return self
        return replace(self, augment=replace(self.augment, warp=self.gan_warp))

    def __post_init__(self):
        bottom = self.resolution >> len(self.encoder_channels)
        if bottom != 4 or bottom << len(self.encoder_channels) != self.resolution:
            raise ValueError(f"preset {self.name}: {self.resolution}px with {len(self.encoder_channels)} "
                             f"stride-2 convs does not end at 4×4")
        if 8 << len(self.decoder_channels) != self.resolution:
            raise ValueError(f"preset {self.name}: {len(self.decoder_channels)} decoder upscales from 8×8 "
                             f"do not reach {self.resolution}px")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"preset {self.name}: ema_decay must be 0 (off) or in (0, 1), not {self.ema_decay}")
        if not 0 <= self.gan_power <= GAN_POWER_MAX:
            raise ValueError(f"preset {self.name}: gan_power must be in 0..{GAN_POWER_MAX:g}, not {self.gan_power}")
        if self.gan_from < 0:
            raise ValueError(f"preset {self.name}: gan_from must be a step ≥ 0, not {self.gan_from}")
        if self.gan_warp is not None and not 0 <= self.gan_warp <= WARP_MAX:
            raise ValueError(f"preset {self.name}: gan_warp must be in 0..{WARP_MAX:g}, not {self.gan_warp}")
        if not 0 <= self.true_face <= TRUE_FACE_MAX:
            raise ValueError(f"preset {self.name}: true_face must be in 0..{TRUE_FACE_MAX:g}, not {self.true_face}")
        if self.true_face and self.arch != "df":
            raise ValueError(f"preset {self.name}: true_face needs the df architecture (one encoder's code per person), "
                             f"not {self.arch}")
        if not 0 <= self.lr_dropout < 1:
            raise ValueError(f"preset {self.name}: lr_dropout must be in [0, 1), not {self.lr_dropout}")
        if self.arch not in ARCHS:
            raise ValueError(f"preset {self.name}: arch must be one of {', '.join(ARCHS)}, not {self.arch!r}")
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(f"preset {self.name}: lr_decay must be one of {', '.join(LR_DECAYS)}, not {self.lr_decay!r}")
        if not 0 <= self.lr_floor <= 1 or self.warmup_steps < 0:
            raise ValueError(f"preset {self.name}: lr_floor must be in 0..1 and warmup_steps ≥ 0")

    def to_json(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {}


def _add(p: Preset) -> None:
    PRESETS[p.name] = p


_add(Preset(
    name="tiny", resolution=32,
    encoder_channels=(8, 16, 32), dense=32, bottleneck_channels=32, encoder_upscale=16,
    decoder_channels=(16, 8), residual_blocks=1, mask=True,
    loss=LossConfig(kind="l1", dssim=0.5, mask_weighted=True, eye_multiplier=2.0, mouth_multiplier=2.0),
    augment=AugmentConfig(), batch=8, lr=5e-4, warmup_steps=10, steps_per_call=8,
    param_count=109_528, hardware="any CPU (tests)",
    description="a toy model with every feature (residual blocks, learned mask, DSSIM, priorities) "
                "for tests: a training step takes tens of milliseconds on a CPU",
))

_add(Preset(
    name="lite", resolution=64,
    encoder_channels=(32, 64, 128, 256), dense=256, bottleneck_channels=256, encoder_upscale=128,
    decoder_channels=(64, 32, 16), coverage=1.6,  # docs/quality.md: the inner face, not the hair
    loss=LossConfig(kind="l1", dssim=0.5, mask_weighted=True, eye_multiplier=2.0, mouth_multiplier=2.0),
    augment=AugmentConfig(colour_transfer=0.5),  # docs/quality.md: B's faces in A's lighting, half the time
    batch=16, lr=5e-4, warmup_steps=50, steps_per_call=10,
    gan_power=0.1, gan_from=3600,  # docs/quality.md: the discriminator for the budget's last 1,000 steps,
    gan_warp=0.0,                  # without the random warp
    param_count=5_137_190, hardware="a laptop or 2-core CPU (demo)",
    description="the original at a quarter of its width: recognisable swaps after minutes on a CPU",
))

_add(Preset(
    name="lite128", resolution=128,
    encoder_channels=(32, 64, 128, 256, 256), dense=256, bottleneck_channels=256, encoder_upscale=128,
    decoder_channels=(64, 32, 16, 16), coverage=1.6,
    loss=LossConfig(kind="l1", dssim=0.5, mask_weighted=True, eye_multiplier=2.0, mouth_multiplier=2.0),
    batch=16, lr=5e-4, warmup_steps=50, steps_per_call=10,
    param_count=6_794_406, hardware="a CPU with time to spare, or any GPU",
    description="lite's widths at 128 px: the detail a 64 px model cannot hold (docs/quality.md), "
                "at about 3.5× lite's step time on a CPU",
))

_add(Preset(
    name="original", resolution=64,
    encoder_channels=(128, 256, 512, 1024), dense=1024, bottleneck_channels=1024, encoder_upscale=512,
    decoder_channels=(256, 128, 64),
    loss=LossConfig(kind="l1", dssim=0.0), batch=64, lr=5e-5, warmup_steps=100, steps_per_call=20,
    param_count=82_062_470, hardware="any GPU: batch 256 plans 7.1 GiB (facepair plan; runs, slowly, on a CPU)",
    description="the 2018 deepfakes model at 64 px, exactly",
))

_add(Preset(
    name="hq128", resolution=128,
    encoder_channels=(128, 256, 512, 768, 1024), dense=512, bottleneck_channels=1024, encoder_upscale=512,
    decoder_channels=(512, 256, 128, 64), residual_blocks=1, mask=True,
    loss=LossConfig(kind="l1", dssim=1.0, mask_weighted=True, eye_multiplier=3.0, mouth_multiplier=2.0),
    batch=32, lr=5e-5, warmup_steps=500, steps_per_call=20,
    param_count=113_088_776, hardware="one GPU: batch 64 on 24 GB, 128 on 40 GB, 256 on 80 GB (facepair plan --table)",
    description="128 px, wider decoders with residual blocks, a learned mask, DSSIM and eye/mouth priority",
))

_add(Preset(
    name="hq256", resolution=256,
    encoder_channels=(96, 192, 384, 768, 1024, 1024), dense=512, bottleneck_channels=1024, encoder_upscale=512,
    decoder_channels=(512, 384, 256, 128, 64), residual_blocks=1, mask=True,
    loss=LossConfig(kind="l1", dssim=1.0, mask_weighted=True, eye_multiplier=3.0, mouth_multiplier=2.0),
    batch=16, lr=4e-5, warmup_steps=1000, steps_per_call=10,
    param_count=152_161_480, hardware="one GPU: batch 16 on 24 GB, 32 on 40 GB, 64 on 80 GB, 128 on 141 GB (facepair plan --table)",
    description="256 px, the hq128 design one level deeper, for close-ups",
))


class PresetError(ValueError):
    """An unknown preset name. Its message is for the user: the CLI and the job runner print it as
    one line (core.jaxmodels knows nothing of `core.errors`, so it cannot be a FacepairError)."""


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise PresetError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


def preset_from_json(d: dict) -> Preset:
    """Rebuild a preset stored with a checkpoint (so old checkpoints load even if a default changes)."""
    d = dict(d)
    d["encoder_channels"] = tuple(d["encoder_channels"])
    d["decoder_channels"] = tuple(d["decoder_channels"])
    d["loss"] = LossConfig(**d.get("loss", {}))
    d["augment"] = AugmentConfig(**d.get("augment", {}))
    known = set(Preset.__dataclass_fields__)
    return Preset(**{k: v for k, v in d.items() if k in known})
