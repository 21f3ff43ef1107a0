"""The edit strength a run saves when ``inference.strength`` is ``auto``: chosen after training on what ``data.holdout``
kept out of it, so that a model never ships an edit that made its held-out pixels worse than the input.

Each checkpoint of the run (latest.pt, and best.pt when it holds other weights) is run at full strength on the
held-out pairs (or on every pair, scored on its held-out cells) through the plan it saves, the gain over the
identity is computed at every strength of ``inference.strength.STRENGTHS``, and the strength at which the pair
that gains least gains most is written into the checkpoint's plan (its ``inference`` block): 0 when some pair is
worse than the identity at every strength.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_retouch.console import console
from gan_retouch.data import build_dataset
from gan_retouch.data.holdout import HOLDOUT
from gan_retouch.engine.checkpoint import build_generator, load_checkpoint, save_checkpoint
from gan_retouch.errors import ConfigError
from gan_retouch.inference.plan import InferencePlan, saved_plan
from gan_retouch.inference.run import run_plan
from gan_retouch.inference.strength import STRENGTHS, best_strength, strength_gains

CHECKPOINTS = ("latest.pt", "best.pt")


@dataclass(frozen=True)
class StrengthChoice:
    """The chosen strength, the mean held-out gain at it and at strength 1 (dB), each pair's gain at it, what was
    scored (in words), and the pairs no strength above 0 improves."""

    strength: float
    gain: float
    full_gain: float
    pairs: dict[str, float]
    scored: str
    losing: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        """The figures for metrics.json."""
        return {"strength": self.strength, "holdout_gain_db": self.gain, "holdout_gain_full_db": self.full_gain,
                "holdout_pairs_db": self.pairs, "holdout": self.scored}

    def message(self, files: str) -> str:
        """One line for the end of the run."""
        if self.strength == 0.0:
            worse = f"; worse at every strength: {', '.join(self.losing)}" if self.losing else ""
            return (f"[red]no edit strength beats the identity on every one of {self.scored}[/] (at strength 1: "
                    f"{self.full_gain:+.3f} dB on average{worse}): strength 0 saved in {files}, so the model leaves "
                    "photos as they are. More pairs that show the edit, or other training settings, may help.")
        return (f"edit strength {self.strength:g} chosen on {self.scored}: {self.gain:+.3f} dB over the identity there "
                f"(at strength 1: {self.full_gain:+.3f} dB); saved in {files}")


def check_strength(options: dict[str, Any]) -> None:
    """Before step 1: ``inference.strength: auto`` needs pixels kept out of training to choose on."""
    if options["inference"].get("strength") == "auto" and options["data"].get("holdout", "none") == "none":
        raise ConfigError("inference.strength=auto chooses the edit strength on pairs or regions the run does not train "
                          "on: set data.holdout=auto (or pairs | regions), or give inference.strength a number in [0, 1]")


def choose_strength(generator: nn.Module, plan: InferencePlan, dataset: Any, device: torch.device) -> StrengthChoice:
    """The best strength of ``generator`` under ``plan`` on the held-out ``dataset`` (``data.holdout.HeldOut``)."""
    names, gains = [], []
    full = replace(plan, strength=1.0)
    for index in range(len(dataset)):
        item = dataset[index]
        x, target = item["input"][None].to(device), item["target"][None].to(device)
        region = item.get("region")
        output = run_plan(full, generator, x).float()
        gains.append(strength_gains(x, output, target, None if region is None else region.to(device)))
        names.append(str(item["name"]))
    strength, gain = best_strength(gains)
    chosen = STRENGTHS.index(strength)
    scored = (f"the held-out cells of {len(names)} pair(s) (one grid cell in four)" if dataset.regions
              else f"{len(names)} held-out pair(s) ({', '.join(names)})")
    losing = tuple(name for name, g in zip(names, gains, strict=True) if max(g[1:]) <= 0)
    return StrengthChoice(strength, gain, sum(g[-1] for g in gains) / len(gains),
                          {name: g[chosen] for name, g in zip(names, gains, strict=True)}, scored, losing)


def calibrate_run(options: dict[str, Any], run_dir: Path, device: torch.device) -> StrengthChoice:
    """Choose and save the strength of each checkpoint of the run; the choice for best.pt (else latest.pt)."""
    dataset = build_dataset(options["data"], HOLDOUT, int(options["seed"]),
                            face_width=options["inference"].get("face_width") or None)
    choices: dict[int, StrengthChoice] = {}
    written, chosen = [], None
    for name in CHECKPOINTS:
        path = run_dir / name
        if not path.is_file():
            continue
        state = load_checkpoint(path, device)
        step = int(state["step"])
        if step not in choices:
            generator = build_generator(state["generator"]).to(device)
            generator.load_state_dict(state.get("generator_ema") or state["generator"]["state_dict"])
            choices[step] = choose_strength(generator.eval(), saved_plan(state), dataset, device)
        chosen = choices[step]
        state["inference"] = {**saved_plan(state).to_dict(), "strength": chosen.strength}
        state.pop("path")
        save_checkpoint(state, path)
        written.append(name)
    console.print(chosen.message(" and ".join(written)))
    return chosen
