"""Conversion options measured on a quality benchmark's trained models: each variant converts A's
clip as the benchmark does (same frames, `--faces match`) and is evaluated; the model is the same,
so the rows differ only by the option (the seam figure picks colour and blend defaults):

    python benchmarks/convert_options_quality.py HOME [--variant color=none] [--variant blend=poisson,sharpen=0.5]

HOME is the `--home` of a `facepair bench quality` run (its bench-quality-* projects). Without
--variant: the defaults, each colour mode, Poisson blending and two sharpen amounts. Prints a
markdown table and writes HOME/convert-options.json.
"""
import argparse
import json
from pathlib import Path

DEFAULT_VARIANTS = ("", "color=none", "color=histogram", "blend=poisson", "sharpen=0.5", "sharpen=1.0")


def _options(text: str) -> dict:
    from core.bench.quality import parse_option

    return dict(parse_option(t) for t in filter(None, text.split(",")))


def measure(project, variant: str) -> dict:
    from core.bench.quality import MARKER, Recipe
    from core.evaluate.job import evaluate
    from core.jobs import control as jobs
    from core.media.probe import probe
    from core.system.atomic import read_json

    marker = read_json(project.root / MARKER)
    recipe = Recipe(**marker["recipe"])
    a = Path(marker["a"])
    info = probe(a)
    frames = min(int(recipe.frames or info.frames), int(info.frames))
    out = project.root / "output" / f"variant-{variant.replace('=', '-').replace(',', '_') or 'defaults'}.mp4"
    args = {"input": str(a), "end": frames / (info.fps or 25.0), "faces": "match", "output": str(out),
            "overwrite": True, **recipe.convert, **_options(variant)}
    job = jobs.run_inline(project, "convert", args)
    if job.state != "succeeded":
        raise SystemExit(f"{project.name} {variant}: convert failed: {job.reason}")
    ev = evaluate(project, str(out), original=str(a), frames=frames, identity_faces=recipe.identity_faces)
    return {"pair": f"{a.stem} → {Path(marker['b']).stem}", "variant": variant or "defaults",
            "as_b": ev["identity"]["b_share"], "still_a": ev["identity"]["a_share"],
            "expression": ev["expression"]["mean"], "stability": ev["temporal"]["ratio"],
            "detail_64": ev["detail"]["64"]["ratio"], "detail_128": ev["detail"]["128"]["ratio"],
            "seam": ev["seam"]["delta_e_output"], "seam_original": ev["seam"]["delta_e_input"],
            "model_step": ev["model"]["step"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("home", type=Path)
    ap.add_argument("--variant", action="append", default=None, help="KEY=VALUE[,KEY=VALUE…] of the convert job")
    args = ap.parse_args()
    from core.project.projects import load_project, project_names

    rows = []
    for name in sorted(n for n in project_names(args.home) if n.startswith("bench-quality-")):
        project = load_project(args.home, name)
        for variant in args.variant or DEFAULT_VARIANTS:
            rows.append(measure(project, variant))
            print(json.dumps(rows[-1]), flush=True)
    (args.home / "convert-options.json").write_text(json.dumps(rows, indent=1))
    print("| pair | conversion | as B | still A | expression % IOD | stability × | detail 64 px | detail 128 px "
          "| seam ΔE (original) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['pair']} | {r['variant']} | {r['as_b']:.0%} | {r['still_a']:.0%} | {r['expression']:.2f} | "
              f"{r['stability']:.2f} | {r['detail_64']:.0%} | {r['detail_128']:.0%} | {r['seam']:.1f} "
              f"({r['seam_original']:.1f}) |")


if __name__ == "__main__":
    main()
