"""`--batch auto`: the largest power-of-two batch whose compiled plan fits the device memory less a
10 % margin, found in a few compiles; the default on a GPU, the preset's batch on a CPU; the job says
what it chose and why."""

from __future__ import annotations

import json

import pytest

from core.errors import FacepairError
from core.train import options
from core.train import plan as planner
from tests.test_plan import TINY_FP32_PLANS

MIB = 2**20


def _curve(fixed: int, per: int, jump_at: int | None = None, jump: int = 0):
    """A stand-in plan: bytes = fixed + per × batch (+ a jump from `jump_at` on, as XLA's schedules do)."""
    calls = []

    def total_at(batch: int) -> dict:
        calls.append(batch)
        total = fixed + per * batch + (jump if jump_at and batch >= jump_at else 0)
        return {"total_bytes": total, "params_bytes": fixed // 2, "optimizer_bytes": fixed // 2, "faces_bytes": 0}

    return total_at, calls


@pytest.mark.parametrize("fixed, per, jump_at, jump, unit", [
    (100 * MIB, 5 * MIB, None, 0, 1),      # 1 GiB: (921 − 100) / 5 → 164 → 128
    (100 * MIB, 5 * MIB, 64, 500 * MIB, 1),  # a schedule that jumps at 64: 32
    (10 * MIB, 1 * MIB, None, 0, 8),       # 8 devices: multiples of 8 only
    (2000 * MIB, 1 * MIB, None, 0, 1),     # the weights alone overflow: nothing fits
    (1 * MIB, 1024, None, 0, 1),           # tiny steps: the cap
])
def test_the_search_finds_what_trying_every_batch_finds_in_few_plans(fixed, per, jump_at, jump, unit):
    budget = int(0.9 * 2**30)
    total_at, calls = _curve(fixed, per, jump_at, jump)
    best, tried = planner.search_batch(total_at, budget, start=16, unit=unit)
    every = [unit * 2**k for k in range(11)]
    fitting = [b for b in every if total_at(b)["total_bytes"] <= budget]
    assert best == (max(fitting) if fitting else None)
    assert len(tried) <= 4 and set(tried) == set(calls[:len(tried)])  # each batch planned once
    if best is not None and best < unit * planner.AUTO_CAP:
        assert tried[best]["total_bytes"] <= budget < tried[2 * best]["total_bytes"]


def test_without_a_memory_size_auto_is_the_presets_batch_and_says_so():
    choice = planner.auto_batch("hq128", faces=1000, memory=None, plan_at=lambda b: pytest.fail("planned"))
    assert choice["batch"] == 32 and "the preset's default" in choice["why"] and "no memory size" in choice["why"]


def test_auto_says_what_to_do_when_not_even_one_face_fits():
    total_at, _ = _curve(2 * 2**30, MIB)
    with pytest.raises(FacepairError, match="not even batch 1 fits.*smaller preset"):
        planner.auto_batch("tiny", faces=10, memory=2**30, plan_at=lambda b: total_at(b))


def test_the_batch_option_reads_numbers_and_auto_and_auto_is_the_gpus_default():
    assert options.parse_batch("64") == 64 and options.parse_batch(8) == 8 and options.parse_batch(" Auto ") == "auto"
    assert options.parse_batch(None) is None
    for bad in ("0", "-3", "lots", 0, 2.5):
        with pytest.raises(FacepairError, match="--batch"):
            options.parse_batch(bad)
    assert options.batch_is_auto(None, "gpu") and options.batch_is_auto("auto", "cpu")
    assert not options.batch_is_auto(None, "cpu") and not options.batch_is_auto(16, "gpu")


@pytest.mark.slow
@TINY_FP32_PLANS
def test_auto_on_a_stand_in_device_picks_the_largest_batch_whose_compiled_plan_fits():
    """The real step compiled (tiny, fp32 as on this CPU) for a stand-in 28 MiB device with 1,000 faces
    per side: the pick's plan is ≤ 90 % of it and the next power of two's is over; the search's
    totals (compiled at REF_FACES, the face set added by count) are what a plan at 1,000 faces says."""
    memory = 28 * MIB
    choice = planner.auto_batch("tiny", faces=1000, memory=memory, dtype="float32")
    batch, plans = choice["batch"], choice["plans"]
    assert plans[batch] <= 0.9 * memory < plans[2 * batch]
    assert len(plans) <= 3 and f"{2 * batch} would need" in choice["why"]
    direct = planner.plan("tiny", batch, faces=1000, dtype="float32")
    assert abs(direct["total_bytes"] - plans[batch]) <= 0.01 * direct["total_bytes"]
    assert choice["why"].startswith(f"batch auto: {batch} (plan ") and "of 28.0 MiB with a 10 % margin" in choice["why"]


@pytest.mark.slow
def test_the_job_trains_at_the_batch_auto_chose_and_says_why(extracted_project_copy, monkeypatch):
    """The job with --batch auto on a device that reports 64 MiB (stand-in plans: 4 fits, 8 does not)."""
    from core.jobs import control as jobs
    from core.jobs.events import read_events
    from core.train import devices

    monkeypatch.setattr(devices, "device_memory_bytes", lambda: 64 * MIB)
    per = 12 * MIB

    def totals(preset, batch, dtype, cache_path=None):
        return {"params_bytes": MIB, "optimizer_bytes": 2 * MIB, "faces_bytes": 0, "temp_bytes": per * batch,
                "total_bytes": 3 * MIB + per * batch, "flops_per_step": 1.0}

    monkeypatch.setattr(planner, "step_totals", totals)
    job = jobs.run_inline(extracted_project_copy, "train", {"preset": "tiny", "batch": "auto", "steps": 2,
                                                            "save_every": 2, "preview_every": 100})
    assert job.state == "succeeded", job.reason
    said = [e["text"] for e in read_events(job.events_path) if e["type"] == "message"]
    assert any(t.startswith("batch auto: 4 (plan 51.0 MiB of 64.0 MiB with a 10 % margin; 8 would need 99.0 MiB")
               for t in said), said
    assert any("batch 4 per side" in t for t in said)
    status = json.loads((extracted_project_copy.model_dir / "status.json").read_text())
    assert status["batch"] == 4
