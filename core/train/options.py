"""The `train` job kind's declared options (core/train/job.py `run_job`).

`facepair train`, the TUI's training dialog and the check before the job starts all come from
`SPEC` (core.jobs.spec). Light: no JAX. The job writes the model (it holds the project's model
lock), and a cancel gives it time to save a checkpoint before SIGKILL.
"""

from __future__ import annotations

from core.jobs.spec import KindSpec, Option

SAVE_EVERY_DEFAULT = 500  # core.train.job.DEFAULT_SAVE_EVERY
PREVIEW_EVERY_DEFAULT = 250  # core.train.job.DEFAULT_PREVIEW_EVERY
GRACE_S = 120.0  # a stopped training job saves a checkpoint first; a large model on a CPU takes a while

EMA_DECAY_MAX = 0.99999  # core.jaxmodels.presets.Preset.ema_decay: below 1
LR_DECAYS = ("none", "cosine")  # core.jaxmodels.presets.LR_DECAYS (this module stays light)
GAN_POWER_MAX = 5.0  # core.jaxmodels.presets.GAN_POWER_MAX
WARP_MAX = 0.2  # core.jaxmodels.presets.WARP_MAX
TRUE_FACE_MAX = 1.0  # core.jaxmodels.presets.TRUE_FACE_MAX
LR_DROPOUT_MAX = 0.99  # core.jaxmodels.presets.Preset.lr_dropout: below 1 (1 would never update)
ARCHS = ("df", "liae")  # core.jaxmodels.presets.ARCHS

BATCH = (str, int)  # a whole number, or "auto"; text from the command line and the form (parse_batch)


def parse_batch(value) -> int | str | None:
    """--batch as the job takes it: a whole number ≥ 1, "auto", or None (the device decides)."""
    from core.errors import FacepairError

    if value is None or isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise FacepairError(f"--batch must be a whole number or auto, not {value!r}")
    if number is not None and number < 1:
        raise FacepairError(f"--batch must be at least 1, not {number}")
    return number


def batch_is_auto(asked, platform: str) -> bool:
    """Does the job search for its batch? When asked to, and by default on a GPU or TPU (a CPU keeps
    the preset's batch: it reports no memory size, and its speed is not the memory's to decide)."""
    return asked == "auto" or (asked is None and platform != "cpu")


SPEC = KindSpec(
    kind="train",
    locks=("model",),
    grace_s=GRACE_S,
    options=(
        Option("preset", str, None, metavar="P",
               auto="the checkpoint's; for a new model lite on a CPU, original on a GPU",
               help="model preset: tiny, lite, original, hq128, hq256 (default: {default})",
               label="Preset (empty: the checkpoint's, else the default)"),
        Option("batch", BATCH, None, min=1, metavar="N|auto",
               auto="auto on a GPU (the largest power of two per device whose compiled plan fits its memory, "
                    "a tenth kept free), the preset's on a CPU",
               help="faces per side per step, or auto (default: {default})",
               label="Batch size per side (empty: auto on a GPU, the preset's on a CPU)"),
        Option("steps", int, None, min=1, metavar="N",
               help="train until the model reaches step N (counting earlier runs), then stop",
               label="Steps (empty: until stopped)"),
        Option("lr", float, None, min=0, above_min=True, metavar="X", auto="the preset's, or the checkpoint's",
               help="learning rate (default: {default})", label="Learning rate"),
        Option("init_from", str, None, metavar="PROJECT",
               help="start a new model from another project's trained one (a warm start): its encoder, and a "
                    "person's own decoder where the same person (by label) is in both projects; the model "
                    "takes that project's preset, and keeps a record of where it came from",
               label="Start from the model of project (empty: random weights)"),
        Option("arch", str, None, choices=ARCHS, auto="the preset's (df), or the checkpoint's",
               help="architecture of a new model: df, a decoder per person (the 2018 model); liae, one "
                    "decoder and a shared 'inter' block beside one of A's own (DeepFaceLab's usual choice: it "
                    "carries the footage's lighting and expression into the swap). Kept in the checkpoint "
                    "(default: {default})",
               label="Architecture (empty: the preset's)"),
        Option("coverage", float, None, min=0, above_min=True, max=4, metavar="C",
               auto="the extracted crops' own, 2.0: the whole head",
               help="the model's crop in mean-face units: a tighter crop (e.g. 1.6) spends the model's "
                    "pixels on the inner face rather than hair and background. A new model's setting, kept "
                    "in its checkpoint; conversion frames faces the same way (default: {default})",
               label="Crop coverage (empty: the crops')"),
        Option("dssim", float, None, min=0, max=10, metavar="W", auto="the preset's, or the checkpoint's",
               help="weight of the structural (DSSIM) term beside the pixel loss; 0 turns it off "
                    "(default: {default})", label="DSSIM weight"),
        Option("face_weighted", bool, None, flag="--face-weighted", negate="--no-face-weighted",
               help="score the reconstruction on the face (landmark hull) more than on the background; "
                    "--no-face-weighted scores every pixel alike (default: the preset's, or the checkpoint's)"),
        Option("eye_priority", float, None, min=1, max=10, metavar="X", auto="the preset's, or the checkpoint's",
               help="extra weight on the eyes, 1 = none (default: {default})", label="Eye priority"),
        Option("mouth_priority", float, None, min=1, max=10, metavar="X", auto="the preset's, or the checkpoint's",
               help="extra weight on the mouth, 1 = none (default: {default})", label="Mouth priority"),
        Option("colour_transfer", float, None, min=0, max=1, metavar="P", auto="the preset's, or the checkpoint's",
               help="share of B's training faces shown in the colour of A's faces (Reinhard's transfer, "
                    "DeepFaceLab's ct_mode rct), so the footage's lighting difference is not learned as part "
                    "of B; 0 turns it off (default: {default})", label="Colour transfer share"),
        Option("warp", float, None, min=0, max=WARP_MAX, metavar="W", auto="the preset's, or the checkpoint's",
               help="strength of the random warp of the model's inputs (the 2018 model's augmentation): the "
                    "control points' σ as a share of the face size; 0 turns it off (default: {default})",
               label="Random-warp strength"),
        Option("ema_decay", float, None, min=0, max=EMA_DECAY_MAX, metavar="D",
               out_of_range="must be 0 (off) or a decay below 1 such as 0.999 (at most {max}), not {value}",
               auto="the preset's, or the checkpoint's (0: off)",
               help="keep an exponential moving average of the weights with this decay per step (e.g. 0.999: "
                    "about the last 1,000 steps); previews and conversion then use it (convert --weights raw: "
                    "the last step's). 0 turns it off; a resume may change it (default: {default})",
               label="EMA decay of the weights (0: off)"),
        Option("gan_power", float, None, min=0, max=GAN_POWER_MAX, metavar="P",
               auto="the preset's (0: off), or the checkpoint's",
               help="train a patch discriminator beside the model and add P × its adversarial loss (DeepFaceLab's "
                    "GAN power; 0.1 is usual, best turned on once the faces are recognisable: a resume may turn "
                    "it on, and its discriminator then starts fresh). Sharper detail, slower steps; 0 turns it "
                    "off (default: {default})",
               label="GAN power (0: off)"),
        Option("gan_from", int, None, min=0, metavar="STEP", auto="the preset's (0: from the start), or the checkpoint's",
               help="the step at which the discriminator of --gan-power joins, fresh, as DeepFaceLab's users turn "
                    "it on once the faces are recognisable; before it each step runs without one, at the plain "
                    "step's speed; a resume may change it (default: {default})",
               label="GAN from step"),
        Option("gan_warp", float, None, min=0, max=WARP_MAX, metavar="W",
               auto="the preset's (lite: 0), or the checkpoint's; a preset without one: --warp's",
               help="strength of the random warp while the discriminator trains (DeepFaceLab's users turn the warp "
                    "off before GAN: the model then learns the faces as they are, not warped); 0 turns it off, a "
                    "resume may change it (default: {default})",
               label="Random warp while the discriminator trains"),
        Option("true_face", float, None, min=0, max=TRUE_FACE_MAX, metavar="P",
               auto="the preset's (0: off), or the checkpoint's",
               help="train a discriminator of the encoder's codes beside the model and add P × its loss, so B's "
                    "faces get codes that pass as A's: B's decoder then learns on codes like those conversion "
                    "gives it (DeepFaceLab's true_face_power, 0.01 usual; df architecture only). A resume may turn "
                    "it on (it starts fresh) or off; 0 turns it off (default: {default})",
               label="True-face power (0: off)"),
        Option("lr_dropout", float, None, min=0, max=LR_DROPOUT_MAX, metavar="P",
               auto="the preset's (0: off), or the checkpoint's",
               help="drop each weight's update at random with probability P at every step (DeepFaceLab's "
                    "learning-rate dropout keeps 3 in 10: P 0.7), for sharper faces and less shake late in "
                    "training; a resume may change it; 0 turns it off (default: {default})",
               label="Learning-rate dropout (0: off)"),
        Option("uniform_yaw", bool, None, flag="--uniform-yaw", negate="--no-uniform-yaw",
               help="draw each batch's faces balanced over head yaw (DeepFaceLab's uniform_yaw): a yaw bin of "
                    "3° first, every bin alike, then a face of it, so a clip's few turned faces are trained as "
                    "often as its frontal ones; a resume may change it; --no-uniform-yaw draws every face alike "
                    "(default: the preset's (off), or the checkpoint's)"),
        Option("lr_warmup", int, None, min=0, metavar="N", auto="the preset's, or the checkpoint's",
               help="linear learning-rate warm-up over the model's first N steps (default: {default})",
               label="Learning-rate warm-up, steps"),
        Option("lr_decay", str, None, choices=LR_DECAYS, auto="the preset's (none), or the checkpoint's",
               help="after the warm-up: none keeps the rate; cosine lowers it to --lr-floor by step "
                    "--lr-decay-steps (default: the run's --steps), kept with the model (default: {default})",
               label="Learning-rate decay"),
        Option("lr_decay_steps", int, None, min=1, metavar="N", auto="the run's --steps, or the checkpoint's",
               help="the model's step at which the cosine decay reaches its floor (default: {default})",
               label="Decay ends at step (empty: --steps)"),
        Option("lr_floor", float, None, min=0, max=1, metavar="F", auto="the preset's (0.1), or the checkpoint's",
               help="the cosine's end, a share of the learning rate (default: {default})",
               label="Learning-rate floor (share)"),
        Option("save_every", int, None, min=1, metavar="N", auto=str(SAVE_EVERY_DEFAULT),
               help="checkpoint every N steps (default {default})", label="Save every N steps"),
        Option("preview_every", int, None, min=1, metavar="N", auto=str(PREVIEW_EVERY_DEFAULT),
               help="preview grid every N steps (default {default})", label="Preview every N steps"),
        Option("keep", int, 3, min=1, metavar="K", help="checkpoints to keep (default {default})"),
        Option("seed", int, 0, help="seed of a new model and of its augmentation"),
        Option("stream", bool, None, flag="--stream-from-host",
               help="keep the faces in host memory and send each step's batch (for face sets too big "
                    "for the device; chosen automatically when they are)"),
        Option("steps_per_call", int, None, min=1, flag=None),  # tests: several steps per device call
        Option("coordinator", str, None, metavar="HOST:PORT", help="address of process 0"),
        Option("num_processes", int, None, metavar="N"),
        Option("process_id", int, None, metavar="I"),
    ),
)

MULTI_HOST = ("coordinator", "num_processes", "process_id")  # `facepair train`'s "several hosts" group
