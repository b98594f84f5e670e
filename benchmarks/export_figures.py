"""Figures for docs/export.md: how closely DeepFaceLive's aligner, with the settings an export
records, cuts facepair's crop on real talking-head faces; and how long exporting each preset takes.

    python benchmarks/export_figures.py [--frames 40] [--presets lite original hq128 hq256]

Crop: dlib (HOG + 68 landmarks) on every 5th frame of ../shared/data/talking/*.mp4; for each face,
the largest corner displacement between facepair's crop and DeepFaceLive's (core/export/crop.py
`fit_difference`), as a share of the crop side, for the lite preset's crop (coverage 1.6) and the
extracted crop (2.0). Export: jax2onnx tracing + ONNX check + serialisation of a freshly
initialised model per preset (the time does not depend on the weights), and the file size.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TALKING = ROOT.parent / "shared" / "data" / "talking"


def crop_differences(frames: int) -> dict[float, list[float]]:
    from core.export import crop
    from core.faces import align, detect
    from core.media import read as media

    out: dict[float, list[float]] = {1.6: [], 2.0: []}
    for clip in sorted(TALKING.glob("*.mp4")):
        for fr in media.iter_frames(clip, stop=frames * 5):
            if fr.index % 5:
                continue
            for box in detect.detect(fr.image):
                lms = detect.landmarks(fr.image, box)
                for cov in out:
                    out[cov].append(crop.fit_difference(lms, 256, cov, align.CENTER))
    return out


def export_times(presets: list[str]) -> list[tuple[str, float, int]]:
    from flax import nnx

    from core.export import graph, onnx_file
    from core.jaxmodels.architectures import build_model
    from core.jaxmodels.presets import get_preset
    from core.train.model_io import LoadedModel

    rows = []
    for name in presets:
        p = get_preset(name)
        graphdef, state = nnx.split(build_model(p))
        loaded = LoadedModel(preset=p, step=0, graphdef=graphdef, params=nnx.to_pure_dict(state))
        t = time.perf_counter()
        fn = graph.build(loaded, "dfm", "a-to-b", False, p.coverage or 2.0, (0.490127, 0.62))
        model = onnx_file.trace(fn, p.resolution, *graph.io_names("dfm"), name=name)
        import onnx

        onnx.checker.check_model(model)
        size = len(model.SerializeToString())
        rows.append((name, time.perf_counter() - t, size))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=40, help="frames sampled per clip (every 5th)")
    ap.add_argument("--presets", nargs="*", default=["lite", "original", "hq128", "hq256"])
    args = ap.parse_args()
    diffs = crop_differences(args.frames)
    print("| crop (coverage) | faces | median | p95 | max |")
    print("|---|---|---|---|---|")
    for cov, d in diffs.items():
        a = 100 * np.asarray(d)
        print(f"| {cov} | {len(a)} | {np.median(a):.2f} % | {np.percentile(a, 95):.2f} % | {a.max():.2f} % |")
    print()
    print("| preset | export (trace + check + serialise) | .dfm size |")
    print("|---|---|---|")
    for name, s, size in export_times(args.presets):
        print(f"| {name} | {s:.1f} s | {size / 1e6:.1f} MB |")


if __name__ == "__main__":
    main()
