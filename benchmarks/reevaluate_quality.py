"""Measure a `facepair bench quality` run's conversions again with today's evaluation, so figures the
evaluation gained since (the pose and expression tracking errors) exist for runs made before them:

    python benchmarks/reevaluate_quality.py RUN.json [--out NEW.json]

The run's projects must still be where it made them (its `--home`): each row's swapped and
self-swap videos are evaluated as the benchmark's eval stage does (same frames and identity
faces), and the row is rebuilt with its recipe, times and jobs kept. Prints the docs table.
"""
import argparse
import json
from pathlib import Path


def reevaluate(row: dict) -> dict:
    from core.bench.quality import Recipe, make_row
    from core.evaluate.job import evaluate
    from core.project.projects import load_project

    ev = row["eval"]
    home = Path(ev["input"]).parents[2]  # HOME/PROJECT/output/VIDEO
    project = load_project(home, ev["project"])
    new = evaluate(project, ev["input"], original=ev["original"], frames=row["frames"],
                   identity_faces=row["identity_faces"], control=(ev.get("control") or {}).get("video"))
    status = {"preset": row["model"]["preset"], "resolution": row["model"]["resolution"],
              "step": row["model"]["step"], "loss_a": row["model"]["loss_a"], "loss_b": row["model"]["loss_b"],
              "device": row["device"]}
    times = {k: v for k, v in row["seconds"].items() if k != "total"}
    return make_row(new, Recipe(**row["recipe"]), Path(row["a"]), Path(row["b"]), row["faces_extracted"],
                    status, times, row["jobs"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="default: RUN-reevaluated.json beside it")
    args = ap.parse_args()
    from core.bench.quality import markdown, write_document

    doc = json.loads(args.run.read_text())
    doc = {**doc, "rows": [reevaluate(r) for r in doc["rows"]],
           "reevaluated": "python benchmarks/reevaluate_quality.py " + str(args.run)}
    out = write_document(args.out or args.run.with_name(args.run.stem + "-reevaluated.json"), doc)
    print(markdown(doc))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
