"""Host streaming chosen from the plan: the faces stay in host memory when, with the face set on the
device, the plan at the batch trained is over the device's memory (less the 10 % margin) and with
them streamed it is within; never on a device that reports no memory (a CPU)."""

from __future__ import annotations

import pytest

from core.train import plan as planner

MIB = 2**20


def _totals(fixed: int, per_face: int, per_batch: int = 0):
    """A stand-in compiled plan (at REF_FACES faces per side): bytes = fixed + faces + batch."""
    def at(batch: int) -> dict:
        faces = per_face * planner.REF_FACES
        return {"params_bytes": fixed // 2, "optimizer_bytes": fixed // 2, "faces_bytes": faces,
                "temp_bytes": per_batch * batch, "total_bytes": fixed + faces + per_batch * batch,
                "flops_per_step": 1.0}
    return at


def test_a_face_set_that_does_not_fit_is_streamed_and_one_that_fits_is_not():
    at = _totals(fixed=100 * MIB, per_face=MIB)  # tiny: 8 steps a call → a streamed call holds 8 × batch faces
    big = planner.choose_stream("tiny", faces=2000, memory=1024 * MIB, batch=8, plan_at=at)
    assert big["streamed"] and big["device_bytes"] == (100 + 2000) * MIB and big["streamed_bytes"] == (100 + 64) * MIB
    assert big["why"].startswith("faces streamed from the host: with the face set (2000 per side) on the device "
                                 "the plan at batch 8 needs 2.05 GiB, over 1.00 GiB less a 10 % margin")
    small = planner.choose_stream("tiny", faces=500, memory=1024 * MIB, batch=8, plan_at=at)
    assert not small["streamed"] and small["why"] is None  # 600 MiB ≤ 921.6 MiB
    # Too big a batch either way: the faces are not the problem; they stay (batch auto shrinks the batch).
    heavy = _totals(fixed=100 * MIB, per_face=MIB, per_batch=200 * MIB)
    assert not planner.choose_stream("tiny", faces=2000, memory=1024 * MIB, batch=8, plan_at=heavy)["streamed"]
    # No memory size (a CPU): never streamed, nothing planned.
    none = planner.choose_stream("tiny", faces=10**6, memory=None, batch=8, plan_at=lambda b: pytest.fail("planned"))
    assert not none["streamed"]


@pytest.mark.slow
def test_the_job_streams_when_its_faces_do_not_fit_a_tiny_device(extracted_project_copy, monkeypatch):
    """A training job on a device that reports 32 MiB, whose plan (a stand-in) needs 1 MiB a face:
    the whole set (28 faces a side here) does not fit, a call's batches (8 steps × 2) do: the job
    streams and says why."""
    from core.jobs import control as jobs
    from core.jobs.events import read_events
    from core.train import devices

    monkeypatch.setattr(devices, "device_memory_bytes", lambda: 32 * MIB)
    at = _totals(fixed=4 * MIB, per_face=MIB)
    monkeypatch.setattr(planner, "step_totals", lambda preset, batch, dtype, cache_path=None: at(batch))
    job = jobs.run_inline(extracted_project_copy, "train", {"preset": "tiny", "batch": 2, "steps": 2,
                                                            "save_every": 2, "preview_every": 100})
    assert job.state == "succeeded", job.reason
    said = [e["text"] for e in read_events(job.events_path) if e["type"] == "message"]
    why = next((t for t in said if t.startswith("faces streamed from the host")), None)
    assert why is not None, said
    faces = int(why.split("(")[1].split(" per side")[0])
    assert 4 + faces > 0.9 * 32 >= 4 + 16  # the set on the device is over 90 % of 32 MiB; 16 streamed faces are not
    assert any("of faces streamed from the host" in t for t in said), said

