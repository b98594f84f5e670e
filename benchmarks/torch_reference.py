"""A PyTorch eager implementation of facepair's shared-encoder / two-decoder model, for speed comparison.

Same architecture as core/jaxmodels/models.py for a preset (5x5 stride-2 encoder convs with
LeakyReLU(0.1), two dense layers, one upscale block; per-identity decoders of upscale blocks
[3x3 conv to 4C, LeakyReLU(0.1), pixel shuffle], optional residual blocks, a 5x5 conv and a sigmoid),
same parameter count, same training step: both sides' faces through the shared encoder in one pass,
each side through its own decoder, L1 loss per side summed, global-norm clipping, Adam. It reads the
architecture from core.jaxmodels.presets, so a preset change is picked up here too. Only the speed is
compared: the weights are not loaded from JAX. With `--augment` each step also draws its faces and
augments them as facepair's step does (benchmarks/torch_augment.py: affine, flip, Lab colour jitter,
random warp), so both sides do the same work; without it the step trains on two fixed batches.

Needs the optional extra `bench` (pip install -e '.[bench]' — torch==2.13.0, CPU build).

    python benchmarks/torch_reference.py --preset lite --batch 16 --steps 5 --repeats 3
    python benchmarks/torch_reference.py --preset original --json

`Reference` is what `facepair bench train --torch` times, interleaved with the JAX dispatches
(both layouts, NCHW and channels_last; the faster one is the reference).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build(preset, channels_last: bool = False):
    """The model for a facepair preset, as torch modules: (encoder, decoder_a, decoder_b)."""
    import torch
    from torch import nn

    def act():
        return nn.LeakyReLU(0.1)

    class Upscale(nn.Sequential):
        def __init__(self, cin, cout):
            super().__init__(nn.Conv2d(cin, cout * 4, 3, padding=1), act(), nn.PixelShuffle(2))

    class Residual(nn.Module):
        def __init__(self, ch):
            super().__init__()
            self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
            self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
            self.act = act()

        def forward(self, x):
            return self.act(x + self.conv2(self.act(self.conv1(x))))

    class Encoder(nn.Module):
        def __init__(self, p):
            super().__init__()
            chans = (3, *p.encoder_channels)
            layers = []
            for i in range(len(chans) - 1):
                layers += [nn.Conv2d(chans[i], chans[i + 1], 5, stride=2, padding=2), act()]
            self.convs = nn.Sequential(*layers)
            self.dense1 = nn.Linear(16 * p.encoder_channels[-1], p.dense)
            self.dense2 = nn.Linear(p.dense, 16 * p.bottleneck_channels)
            self.upscale = Upscale(p.bottleneck_channels, p.encoder_upscale)
            self.bottleneck = p.bottleneck_channels

        def forward(self, x):
            x = torch.flatten(self.convs(x), 1)
            x = self.dense2(self.dense1(x)).reshape(-1, self.bottleneck, 4, 4)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.upscale(x)

    class Decoder(nn.Module):
        def __init__(self, p):
            super().__init__()
            chans = (p.encoder_upscale, *p.decoder_channels)
            layers = []
            for i in range(len(chans) - 1):
                layers.append(Upscale(chans[i], chans[i + 1]))
                layers += [Residual(chans[i + 1]) for _ in range(p.residual_blocks)]
            self.body = nn.Sequential(*layers)
            self.out = nn.Conv2d(chans[-1], 4 if p.mask else 3, 5, padding=2)

        def forward(self, z):
            return torch.sigmoid(self.out(self.body(z)))

    mods = (Encoder(preset), Decoder(preset), Decoder(preset))
    if channels_last:
        mods = tuple(m.to(memory_format=torch.channels_last) for m in mods)
    return mods


def param_count(mods) -> int:
    return sum(p.numel() for m in mods for p in m.parameters())


class Reference:
    """The preset's model and optimiser in PyTorch, ready to time: `time_steps(n)` -> seconds."""

    def __init__(self, preset: str, batch: int = 16, channels_last: bool = False, threads: int | None = None,
                 seed: int = 0, augment: bool = False):
        import torch

        from core.jaxmodels.presets import get_preset

        self.torch = torch
        self.preset = p = get_preset(preset)
        self.batch = batch
        self.channels_last = channels_last
        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.mods = build(p, channels_last)
        self.params = [q for m in self.mods for q in m.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=p.lr, foreach=True)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        gen = torch.Generator().manual_seed(seed)
        r = p.resolution
        # Two ready batches (inputs and targets of both sides), alternated.
        self.data = [[torch.rand(batch, 3, r, r, generator=gen).contiguous(memory_format=fmt) for _ in range(4)]
                     for _ in range(2)]
        self.i = 0
        self.loss = float("nan")
        self.augment = None
        if augment:
            from benchmarks.torch_augment import TorchAugment
            from core.jaxmodels.losses import uses_maps
            from core.jaxmodels.step import synthetic_faces

            data = synthetic_faces(p, 64, seed=seed)  # the faces `facepair bench train` gives JAX
            with_maps = uses_maps(p.loss, p.mask)  # as facepair's step: maps only if the loss reads them
            self.augment = (TorchAugment(data.faces_a, data.maps_a, p.augment, channels_last, seed, with_maps),
                            TorchAugment(data.faces_b, data.maps_b, p.augment, channels_last, seed + 1, with_maps))

    def step(self):
        torch, (enc, dec_a, dec_b), b = self.torch, self.mods, self.batch
        if self.augment is not None:
            (in_a, tgt_a, _), (in_b, tgt_b, _) = (side.batch(b) for side in self.augment)
        else:
            in_a, tgt_a, in_b, tgt_b = self.data[self.i % 2]
        self.i += 1
        self.opt.zero_grad(set_to_none=True)
        z = enc(torch.cat([in_a, in_b]))
        out_a, out_b = dec_a(z[:b]), dec_b(z[b:])
        loss = (out_a[:, :3] - tgt_a).abs().mean() + (out_b[:, :3] - tgt_b).abs().mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.preset.clip_norm, foreach=True)
        self.opt.step()
        return loss

    def time_steps(self, n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            loss = self.step()
        self.loss = float(loss.detach())
        return time.perf_counter() - t

    def info(self) -> dict:
        return {"params": param_count(self.mods), "threads": self.torch.get_num_threads(),
                "layout": "channels_last" if self.channels_last else "NCHW", "torch": self.torch.__version__,
                "framework": "pytorch-eager", "augment": self.augment is not None}


def run(preset: str = "lite", batch: int = 16, steps: int = 5, repeats: int = 3, warmup: int = 2,
        channels_last: bool = False, threads: int | None = None, seed: int = 0, augment: bool = False) -> dict:
    """Time `repeats` groups of `steps` training steps (after `warmup` steps); the median group counts.

    images_per_s counts both sides (batch x 2 x steps / seconds), like `facepair bench train`.
    """
    ref = Reference(preset, batch, channels_last, threads, seed, augment)
    t = time.perf_counter()
    ref.time_steps(warmup)
    warm_s = time.perf_counter() - t
    times = sorted(ref.time_steps(steps) for _ in range(repeats))
    med = times[len(times) // 2]
    return {"preset": preset, "batch": batch, "steps": steps, "repeats": repeats,
            "images_per_s": batch * 2 * steps / med, "step_ms": 1e3 * med / steps,
            "step_ms_all": [round(1e3 * x / steps, 1) for x in times], "warmup_s": warm_s,
            "loss": ref.loss, **ref.info()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", nargs="+", default=["lite"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5, help="steps per timed group")
    ap.add_argument("--repeats", type=int, default=3, help="timed groups (the median counts)")
    ap.add_argument("--channels-last", action="store_true", help="channels_last tensors instead of NCHW")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--augment", action="store_true", help="draw and augment each step's faces as facepair does")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    rows = [run(p, a.batch, a.steps, a.repeats, channels_last=a.channels_last, threads=a.threads, augment=a.augment)
            for p in a.preset]
    if a.json:
        print(json.dumps({"torch_train": rows}, indent=2))
    else:
        for r in rows:
            print(f"{r['preset']:9s} batch {r['batch']:3d}  {r['images_per_s']:8.1f} img/s  "
                  f"{r['step_ms']:8.1f} ms/step {r['step_ms_all']}  {r['params']:,} params  "
                  f"torch {r['torch']} threads {r['threads']} {r['layout']}"
                  f"{' augmented' if r['augment'] else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
