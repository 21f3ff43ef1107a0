"""Starting a run from another run's weights (``--init CKPT``): BasicSR's ``pretrain_network_g``, pix2pixHD's
``--load_pretrain``.

Only the network weights are taken from the checkpoint; step, optimizer and schedule start fresh (that is what
``train.resume`` is for). Loading is strict by default: a checkpoint of another architecture is an error naming
the first mismatch. ``init_strict: false`` loads every tensor whose name and shape fit and prints what it left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_retouch.builtin.store import canonical, is_builtin
from gan_retouch.console import console
from gan_retouch.engine.checkpoint import check_finite, describe_network, load_checkpoint
from gan_retouch.errors import CheckpointError, ConfigError


def _compare(own: dict[str, torch.Tensor], given: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """The keys the model has and the checkpoint lacks, the reverse, and the keys whose shapes differ."""
    missing = [k for k in own if k not in given]
    unexpected = [k for k in given if k not in own]
    mismatched = [f"{k} {tuple(given[k].shape)} in the checkpoint vs {tuple(own[k].shape)} here"
                  for k in own if k in given and getattr(given[k], "shape", None) != own[k].shape]
    return missing, unexpected, mismatched


def _weights(state: dict[str, Any], part: str, key: str, option: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The checkpoint's ``part`` entry, the state dict ``key`` selects from it, and which weights those are."""
    entry = state.get(part)
    if not isinstance(entry, dict) or not isinstance(entry.get("state_dict"), dict):
        raise CheckpointError(f"{option}: {state['path']} holds no {part} (set {option}=null, or give a checkpoint "
                              f"of a run that trained one)")
    ema = state.get("generator_ema") if part == "generator" else None
    if key == "ema" and not ema:
        raise CheckpointError(f"{option}_key=ema, but {state['path']} was trained without EMA; use "
                              f"{option}_key=auto or plain")
    if ema and key in ("auto", "ema"):
        return entry, ema, "EMA weights"
    return entry, entry["state_dict"], "weights"


def _matching_settings(entry: dict[str, Any], spec: dict[str, Any], part: str) -> str:
    """The ``--set`` items that build the checkpoint's network in this run (name and the arguments that differ)."""
    items = [] if entry.get("name") == spec.get("name") else [f"model.{part}.name={entry.get('name')}"]
    own_args = spec.get("args") or {}
    saved_args = entry.get("args") or {}
    items += [f"model.{part}.args.{k}={str(v).lower() if isinstance(v, bool) else v}"
              for k, v in saved_args.items() if own_args.get(k) != v]
    items += [f"model.{part}.args.{k}=null" for k in own_args if k not in saved_args]  # the checkpoint's default
    return " ".join(items)


def load_initial_weights(module: nn.Module, spec: dict[str, Any], part: str, option: str) -> str | None:
    """Load ``spec['init']``'s ``part`` weights (``generator`` or ``discriminator``) into ``module``.

    ``spec`` is the recipe's ``model.generator`` / ``model.discriminator`` entry (``init``, ``init_key``,
    ``init_strict``, ``name``, ``args``); ``option`` its dotted name for messages. Returns a one-line account of
    what was loaded (None without ``init``); raises a CheckpointError when the weights do not fit.
    """
    path = spec.get("init")
    if not path:
        return None
    key, strict = spec.get("init_key", "auto"), spec.get("init_strict", True)  # the option loader checks key
    state = load_checkpoint(path)
    entry, given, which = _weights(state, part, key, option)
    check_finite(given, f"{option}: {state['path']}")
    own = module.state_dict()
    missing, unexpected, mismatched = _compare(own, given)
    source = f"{state['path']} ({describe_network(entry)}, step {state.get('step', '?')})"
    if strict and (missing or unexpected or mismatched):
        first = (f"shape of {mismatched[0]}" if mismatched else f"{missing[0]} is missing from the checkpoint"
                 if missing else f"the checkpoint has {unexpected[0]}, which this {part} lacks")
        raise CheckpointError(
            f"{option}: {source} does not fit this run's {part} {describe_network(spec)}: {first} "
            f"({len(mismatched)} shape mismatches, {len(missing)} missing, {len(unexpected)} unexpected). Build the "
            f"same architecture as the checkpoint (--set {_matching_settings(entry, spec, part) or '...'}), or set "
            f"{option}_strict=false to load only the tensors that fit"
        )
    fitting = {k: v for k, v in given.items() if k in own and getattr(v, "shape", None) == own[k].shape}
    if not fitting:
        raise CheckpointError(f"{option}: not one tensor of {source} fits this run's {part} "
                              f"{describe_network(spec)}; it is another architecture: drop {option}")
    module.load_state_dict(fitting, strict=False)
    account = f"{part} initialised from {source}: {which}, {len(fitting)} of {len(own)} tensors"
    if not strict:
        for label, keys in (("left at their fresh values (missing)", missing),
                            ("not in this network (unexpected)", unexpected), ("skipped (shape)", mismatched)):
            if keys:
                shown = ", ".join(keys[:6]) + (f", ... ({len(keys)} in all)" if len(keys) > 6 else "")
                account += f"\n  {label}: {shown}"
    return account


def resolve_init_path(spec: dict[str, Any], builtin: str = "teacher") -> None:
    """Make ``spec['init']`` absolute (a built-in name canonical, ``builtin`` alone the ``builtin`` role), so the
    run's options.yaml records exactly where its weights came from."""
    if spec.get("init"):
        init = spec["init"]
        spec["init"] = canonical(init, builtin) if is_builtin(init) else str(Path(init).expanduser().resolve())


def initialise(generator: nn.Module, discriminator: nn.Module | None, model_options: dict[str, Any],
               announce: bool) -> None:
    """Apply ``model.generator.init`` and ``model.discriminator.init`` (each optional) before training starts."""
    parts = [("generator", generator, model_options["generator"])]
    if discriminator is not None:
        parts.append(("discriminator", discriminator, model_options["discriminator"]))
    elif model_options["discriminator"].get("init"):
        raise ConfigError("model.discriminator.init is set but model.discriminator.name is null; drop the init")
    for part, module, spec in parts:
        account = load_initial_weights(module, spec, part, f"model.{part}.init")
        if account and announce:
            console.print(account)
    offset = model_options["generator"].get("init_open_map") or 0.0
    if offset:
        if not model_options["generator"].get("init"):
            raise ConfigError(f"model.generator.init_open_map={offset:g} opens the edit map of pretrained weights; "
                              "set model.generator.init (--init CKPT), or set init_open_map=0")
        generator.open_edit_map(offset)
        if announce:
            console.print(f"edit map opened: {offset:+g} on every pixel's logit (model.generator.init_open_map)")
