"""Warm start: a new model's first weights taken from another project's model.

`facepair train NEW --init-from OTHER` starts NEW's model from OTHER's newest checkpoint instead of
random weights — how users reuse hours of training. The encoder (with LIAE's shared inter block and
its one decoder) always carries over: it describes faces in general. A person's own part (a DF
decoder, LIAE's `inter_a`) carries over only where the same person, by label, is on that side of
OTHER's model too; the rest starts fresh, and so does the optimizer. The model takes OTHER's preset
(its shapes are the weights'). The record of where it came from stays with the model
(`model/init_from.json`) and goes into every export's provenance.
"""

from __future__ import annotations

from core.errors import FacepairError
from core.system.atomic import atomic_write_json, read_json

RECORD = "init_from.json"  # in the model folder


def same_person(x: str, y: str) -> bool:
    return " ".join(x.split()).casefold() == " ".join(y.split()).casefold()


def carried_parts(arch: str, other_labels: dict[str, str], labels: dict[str, str]) -> dict[str, str]:
    """{part of the new model: part of OTHER's model it starts from}. A person's own part comes from
    the side of OTHER where that person is (the same side first)."""
    if arch == "liae":
        parts = {"encoder": "encoder", "inter_ab": "inter_ab", "decoder": "decoder"}
        if same_person(other_labels["a"], labels["a"]):
            parts["inter_a"] = "inter_a"
        return parts
    parts = {"encoder": "encoder"}
    for side in ("a", "b"):
        for theirs in (side, "b" if side == "a" else "a"):
            if same_person(other_labels[theirs], labels[side]):
                parts[f"decoder_{side}"] = f"decoder_{theirs}"
                break
    return parts


def compose(fresh: dict, other: dict, parts: dict[str, str]) -> dict:
    """The new model's parameters: `fresh` with each carried part replaced by OTHER's."""
    return {name: (other[parts[name]] if name in parts else tree) for name, tree in fresh.items()}


def describe(parts: dict[str, str], fresh: dict) -> str:
    kept = [name if src == name else f"{name} (from {src})" for name, src in parts.items()]
    new = [name for name in fresh if name not in parts]
    return "carried over: " + ", ".join(kept) + ("; fresh: " + ", ".join(new) if new else "")


def read_source(project, other_name: str, warn=None) -> tuple[object, int, dict, dict]:
    """(OTHER's project, its newest intact step, that checkpoint's meta, its flat weights)."""
    from core.project.projects import load_project
    from core.train import model_io

    other = load_project(project.home, other_name)
    if other.root.resolve() == project.root.resolve():
        raise FacepairError("--init-from names this project itself: a model cannot start from its own weights")
    found = model_io.read_newest_intact(other, only="params.", warn=warn, move=False)
    if found is None:
        raise FacepairError(f"--init-from {other.name}: that project has no trained model yet "
                            f"(train it first: facepair train {other.name})")
    step, meta, flat = found
    return other, int(step), meta, flat


def record(other, step: int, parts: dict[str, str]) -> dict:
    """What the new model keeps about its origin: the other project, its people and their consent."""
    c = other.consent
    return {"project": other.name, "step": step, "parts": parts,
            "labels": {"a": other.label("a"), "b": other.label("b")},
            "consent": {"statement": c.statement, "by": list(c.by), "recorded": c.recorded}}


def save_record(model_dir, rec: dict) -> None:
    atomic_write_json(model_dir / RECORD, rec)


def load_record(model_dir) -> dict | None:
    path = model_dir / RECORD
    if not path.is_file():
        return None
    try:
        return read_json(path)
    except ValueError:
        return None
