"""Synthetic head-motion clips from a still portrait, for the demo and for tests.

`synthesize_clip(portrait, path, ...)` writes an H.264 mp4 in which the portrait moves like a
filmed head: small smooth rotations, zoom and pan (sums of slow sines with seeded phases), light
changes (gain, gamma, a colour tint) and a little sensor noise; optionally with a generated audio
track (a few tones, so audio-copy paths have something to copy). Every stage's tests and the
demo run on such clips, so nothing needs `../shared/data`.

The motion is around `center` (a point of the portrait, e.g. the face), which stays near the
frame centre; `zoom` sets how much of the portrait the frame shows (1 = the portrait's shorter
side fills the frame's). Deterministic for a given seed.
"""

from __future__ import annotations

import math
import os
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Motion:
    rotate_deg: float = 6.0  # peak roll
    zoom: float = 0.06  # peak relative zoom change
    pan: float = 0.04  # peak shift, fraction of the frame's side
    light: float = 0.15  # peak gain change
    gamma: float = 0.1  # peak gamma change
    tint: float = 0.04  # peak per-channel colour shift
    noise: float = 1.5  # sensor noise (std, 0–255 levels)


def _wave(t: np.ndarray, rng: np.random.Generator, periods: tuple[float, ...]) -> np.ndarray:
    """A smooth signal in about [-1, 1]: a sum of sines with random phases."""
    out = np.zeros_like(t, dtype=np.float64)
    for p in periods:
        out += np.sin(2 * math.pi * t / p + rng.uniform(0, 2 * math.pi))
    return out / len(periods)


def head_motion_frames(portrait: np.ndarray, frames: int = 48, size: tuple[int, int] = (320, 240),
                       center: tuple[float, float] | None = None, zoom: float = 1.0, seed: int = 0,
                       motion: Motion = Motion(), fps: float = 24.0) -> list[np.ndarray]:
    """The frames of a clip (RGB uint8, size = (width, height)); see the module notes."""
    import cv2

    portrait = np.ascontiguousarray(portrait[..., :3], dtype=np.uint8)
    h, w = portrait.shape[:2]
    cx, cy = center if center is not None else (w / 2, h / 2)
    fw, fh = size
    base = zoom * max(fw / w, fh / h)
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    rot = motion.rotate_deg * _wave(t, rng, (2.9, 1.7))
    zm = 1 + motion.zoom * _wave(t, rng, (3.7, 2.3))
    px = motion.pan * fw * _wave(t, rng, (2.3, 4.1))
    py = motion.pan * fh * _wave(t, rng, (3.1, 1.9))
    gain = 1 + motion.light * _wave(t, rng, (4.3, 2.7))
    gam = 1 + motion.gamma * _wave(t, rng, (5.3, 3.3))
    tint = motion.tint * np.stack([_wave(t, rng, (6.1, 2.9)) for _ in range(3)], axis=1)
    noise_rng = np.random.default_rng(seed + 1)
    out = []
    for i in range(frames):
        m = cv2.getRotationMatrix2D((cx, cy), float(rot[i]), float(base * zm[i]))
        m[0, 2] += fw / 2 - cx + px[i]
        m[1, 2] += fh / 2 - cy + py[i]
        f = cv2.warpAffine(portrait, m, (fw, fh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        x = f.astype(np.float32) / 255.0
        x = np.clip(x * gain[i] * (1 + tint[i]), 0, 1) ** gam[i]
        x = x * 255.0 + noise_rng.normal(0, motion.noise, x.shape)
        out.append(np.clip(x + 0.5, 0, 255).astype(np.uint8))
    return out


def write_tones(path: str | os.PathLike, seconds: float, rate: int = 22050, seed: int = 0) -> Path:
    """A mono 16-bit WAV of a few soft tones (a stand-in for speech)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    notes = rng.choice([220.0, 262.0, 294.0, 330.0, 392.0], size=max(1, int(seconds * 4)))
    freq = np.repeat(notes, int(math.ceil(n / len(notes))))[:n]
    phase = 2 * math.pi * np.cumsum(freq) / rate
    env = 0.5 + 0.5 * np.sin(2 * math.pi * 4 * t) ** 2
    data = (0.25 * env * np.sin(phase) * 32767).astype("<i2")
    path = Path(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


def synthesize_clip(portrait: np.ndarray, path: str | os.PathLike, frames: int = 48, fps: float = 24.0,
                    size: tuple[int, int] = (320, 240), center: tuple[float, float] | None = None,
                    zoom: float = 1.0, seed: int = 0, audio: bool = False, motion: Motion = Motion()) -> Path:
    """Write a head-motion clip of `portrait` to `path` (mp4); returns the path."""
    from core.media.write import write_video

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clip = head_motion_frames(portrait, frames, size, center, zoom, seed, motion, fps)
    wav = None
    try:
        if audio:
            wav = write_tones(path.with_name(f".{path.stem}.wav"), frames / fps, seed=seed)
        write_video(path, clip, fps, audio_from=str(wav) if wav else None)
    finally:
        if wav is not None:
            wav.unlink(missing_ok=True)
    return path


def astronaut() -> np.ndarray:
    """scikit-image's public-domain astronaut portrait (RGB, 512×512); face near (220, 125)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def grace_hopper() -> np.ndarray:
    """matplotlib's sample portrait of Grace Hopper (RGB, 512×600); face near (255, 240)."""
    import matplotlib.cbook as cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB")).copy()


# Where the face is in each sample portrait, and a zoom that frames head and shoulders.
PORTRAITS = {
    "astronaut": (astronaut, (220.0, 135.0), 1.6),
    "hopper": (grace_hopper, (255.0, 265.0), 0.75),
}


def portrait_clip(name: str, path: str | os.PathLike, frames: int = 48, size: tuple[int, int] = (320, 240),
                  seed: int = 0, audio: bool = False, fps: float = 24.0) -> Path:
    """A clip of one of the sample portraits ('astronaut' or 'hopper'), face centred."""
    load, center, zoom = PORTRAITS[name]
    return synthesize_clip(load(), path, frames=frames, fps=fps, size=size, center=center, zoom=zoom, seed=seed,
                           audio=audio)
