"""`gan-retouch test`: score checkpoints on a test split at full resolution and write the comparison page.

Output: ``<results_root>/<name>/<split>_<tag>/`` with ``index.html``, ``images/``, ``metrics.csv`` and
``metrics.json``. The folder is written under a temporary name and renamed when complete, and an existing
folder is never touched: a second run gets ``..._2``, ``..._3``. The identity baseline (output = input) is a row
of every table, so every number has its reference.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_retouch.config import check_saved, check_unused_inference, option_defaults, with_inference
from gan_retouch.console import console
from gan_retouch.data.folders import SPLIT_NAMES
from gan_retouch.engine.distributed import (
    DistInfo,
    bind_device,
    decided_on_main,
    gathered_on_main,
    init_distributed,
    shutdown,
)
from gan_retouch.engine.load import load_model
from gan_retouch.errors import ConfigError
from gan_retouch.evaluate.page import write_page
from gan_retouch.evaluate.scoring import Scored, score_pairs, slug
from gan_retouch.evaluate.tables import IDENTITY, summarise, summary_table, write_tables
from gan_retouch.evaluate.validation import resolve_lpips
from gan_retouch.fileio import ensure_writable_dir, remove_stale_temps, temp_path
from gan_retouch.inference.plan import InferencePlan

MAX_TAG_LENGTH = 60
TEST_FIELDS = ("work_size", "coarse_pass", "edit_floor", "face_width", "protect_features", "tile", "tile_overlap")


@dataclass
class Model:
    """A loaded checkpoint: the network, its short tag (folder names), its label (tables, page) and its plan."""

    network: nn.Module
    tag: str
    label: str
    path: str
    info: dict[str, Any]
    plan: InferencePlan


def checkpoint_tag(path: str | Path) -> str:
    """``<run folder>-<file stem>`` (``checkpoints/quick/best.pt`` -> ``quick-best``); a folder -> its name."""
    path = Path(path)
    if path.is_dir():
        return slug(path.name)
    return slug(f"{path.parent.name}-{path.stem}" if path.parent.name else path.stem)


def results_tag(tags: list[str]) -> str:
    """One checkpoint: its tag. Several: ``a_vs_b_vs_c``, or ``a_vs_N-more-<hash>`` when that is too long."""
    joined = "_vs_".join(tags)
    if len(joined) <= MAX_TAG_LENGTH:
        return joined
    digest = hashlib.sha1(joined.encode()).hexdigest()[:8]
    return f"{tags[0][:30]}_vs_{len(tags) - 1}-more-{digest}"


def unused_folder(folder: Path) -> Path:
    """``folder`` if it does not exist yet, else the first free ``folder_2``, ``folder_3``, ..."""
    candidate, number = folder, 2
    while candidate.exists():
        candidate = folder.with_name(f"{folder.name}_{number}")
        number += 1
    return candidate


def load_models(paths: list[str], use_ema: bool, device: torch.device, settings: dict[str, Any]) -> list[Model]:
    """Every checkpoint as a Model on ``device``, each under its own inference plan with the ``test`` options
    ``settings`` applied (``TEST_FIELDS`` of the ``inference`` group: ``work_size`` 0 = native, ``edit_floor``,
    ``coarse_pass``, faces, tiling; the PyTorch network in fp32, at the checkpoint's strength). Labels are unique (a repeated tag gets ``#2``) and name the overrides."""
    if not paths:
        raise ConfigError("no checkpoint to test: give one or more --checkpoint PATH (test.checkpoints)")
    overrides = {**settings, "precision": "fp32", "backend": "torch", "memory_mb": None}  # strength: the saved one
    models: list[Model] = []
    for path in paths:
        loaded = load_model(path, {**overrides, "use_ema": use_ema}, "inference", device)
        network, info, plan, source = loaded.network, loaded.info, loaded.plan, loaded.source
        tag = checkpoint_tag(info.get("builtin", path))  # builtin -> builtin-student
        label = tag if tag not in {m.tag for m in models} else f"{tag}#{len(models) + 1}"
        label += " (ema)" if info.get("used_ema") else ""
        label += f" (strength {plan.strength:g})" if plan.strength != 1.0 else ""
        label += f" (floor {plan.edit_floor:g})" if settings.get("edit_floor") is not None else ""
        label += f" (work size {plan.work_size or 'native'})" if settings.get("work_size") is not None else ""
        label += f" (coarse pass {'on' if plan.coarse_pass else 'off'})" if settings.get("coarse_pass") is not None else ""
        models.append(Model(network.to(device).eval(), tag, label, source, info, plan))
    return models


def scoring_data_options(options: dict[str, Any], first: Model) -> tuple[dict[str, Any], str]:
    """The data options to score on, and where they came from.

    When the test options leave ``data`` at its defaults (no --data, no recipe data), the first checkpoint's
    own data options are used, so that the test split is the one the model was trained next to.
    """
    saved = (first.info.get("options") or {}).get("data")
    if options["data"] == option_defaults("test")["data"] and isinstance(saved, dict):
        check_saved("test", {"data": saved}, f"the data options saved in {first.path}")
        return saved, f"the data options saved in {first.path}"
    return options["data"], "the test options"


def scoring_split(asked: str, data: dict[str, Any], data_source: str) -> str:
    """The split to score: ``auto`` means every pair of a folder the user pointed at (its ``test/`` when it has
    split subfolders), and the test split of synthetic data or of the data a checkpoint was trained on."""
    if asked != "auto":
        return asked
    if data["source"] == "synthetic" or data_source != "the test options":
        return "test"
    root = Path(str(data["root"]))
    return "test" if any((root / name).is_dir() for name in SPLIT_NAMES) else "all"


def run_test(options: dict[str, Any]) -> int:
    """Score ``test.checkpoints`` on ``test.split`` and write ``results/<name>/<split>_<tag>/``; under torchrun
    each process scores every WORLD_SIZE-th pair and rank 0 writes the tables and the page of all of them."""
    info = init_distributed(options["device"])
    owned: list[Path] = []  # the hidden folder the page is written in until it is complete
    try:
        return score_and_write(options, owned, info)
    finally:  # Ctrl-C or an error: no half-written page is left behind (a SIGKILLed one: by the next run)
        for partial in owned:
            shutil.rmtree(partial, ignore_errors=True)
        shutdown(info)


def score_and_write(options: dict[str, Any], owned: list[Path], info: DistInfo) -> int:
    """``run_test``'s work; ``owned`` gets the temporary folder of the page as soon as it is named."""
    check_unused_inference(options, "test", TEST_FIELDS, "it scores every model at its saved strength, in fp32 "
                           "through PyTorch")
    settings = with_inference(options, "test")
    device = bind_device(options["device"], info)
    models = load_models(list(settings["checkpoints"]), settings["use_ema"], device, settings)
    data, data_source = scoring_data_options(options, models[0])
    split = scoring_split(settings["split"], data, data_source)
    from gan_retouch.data import build_dataset

    dataset = build_dataset(data, split, options["seed"])
    count = len(dataset) if settings["count"] is None else min(len(dataset), settings["count"])
    if count <= 0:
        raise ConfigError(f"the {split} split has no images to score (test.count={settings['count']})")
    lpips_model, lpips_note = resolve_lpips(settings["lpips"], "test.lpips", options["pretrained"]["offline"])
    lpips_model = lpips_model.to(device) if lpips_model is not None else None
    name = options["name"]
    if name == "test":  # the default: name results after the first checkpoint's run
        name = slug(str((models[0].info.get("options") or {}).get("name") or "test"))
    results = ensure_writable_dir(Path(options["results_root"]) / name, "results folder")

    def place() -> tuple[Path, Path]:  # on rank 0 alone: one folder name for every rank
        final = unused_folder(results / f"{split}_{results_tag([m.tag for m in models])}")
        remove_stale_temps(results)  # the pages of runs killed outright (SIGKILL) before they were complete
        return final, temp_path(final)  # .NAME.PID.tmp: hidden, and named after this process

    final, partial = decided_on_main(place, info)
    ranks = f", {info.world_size} processes of a torchrun launch" if info.world_size > 1 else ""
    if info.is_main:
        console.print(f"scoring {', '.join(m.label for m in models)} on {count} {split} pairs "
                      f"({data['source']} data from {data_source}) on {device}{ranks}")
    owned.append(partial)
    share = list(range(info.rank, count, info.world_size))  # each pair, and so each image file, on one rank
    mine = score_pairs(dataset, share, models, settings, device, lpips_model, partial)
    if info.world_size > 1:
        console.print(f"rank {info.rank} of {info.world_size}: scored {len(mine)} pairs")
    scored = sorted(gathered_on_main(mine, info), key=lambda pair: pair.index)
    if info.is_main:
        write_results(options, name, split, count, data, device, models, scored, lpips_note, partial, final)
    decided_on_main(lambda: None, info)  # every rank waits until rank 0 has moved the page into place
    if partial.exists():  # a node that does not share rank 0's disk: its own images under the same name
        os.replace(partial, final)
    return 0


def write_results(options: dict[str, Any], name: str, split: str, count: int, data: dict[str, Any],
                  device: torch.device, models: list[Model], scored: list[Scored], lpips_note: str | None,
                  partial: Path, final: Path) -> None:
    """The tables and the page of every scored pair, written in ``partial`` and moved to ``final``."""
    settings = with_inference(options, "test")
    rows, per_image = [pair.row for pair in scored], [pair.metrics for pair in scored]
    labels = [IDENTITY, *(m.label for m in models)]
    summary = summarise(per_image, labels)
    notes = [lpips_note] if lpips_note else []
    if not any("psnr_mask" in values for values in summary.values()):
        notes.append("PSNR inside/outside the defect mask not computed: this data has no defect masks (data.mask_dir).")
    facts = {
        "split": split,
        "count": count,
        "data": data,
        "device": str(device),
        "tile": settings["tile"],
        "checkpoints": [{"label": m.label, "path": m.path, "step": m.info.get("step"), "used_ema": m.info.get("used_ema"),
                         "plan": m.plan.to_dict()} for m in models],
        "notes": notes,
        "written": datetime.now().isoformat(timespec="seconds"),
    }
    write_tables(partial, [row.name for row in rows], per_image, summary, facts)
    details = {
        "checkpoints": ", ".join(f"{m.label} = {m.path} (step {m.info.get('step')})" for m in models),
        "split": f"{split} ({count} images)",
        "data": data["root"] or data["source"],
        "diff heatmaps": f"|output - target| x {settings['diff_gain']:g}",
        "PSNR": "RGB mean, MAX 1" + ("; PSNR-Y on BasicSR's Y channel, no border crop" if settings["y_channel"] else ""),
        "written": facts["written"],
    }
    write_page(partial, rows, summary, title=f"{name}: {split} split", details=details, notes=notes,
               page_size=settings["page_size"])
    os.replace(partial, final)
    console.print(summary_table(summary, f"{split} split, mean over {count} images"))
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"results: [bold]{final / 'index.html'}[/]")
