"""facepair bench: the frame, and `bench train --json` (tiny preset) with its documented keys.

The training benchmark runs in a fresh interpreter where importing dlib or Textual fails, as on a
bare GPU box that has only jax/flax/optax/orbax: it must not need them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.bench import report as bench
from core.bench import train as bench_train
from core.jaxmodels import xla_cpu

ROOT = Path(__file__).resolve().parent.parent

# Run the CLI with dlib, Textual (and, when asked, torch) made unimportable.
BLOCKED_RUN = r"""
import sys
for name in sys.argv[1].split(","):
    if name:
        sys.modules[name] = None  # `import name` now raises ImportError
from tui.cli.main import main
code = main(sys.argv[2:])
loaded = sorted(m for m in sys.modules
                if (m.split(".")[0] in ("dlib", "textual") or m.startswith("tui.app")) and sys.modules[m])
print("LOADED=" + ",".join(loaded), file=sys.stderr)
sys.exit(code)
"""

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _cli(blocked: list[str], *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-c", BLOCKED_RUN, ",".join(blocked), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_bench() -> dict:
    """One real `facepair bench train --json` run of the tiny preset (with --torch when installed)."""
    args = ["bench", "train", "--preset", "tiny", "--batch", "2", "--steps", "2", "--repeats", "2", "--json"]
    if HAS_TORCH:
        args.append("--torch")
    out = _cli(["dlib", "textual", "textual_plot", "textual_image"], *args)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = [line for line in out.stderr.splitlines() if line.startswith("LOADED=")]
    assert loaded == ["LOADED="], out.stderr[-500:]
    return json.loads(out.stdout)


@pytest.mark.slow
def test_bench_train_json_has_the_documented_keys_without_dlib_or_textual(tiny_bench):
    res = tiny_bench
    m = res["machine"]
    for key in ("cpu", "cores", "memory_gib", "devices", "versions", "load_average"):
        assert key in m, key
    assert m["devices"] == ["cpu"]
    assert {"jax", "flax", "optax", "numpy"} <= set(m["versions"])
    assert "extract" not in res and "convert" not in res  # only what was asked for
    (row,) = res["train"]
    for key in ("preset", "batch", "images_per_s", "step_ms", "compile_s", "device", "flops_per_s", "mfu",
                "flops_per_step", "params", "dtype", "conv", "steps", "step_ms_all"):
        assert key in row, key
    assert row["preset"] == "tiny" and row["batch"] == 2 and row["steps"] == 2
    assert row["device"] == "cpu" and row["dtype"] == "float32" and row["conv"] == "fastconv, " + (
        "XLA kernels" if xla_cpu.eigen_convs() else "YNNPACK kernels")
    from core.jaxmodels.presets import get_preset

    assert row["params"] == get_preset("tiny").param_count
    # images/s is batch x 2 sides x steps / seconds of the median run; step_ms the same run per step
    assert row["images_per_s"] == pytest.approx(2 * 2 * 1000 / row["step_ms"], rel=0.01)
    assert row["step_ms"] > 0 and row["compile_s"] >= 0
    assert len(row["step_ms_all"]) == 2 and min(row["step_ms_all"]) <= row["step_ms"] <= max(row["step_ms_all"])
    # achieved FLOP/s is XLA's count of one step over the step time; no MFU on a CPU (no known peak)
    assert row["flops_per_step"] > 1e6
    assert row["flops_per_s"] == pytest.approx(row["flops_per_step"] / (row["step_ms"] / 1000), rel=0.01)
    assert row["mfu"] is None and row["peak_flops_per_s"] is None
    assert row["loss"] is not None and row["loss"] > 0


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TORCH, reason="the optional `bench` extra (torch) is not installed")
def test_bench_train_torch_reference_is_timed_in_the_same_run(tiny_bench):
    (row,) = tiny_bench["train"]
    assert row["torch_images_per_s"] > 0 and row["torch_step_ms"] > 0
    assert set(row["torch_images_per_s_by_layout"]) == {"NCHW", "channels_last"}
    assert row["torch_images_per_s"] == max(row["torch_images_per_s_by_layout"].values())
    assert row["vs_torch"] == pytest.approx(row["images_per_s"] / row["torch_images_per_s"], rel=0.01)
    # the same work (augmented) and the model alone, each layout timed
    assert set(row["torch_step_ms_all"]) == {"torch NCHW", "torch channels_last", "torch+aug NCHW",
                                             "torch+aug channels_last"}
    assert row["vs_torch_plain"] == pytest.approx(row["images_per_s"] / row["torch_plain_images_per_s"], rel=0.01)


def test_torch_augmentation_does_what_facepairs_does():
    """The augmented PyTorch reference does the same work: the same Lab colour jitter (to float
    rounding), targets unwarped and inputs warped by about as much as facepair's."""
    if not HAS_TORCH:
        pytest.skip("the optional `bench` extra (torch) is not installed")
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    from benchmarks.torch_augment import TorchAugment
    from core.jaxmodels import augment as aug
    from core.jaxmodels.presets import AugmentConfig
    from core.jaxmodels.step import synthetic_faces

    data = synthetic_faces("lite", 8)
    ta = TorchAugment(data.faces_a, data.maps_a, AugmentConfig(), channels_last=False)
    u = torch.rand(8, 4) * 2 - 1
    got = ta._colour(torch.from_numpy(data.faces_a.transpose(0, 3, 1, 2).copy()), u).numpy().transpose(0, 2, 3, 1)
    want = np.asarray(aug.jitter_colour_u8(jnp.asarray(data.faces_a), aug.colour_params(jnp.asarray(u.numpy()),
                                                                                        AugmentConfig())))
    np.testing.assert_allclose(got, want, atol=1e-4)
    inputs, targets, maps = ta.batch(8)
    assert inputs.shape == targets.shape == (8, 3, 64, 64) and maps.shape == (8, 3, 64, 64)
    assert 0 <= float(inputs.min()) and float(inputs.max()) <= 1
    ji, jt, _ = jax.jit(aug.augment, static_argnums=(3, 4))(jax.random.key(0), jnp.asarray(data.faces_a),
                                                            jnp.asarray(data.maps_a), AugmentConfig(), True)
    warp_torch = float((inputs - targets).abs().mean())
    warp_jax = float(jnp.abs(ji - jt).mean())
    assert 0.5 * warp_jax < warp_torch < 2 * warp_jax, (warp_torch, warp_jax)


def test_bench_train_torch_without_torch_says_how_to_install_it():
    out = _cli(["torch"], "bench", "train", "--preset", "tiny", "--torch", timeout=120)
    assert out.returncode == 2
    assert "torch==2.13.0" in out.stderr and "Traceback" not in out.stderr


def test_bench_unknown_preset_is_a_clear_error():
    out = _cli([], "bench", "train", "--preset", "huge", timeout=120)
    assert out.returncode == 2
    assert "unknown preset 'huge'" in out.stderr and "lite" in out.stderr


def test_torch_reference_builds_the_same_architecture():
    """The PyTorch model has exactly the preset's parameter count (lite and original)."""
    if not HAS_TORCH:
        pytest.skip("the optional `bench` extra (torch) is not installed")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch_reference

    from core.jaxmodels.presets import get_preset

    for name in ("lite", "original"):
        p = get_preset(name)
        assert torch_reference.param_count(torch_reference.build(p)) == p.param_count, name


def test_peaks_are_known_for_data_centre_gpus_only():
    assert bench_train.peak_flops("NVIDIA H200", "gpu") == pytest.approx(989.4e12)
    assert bench_train.peak_flops("NVIDIA H100 80GB HBM3", "gpu") == pytest.approx(989.4e12)
    assert bench_train.peak_flops("NVIDIA H100 PCIe", "gpu") == pytest.approx(756e12)
    assert bench_train.peak_flops("NVIDIA A100-SXM4-40GB", "gpu") == pytest.approx(312e12)
    assert bench_train.peak_flops("cpu", "cpu") is None
    assert bench_train.peak_flops("Some Future GPU", "gpu") is None


def test_a_missing_stage_is_reported_not_raised(monkeypatch):
    assert bench.stage_module("no_such_stage") is None
    report = bench.text_report({"machine": bench.machine(with_devices=False), "missing": ["convert"]})
    assert "convert: not part of this build" in report
    with pytest.raises(ValueError, match="unknown benchmark"):
        bench.run(["nope"])


def test_text_report_has_the_header_and_the_train_table():
    row = {"preset": "lite", "batch": 16, "images_per_s": 40.5, "step_ms": 790.1, "compile_s": 12.0,
           "device": "cpu", "conv": "fastconv", "flops_per_s": 2.8e10, "mfu": None,
           "torch_images_per_s": 15.2, "torch_layout": "NCHW", "vs_torch": 2.66}
    text = bench.text_report({"machine": bench.machine(with_devices=False), "train": [row]})
    assert "cpu" in text and "versions" in text
    assert "images/s" in text and "40.5" in text and "28.00 GFLOP/s" in text and "2.66×" in text


def test_the_summary_says_which_targets_are_met():
    result = {
        "train": [{"preset": "lite", "batch": 16, "device": "cpu", "images_per_s": 74.4, "mfu": None,
                   "torch_images_per_s": 107.5, "vs_torch": 0.69, "torch_plain_images_per_s": 120.0,
                   "vs_torch_plain": 0.62}],
        "extract": {"frames": 275, "frames_per_s": 40.6, "faces": 186, "naive_frames_per_s": 9.6,
                    "naive_faces": 168, "ratio": 4.24, "recall": 0.994, "landmark_px": 1.15},
        "convert": {"preset": "lite", "width": 640, "height": 360, "frames": 275, "frames_per_s": 22.0,
                    "decode_fps": 900.0, "infer_fps": 30.0, "merge_fps": 25.0, "encode_fps": 300.0},
    }
    rows = {r[0].split(" (")[0]: r for r in bench.summary_rows(result)}
    assert rows["train lite"][3:] == ["0.69× (0.62× model-only)", "≥ 1× PyTorch", "no"]
    assert "same augmentation" in rows["train lite"][2] and "120.0 model-only" in rows["train lite"][2]
    assert rows["extract"][3].startswith("4.24×") and rows["extract"][5] == "yes"
    assert rows["convert"][1].startswith("22 frames/s") and rows["convert"][5] == "no"
    result["extract"]["recall"] = 0.9  # too few faces found: the ratio alone does not pass
    assert bench.summary_rows(result)[1][5] == "no"
    assert "summary" in bench.text_report({"machine": {}, **result})
