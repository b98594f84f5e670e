"""The raw weights of a `facepair bench quality` run's models, measured as the run measured its EMA.

A run trained with `--train-opt ema_decay=D` converts with the moving average of the weights (the
default). This converts the same frames again with `convert --weights raw` (A→B and the A→A
control), evaluates them the same way, and writes a run file of those rows, so one training run
gives both figures:

    python benchmarks/quality_raw_weights.py --home /tmp/bqE RUN.json --out RAW.json
    facepair bench quality --from RAW.json      # the table
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.bench import quality as bq  # noqa: E402


def measure_raw(home: Path, row: dict, recipe: bq.Recipe) -> dict:
    from core.jobs import control as jobs
    from core.media.probe import probe
    from core.project.projects import load_project
    from core.train import model_io

    a, b = Path(row["a"]), Path(row["b"])
    project = load_project(home, bq.project_name(a, b))
    frames = int(row["frames"])
    end = frames / (probe(a).fps or 25.0)
    cargs = {"input": str(a), "end": end, "faces": "match", **recipe.convert, "weights": "raw",
             "output": str(project.root / "output" / f"{a.stem}_a-to-b_raw.mp4"), "overwrite": True}
    times, ids, results = {}, {}, {}
    for label, extra in (("convert", {}), ("control", {"swap": "a-to-a", "output": str(
            project.root / "output" / f"{a.stem}_a-to-a_raw.mp4")})):
        t = time.monotonic()
        job = jobs.run_inline(project, "convert", {**cargs, **extra})
        if job.state != "succeeded":
            raise SystemExit(f"{label} failed: {job.reason}")
        times[label], ids[label], results[label] = round(time.monotonic() - t, 2), job.id, job.result
    t = time.monotonic()
    ev = jobs.run_inline(project, "eval", {"input": results["convert"]["output"], "original": str(a),
                                           "frames": frames, "identity_faces": int(recipe.identity_faces),
                                           "control": results["control"]["output"]})
    if ev.state != "succeeded":
        raise SystemExit(f"eval failed: {ev.reason}")
    times["eval"], ids["eval"] = round(time.monotonic() - t, 2), ev.id
    times = {"extract": row["seconds"].get("extract"), "train": row["seconds"].get("train"), **times}
    out = bq.make_row(ev.result, recipe, a, b, row["faces_extracted"], model_io.read_status(project) or {},
                      times, {**row["jobs"], **ids})
    out["weights"] = "raw"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="the bench quality run file (its models are still in --home)")
    ap.add_argument("--home", required=True, help="the --home the run used")
    ap.add_argument("--out", required=True, help="where the raw-weights run file goes")
    a = ap.parse_args()
    doc = json.loads(Path(a.run).read_text())
    recipe = bq.Recipe(**doc["recipe"])
    started = time.time()
    rows = [measure_raw(Path(a.home), row, recipe) for row in doc["rows"]]
    command = " ".join(["python", *sys.argv])
    bq.write_document(Path(a.out), bq.result_document(rows, recipe, command, started) | {"of_run": doc["command"]})
    print(bq.markdown(json.loads(Path(a.out).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
