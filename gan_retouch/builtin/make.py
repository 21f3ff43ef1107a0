"""``python -m gan_retouch.builtin.make``: the built-in teacher and student from training checkpoints (maintainers).

    python -m gan_retouch.builtin.make --teacher checkpoints/<teacher run>/best.pt \\
        --student checkpoints/<student run>/best.pt --record builtin_record.yaml

For each model: the generator's weights only (the EMA weights when the checkpoint has them, as ``--init`` takes them;
no optimizer, discriminator, adapters or RNG state), stored in fp16 unless ``--dtype float32`` (refused when fp16
moves the outputs on the check pairs by more than ``--tolerance``), then the manifest: generator, inference plan,
sha256 and size of the weights, where they came from, the training record, the licence, and the score on the
check pairs (``builtin.score``), measured on the files as written and loaded back. Both files together must fit
``--budget-mb``. ``--rescore`` only measures the files already in ``--out`` again and rewrites each manifest's
score (after a change of the renderer that draws the check pairs). See docs/builtin.md.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from gan_retouch.builtin import store
from gan_retouch.builtin.score import check_pairs, max_difference, score
from gan_retouch.console import console
from gan_retouch.engine.checkpoint import (
    build_generator,
    describe_network,
    load_checkpoint,
    load_state_strict,
)
from gan_retouch.errors import CheckpointError, ConfigError, GanRetouchError
from gan_retouch.fileio import atomic_write
from gan_retouch.inference.plan import saved_plan

RECORD_FIELDS = ("command", "data", "time", "scores")  # free text the maintainer fills, per model
LICENCE = {
    "name": "CC BY-NC-SA 4.0",
    "url": "https://creativecommons.org/licenses/by-nc-sa/4.0/",
    "use": "non-commercial use only",
    "why": "the weights follow the licences of the photos they were trained on: FFHQ images (Flickr-Faces-HQ) "
           "are CC BY-NC-SA 4.0; the gan-retouch code itself is MIT",
}
DTYPES = {"float16": torch.float16, "float32": torch.float32}


def read_record(path: Path) -> dict[str, Any]:
    """The training record YAML: ``teacher:`` and ``student:``, each with the RECORD_FIELDS as text (and any
    other notes); an optional ``licence:`` mapping replaces LICENCE (it must name ``name`` and ``use``)."""
    try:
        record = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"--record {path}: cannot read it ({exc})") from exc
    if not isinstance(record, dict):
        raise ConfigError(f"--record {path}: expected a mapping with teacher: and student:")
    for role in store.ROLES:
        entry = record.get(role)
        missing = [key for key in RECORD_FIELDS if not isinstance(entry, dict) or not str(entry.get(key) or "").strip()]
        if missing:
            raise ConfigError(f"--record {path}: {role}.{missing[0]} is missing or empty; every model records "
                              f"{', '.join(RECORD_FIELDS)} (free text)")
    licence = record.get("licence", LICENCE)
    if not isinstance(licence, dict) or not all(str(licence.get(key) or "").strip() for key in ("name", "use")):
        raise ConfigError(f"--record {path}: licence must be a mapping with at least name and use")
    return record


def generator_weights(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], bool]:
    """A checkpoint's generator state dict (its EMA weights when it has them) and whether they are the EMA's."""
    entry = state.get("generator")
    if not isinstance(entry, dict) or not isinstance(entry.get("state_dict"), dict):
        raise CheckpointError(f"{state['path']} holds no generator")
    ema = state.get("generator_ema")
    return (dict(ema), True) if ema else (dict(entry["state_dict"]), False)


SOURCE_KINDS = {"teacher": ("train",), "student": ("distill", "train")}  # a student may also be trained directly


def checked_source(path: str, role: str) -> dict[str, Any]:
    """The training checkpoint of ``role``: a file of a kind that makes one (``SOURCE_KINDS``: a distillation
    checkpoint is no teacher), never a built-in name (the built-in files are what this writes)."""
    if store.is_builtin(path):
        raise ConfigError(f"--{role} {path}: give a training checkpoint (checkpoints/<run>/best.pt), not a built-in name")
    state = load_checkpoint(path)
    if state.get("kind") not in SOURCE_KINDS[role]:
        made_by = " or ".join(f"`gan-retouch {kind}`" for kind in SOURCE_KINDS[role])
        raise CheckpointError(f"--{role} {state['path']} is a checkpoint of kind {state.get('kind')!r}; the {role} "
                              f"comes from {made_by}")
    return state


def built(entry: dict[str, Any], weights: dict[str, torch.Tensor], source: str) -> nn.Module:
    """The generator of ``entry`` with ``weights`` loaded strictly, in eval mode."""
    network = build_generator(entry)
    load_state_strict(network, weights, f"generator {describe_network(entry)}", source)
    return network.eval()


def stored_bytes(weights: dict[str, torch.Tensor], dtype: torch.dtype) -> bytes:
    """The weights file: floating tensors in ``dtype``, the others (BatchNorm counters) as they are."""
    plain = {key: (value.to(dtype) if value.is_floating_point() else value).detach().cpu().contiguous().clone()
             for key, value in weights.items()}
    buffer = io.BytesIO()
    torch.save(plain, buffer)
    return buffer.getvalue()


def run_name(path: str) -> str:
    """``<run>/<file>`` of a checkpoint path: where it came from, without this machine's folders."""
    parts = Path(path).parts
    return "/".join(parts[-2:])


def prepare(role: str, path: str, dtype: str, tolerance: float, pairs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One model: its weights file's bytes and the manifest fields known before writing, after the fp16 check."""
    state = checked_source(path, role)
    weights, ema = generator_weights(state)
    entry = {"name": state["generator"]["name"], "args": dict(state["generator"].get("args") or {})}
    plan = saved_plan(state)
    reference = built(entry, weights, state["path"])
    data = stored_bytes(weights, DTYPES[dtype])
    difference = 0.0
    if dtype != "float32":
        narrowed = store.widened(torch.load(io.BytesIO(data), weights_only=True))
        difference = max_difference(reference, built(entry, narrowed, state["path"]), plan, pairs)
        if difference > tolerance:
            raise ConfigError(f"{role}: {dtype} storage moves the outputs on the check pairs by up to "
                              f"{difference:.2g} (> --tolerance {tolerance:g}); use --dtype float32 or a larger tolerance")
    source = {"checkpoint": run_name(state["path"]), "step": state.get("step"), "ema_weights": ema,
              "kind": state.get("kind")}
    if role == "student":
        teacher = ((state.get("options") or {}).get("distill") or {}).get("teacher")
        source["distilled_from"] = run_name(str(teacher)) if teacher else None
    parameters = sum(value.numel() for value in weights.values() if value.is_floating_point())
    return {"data": data, "manifest": {
        "format": store.MANIFEST_FORMAT, "role": role, "kind": store.KINDS[role], "generator": entry,
        "inference": plan.to_dict(), "step": state.get("step"),
        "weights": {"file": f"{role}.pt", "bytes": len(data), "dtype": dtype, "parameters": parameters,
                    "max_output_change": round(difference, 6)},
        "source": source}}


def write_model(role: str, prepared: dict[str, Any], out: Path, record: dict[str, Any],
                pairs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Write ``<role>.pt``, load it back as a user would, score it, then write ``<role>.json``; returns the
    manifest."""
    manifest = prepared["manifest"]
    path = atomic_write(out / f"{role}.pt", prepared["data"])
    manifest["weights"]["sha256"] = store.sha256_of(path)
    manifest["record"] = {key: value for key, value in record[role].items()}
    manifest["licence"] = record.get("licence", LICENCE)
    state = {"path": str(path), "builtin": f"{store.PREFIX}:{role}"}
    network = built(manifest["generator"], store.read_weights(store.verify_weights(manifest, out), role), str(path))
    manifest["score"] = score(network, saved_plan({**state, "inference": manifest["inference"]}), pairs)
    write_manifest(manifest, out)
    return manifest


def write_manifest(manifest: dict[str, Any], out: Path) -> None:
    """``<role>.json`` in ``out``, atomically."""
    atomic_write(out / f"{manifest['role']}.json", (json.dumps(manifest, indent=2) + "\n").encode())


def rescore(out: Path) -> dict[str, dict[str, Any]]:
    """Score the built-in files in ``out`` again (their hashes checked first) and rewrite each manifest's score."""
    pairs = check_pairs()
    manifests = {}
    for role in store.ROLES:
        manifest = store.read_manifest(role, out)
        path = store.verify_weights(manifest, out)
        network = built(manifest["generator"], store.read_weights(path, role), str(path))
        manifest["score"] = score(network, saved_plan({"path": str(path), "inference": manifest["inference"]}), pairs)
        write_manifest(manifest, out)
        manifests[role] = manifest
    return manifests


def make(teacher: str, student: str, record_path: Path, out: Path, dtype: str = "float16",
         tolerance: float = 2 / 255, budget_mb: float = 10.0) -> dict[str, dict[str, Any]]:
    """Both built-in models into ``out`` (see the module docstring); nothing is written when a check fails."""
    record = read_record(record_path)
    pairs = check_pairs()
    prepared = {role: prepare(role, path, dtype, tolerance, pairs)
                for role, path in (("teacher", teacher), ("student", student))}
    total = sum(len(entry["data"]) for entry in prepared.values())
    if total > budget_mb * 1e6:
        sizes = ", ".join(f"{role} {len(entry['data']) / 1e6:.2f} MB" for role, entry in prepared.items())
        raise ConfigError(f"the built-in models take {total / 1e6:.2f} MB ({sizes}), over --budget-mb {budget_mb:g}: "
                          "train a smaller teacher, or store in float16")
    out.mkdir(parents=True, exist_ok=True)
    return {role: write_model(role, entry, out, record, pairs) for role, entry in prepared.items()}


def main(argv: list[str] | None = None) -> int:
    """The command line; a failure is one line and exit status 2."""
    parser = argparse.ArgumentParser(prog="python -m gan_retouch.builtin.make", description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", help="the teacher's training checkpoint (gan-retouch train)")
    parser.add_argument("--student", help="its student's checkpoint (gan-retouch distill)")
    parser.add_argument("--record", type=Path,
                        help="YAML: teacher: and student:, each with command, data, time, scores (free text)")
    parser.add_argument("--rescore", action="store_true",
                        help="only score the files in --out again and rewrite the manifests' score")
    parser.add_argument("--out", type=Path, default=store.PACKAGE_DIR,
                        help="folder to write into (default: the package's gan_retouch/builtin/)")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float16", help="storage of the weights")
    parser.add_argument("--tolerance", type=float, default=2 / 255,
                        help="largest output change fp16 storage may cause on the check pairs (in [0, 1] units)")
    parser.add_argument("--budget-mb", type=float, default=10.0, help="both weights files together, in MB")
    args = parser.parse_args(argv)
    if not args.rescore and not (args.teacher and args.student and args.record):
        parser.error("give --teacher, --student and --record (or --rescore)")
    try:
        manifests = (rescore(args.out) if args.rescore else
                     make(args.teacher, args.student, args.record, args.out, args.dtype, args.tolerance,
                          args.budget_mb))
    except GanRetouchError as exc:
        console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        return exc.exit_code
    for manifest in manifests.values():
        result = manifest["score"]
        console.print(f"wrote {args.out / manifest['weights']['file']} ({manifest['weights']['bytes'] / 1e6:.2f} MB, "
                      f"{manifest['weights']['dtype']}, {describe_network(manifest['generator'])}): check pairs "
                      f"{result['psnr']:.2f} dB, identity {result['identity_psnr']:.2f} dB, gain "
                      f"{result['gain_db']:+.2f} dB", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
