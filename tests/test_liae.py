"""`facepair train --arch liae` (issue 15's LIAE lever): DeepFaceLab's one-decoder architecture
beside the 2018 shared-encoder / two-decoder model — its wiring, and a model that trains, keeps its
architecture through a resume, converts and exports."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from core.jaxmodels.architectures import make_model, with_arch
from core.jaxmodels.models import count_params, param_counts
from core.jaxmodels.presets import ARCHS, get_preset
from core.jobs import control as jobs
from core.jobs.events import read_events
from tests.fixtures.train import TRAIN_ARGS


def _liae(seed: int = 0):
    p = with_arch(get_preset("tiny"), "liae")
    return p, make_model(p, rngs=nnx.Rngs(seed))


def _faces(n: int, seed: int):
    return jax.random.uniform(jax.random.key(seed), (n, 32, 32, 3))


def test_the_swap_decodes_a_face_from_the_shared_half_of_the_code_twice():
    _, m = _liae()
    xa = _faces(3, 1)
    f = m.encode(xa)
    ab = m.inter_ab(f)
    swap, _ = m(xa, "b")
    by_hand, _ = m.decoder(jnp.concatenate([ab, ab], axis=-1))
    np.testing.assert_allclose(np.asarray(swap), np.asarray(by_hand), atol=1e-6)
    own, _ = m(xa, "a")  # A's reconstruction uses A's own inter block: another face
    assert float(jnp.abs(own - swap).mean()) > 1e-4


def test_both_reconstructions_in_one_pass_equal_each_side_alone():
    _, m = _liae()
    xa, xb = _faces(3, 1), _faces(2, 2)
    (ra, ma), (rb, mb) = m.reconstruct_both(xa, xb)
    for got, want in ((ra, m(xa, "a")[0]), (ma, m(xa, "a")[1]), (rb, m(xb, "b")[0]), (mb, m(xb, "b")[1])):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_b_s_faces_never_train_a_s_inter_block():
    _, m = _liae()
    graphdef, params = nnx.split(m)
    xa, xb = _faces(3, 1), _faces(3, 2)

    def loss(params, side):
        (ra, _), (rb, _) = nnx.merge(graphdef, params).reconstruct_both(xa, xb)
        return jnp.mean(rb if side == "b" else ra)

    def norm(tree):
        return float(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(tree)))

    gb, ga = jax.grad(loss)(params, "b"), jax.grad(loss)(params, "a")
    assert norm(gb["inter_a"]) == 0.0 and norm(gb["inter_ab"]) > 0 and norm(gb["decoder"]) > 0
    assert norm(ga["inter_a"]) > 0 and norm(ga["inter_ab"]) > 0


def test_liae_is_df_s_blocks_rearranged_and_counts_its_parameters():
    p, m = _liae()
    df = make_model(get_preset("tiny"), rngs=nnx.Rngs(0))
    counts = param_counts(m)
    assert set(counts) == {"encoder", "inter_ab", "inter_a", "decoder", "total"}
    assert counts["encoder"] == count_params(df.encoder.convs)
    dense_part = count_params(df.encoder.dense1) + count_params(df.encoder.dense2) + count_params(df.encoder.upscale)
    assert counts["inter_ab"] == counts["inter_a"] == dense_part
    assert counts["total"] == p.param_count == sum(v for k, v in counts.items() if k != "total")
    assert with_arch(get_preset("lite"), "df") == get_preset("lite")  # no change asked, none made


def test_an_unknown_architecture_is_refused_by_the_option_and_the_preset():
    import dataclasses

    from core.jobs import kinds
    from core.jobs.spec import OptionError
    from core.train import options

    assert options.ARCHS == ARCHS
    with pytest.raises(OptionError, match="--arch"):
        kinds.check_args("train", {"arch": "saehd"})
    with pytest.raises(ValueError, match="arch must be one of df, liae"):
        dataclasses.replace(get_preset("tiny"), arch="saehd")


def _preset_config(project) -> dict:
    from core.train import model_io

    m = model_io.checkpoint_manager(model_io.checkpoint_dir(project), read_only=True)
    try:
        return model_io.read_meta(m, m.latest_step())["preset_config"]
    finally:
        m.close()


@pytest.mark.slow
def test_an_liae_model_trains_resumes_converts_and_exports(extracted_project_copy):
    from core.faces.faceset import load_faceset
    from core.train import model_io

    p = extracted_project_copy
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 3, "arch": "liae"})
    assert job.state == "succeeded", job.reason
    config = _preset_config(p)
    assert config["arch"] == "liae" and config["param_count"] == with_arch(get_preset("tiny"), "liae").param_count
    said = [e["text"] for e in read_events(job.events_path) if e["type"] == "message"]
    assert any(t.startswith("architecture liae: ") for t in said), said
    metrics = [e for e in read_events(job.events_path) if e["type"] == "metrics"]
    assert metrics and all(np.isfinite(e["loss_a"]) and np.isfinite(e["loss_b"]) for e in metrics)

    refused = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 6, "arch": "df"})
    assert refused.state == "failed" and "is a liae model (step 3); it cannot continue as --arch df" in refused.reason
    resumed = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 6})
    assert resumed.state == "succeeded", resumed.reason
    assert resumed.result["step"] == 6 and _preset_config(p)["arch"] == "liae"

    swapper = model_io.load_swapper(p)
    faces = load_faceset(p, "a", size=swapper.resolution, limit=4, coverage=swapper.coverage).images
    rgb, mask = swapper.swap(faces, "a-to-b")
    assert rgb.shape == (4, 32, 32, 3) and mask.shape == (4, 32, 32) and np.isfinite(rgb).all()
    own, _ = swapper.swap(faces, "a-to-a")
    assert np.abs(own - rgb).mean() > 1e-4  # A's own code and B's half of it decode differently

    pytest.importorskip("onnxruntime")
    pytest.importorskip("jax2onnx")
    from core.export import job as export

    result = export.export(p, "dfm", "a-to-b", check_faces=4)
    assert result["faces_checked"] == 4 and max(result["max_abs_diff"].values()) <= 1e-3
