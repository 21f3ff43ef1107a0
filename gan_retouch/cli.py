"""Command-line parsing only: one function per subcommand, each resolves options and calls into the package.

Every subcommand takes ``--recipe`` (train, distill, test), ``--set KEY=VALUE ...`` and its own flags; a flag is
a shorthand for one option key of options/<command>.yaml, where every option is documented.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any

from rich.markup import escape

from gan_retouch import __version__
from gan_retouch.cli_help import options_help, options_listing
from gan_retouch.config import ECHO_CHARS, deep_merge, find_recipe, option_docs, parse_set_items, resolve
from gan_retouch.config.dotted import put
from gan_retouch.console import console
from gan_retouch.errors import ConfigError, GanRetouchError

# subcommand -> (flags, option key, argparse keyword arguments); the option files document each key.
FLAGS: dict[str, list[tuple[tuple[str, ...], str, dict[str, Any]]]] = {
    "train": [
        (("--resume",), "train.resume", {"action": "store_const", "const": "auto",
                                         "help": "continue from the run folder's latest.pt (train.resume=auto)"}),
        (("--steps",), "train.steps", {"type": int, "help": "total generator steps (train.steps)"}),
        (("--init",), "model.generator.init", {"metavar": "CKPT", "help": "start from this checkpoint's generator "
                                                                       "weights; builtin = the built-in teacher "
                                                                       "(model.generator.init)"}),
    ],
    "distill": [
        (("--teacher",), "distill.teacher", {"help": "teacher checkpoint, or builtin:teacher (distill.teacher)"}),
        (("--resume",), "train.resume", {"action": "store_const", "const": "auto",
                                         "help": "continue from the run folder's latest.pt (train.resume=auto)"}),
        (("--steps",), "train.steps", {"type": int, "help": "total student steps (train.steps)"}),
        (("--init",), "model.generator.init", {"metavar": "CKPT", "help": "start the student from this checkpoint's "
                                                                       "generator weights; builtin = the built-in "
                                                                       "student (model.generator.init)"}),
        (("--budget-mb",), "distill.budget_mb", {"type": float, "help": "student size budget in MB (distill.budget_mb)"}),
        (("--budget-gmacs",), "distill.budget_gmacs", {"type": float,
                                                       "help": "student GMACs budget at 1024x1024 (distill.budget_gmacs)"}),
    ],
    "test": [
        (("--checkpoint",), "test.checkpoints", {"action": "append", "metavar": "CKPT",
                                                 "help": "checkpoint (or builtin:student, builtin:teacher) to score; "
                                                         "repeat to compare (test.checkpoints)"}),
        (("--data",), "data.root", {"metavar": "DIR", "help": "paired test folder (data.root; sets data.source=folder)"}),
        (("--split",), "test.split", {"help": "pairs to score: auto | all | test | val | train (test.split)"}),
        (("--tile",), "inference.tile", {"type": int, "help": "tile size for large images, 0 = off (inference.tile)"}),
        (("--edit-floor",), "inference.edit_floor", {"type": float, "metavar": "F",
                                                "help": "edit-map floor of every model for this run, [0, 1); "
                                                        "default: each checkpoint's (inference.edit_floor)"}),
        (("--work-size",), "inference.work_size", {"type": int, "metavar": "PX",
                                              "help": "longer side at which the networks see each image, 0 = native; "
                                                      "default: each checkpoint's (inference.work_size)"}),
    ],
    "retouch": [
        (("--checkpoint",), "retouch.checkpoint", {"help": "model checkpoint; default builtin:teacher, "
                                                           "builtin (= builtin:student): the shipped models "
                                                           "(retouch.checkpoint)"}),
        (("-o", "--output"), "retouch.output", {"metavar": "DIR", "help": "output folder (retouch.output)"}),
        (("--tile",), "inference.tile", {"type": int, "help": "tile size for large images, 0 = off (inference.tile)"}),
        (("--strength",), "inference.strength", {"type": float, "metavar": "S", "help": "0 = the input, 1 = the "
                                                 "full edit; default: the checkpoint's (inference.strength)"}),
        (("--edit-floor",), "inference.edit_floor", {"type": float, "metavar": "F",
                                                   "help": "edit-map floor for this run, [0, 1); default: the "
                                                           "checkpoint's (inference.edit_floor)"}),
        (("--work-size",), "inference.work_size", {"type": int, "metavar": "PX",
                                                 "help": "longer side at which the network sees each photo, 0 = "
                                                         "native; default: the checkpoint's (inference.work_size)"}),
        (("--overwrite",), "retouch.overwrite", {"action": "store_const", "const": True,
                                                 "help": "allow overwriting existing files (retouch.overwrite)"}),
    ],
    "synth": [
        (("--out",), "synth.out", {"metavar": "DIR", "help": "output folder (synth.out)"}),
        (("--count",), "synth.count", {"type": int, "help": "pairs per split (synth.count)"}),
        (("--size",), "synth.size", {"type": int, "help": "image side in pixels (synth.size)"}),
        (("--clean",), "synth.clean", {"metavar": "DIR", "help": "add defects to your clean photos (synth.clean)"}),
    ],
    "prepare": [
        (("--data",), "data.root", {"metavar": "DIR", "help": "folder of pairs (data.root; sets data.source=folder)"}),
        (("--out",), "prepare.out", {"metavar": "DIR", "help": "new output folder (prepare.out)"}),
        (("--size",), "prepare.size", {"type": int, "help": "sub-image side in px (prepare.size)"}),
        (("--step",), "prepare.step", {"type": int, "help": "px between sub-images (prepare.step)"}),
        (("--format",), "prepare.format", {"help": "npy | png (prepare.format)"}),
    ],
    "bench": [
        (("--checkpoint",), "bench.checkpoint", {"help": "checkpoint to measure, or builtin[:teacher] "
                                                         "(bench.checkpoint)"}),
        (("--model",), "bench.model", {"help": "registry generator to measure with random weights (bench.model)"}),
        (("--size",), "bench.size", {"type": int, "help": "square input side (bench.size)"}),
        (("--precision",), "inference.precision", {"help": "fp32 | fp16 | bf16 (inference.precision)"}),
        (("--work-size",), "inference.work_size", {"type": int, "metavar": "PX",
                                               "help": "longer side at which the network sees the image, 0 = "
                                                       "native; default: the checkpoint's (inference.work_size)"}),
        (("--budget-ms",), "bench.budget_ms", {"type": float, "help": "latency budget in ms (bench.budget_ms)"}),
        (("--budget-mb",), "bench.budget_mb", {"type": float, "help": "fp32 size budget in MB (bench.budget_mb)"}),
        (("--json",), "bench.json", {"action": "store_const", "const": True, "help": "print JSON (bench.json)"}),
    ],
    "export": [
        (("--checkpoint",), "export.checkpoint", {"help": "checkpoint to export, or builtin[:teacher] "
                                                           "(export.checkpoint)"}),
        (("--format",), "export.format", {"help": "onnx | torchscript (export.format)"}),
        (("--out",), "export.out", {"help": "output file (export.out)"}),
        (("--overwrite",), "export.overwrite", {"action": "store_const", "const": True,
                                                "help": "replace an existing output file (export.overwrite)"}),
        (("--fp16",), "export.fp16", {"action": "store_const", "const": True, "help": "export in fp16 (export.fp16)"}),
        (("--edit-floor",), "inference.edit_floor", {"type": float, "metavar": "F",
                                                  "help": "edit-map floor to build in, [0, 1); default: the "
                                                          "checkpoint's (inference.edit_floor)"}),
    ],
}

DESCRIPTIONS = {
    "train": "Train a teacher GAN (or any generator) from a recipe.",
    "distill": "Distill a trained teacher into a lightweight parametric student.",
    "test": "Score models on a test set and write an HTML comparison page under results/.",
    "retouch": "Retouch image files or folders at full resolution: with the built-in teacher by default "
               "(non-commercial licence, docs/builtin.md), or a model you trained.",
    "synth": "Write the built-in synthetic retouching benchmark to disk, or add defects to clean photos.",
    "prepare": "Cut large training pairs into sub-images that load fast (for sets too large for data.cache).",
    "bench": "Measure a model's size, MACs, latency, throughput and memory.",
    "export": "Export a model to ONNX or TorchScript and check it against PyTorch.",
}
RECIPE_COMMANDS = ("train", "distill", "test")
TRAINING_COMMANDS = ("train", "distill")
LONGEST_WORD = 1000  # longer words of an error message are shortened (paths stay whole)

# The command rule (docs/architecture.md): `gan-retouch X` is `run_X` of the module `<package>.X`, its options the
# group X of options/X.yaml. Command -> its package; the module is imported only when the command runs.
COMMAND_PACKAGES = {"train": "gan_retouch", "distill": "gan_retouch", "test": "gan_retouch.evaluate",
                    "retouch": "gan_retouch.deploy", "synth": "gan_retouch.data", "prepare": "gan_retouch.data",
                    "bench": "gan_retouch.deploy", "export": "gan_retouch.deploy"}


def entry_point(command: str) -> Callable[..., int | None]:
    """The function that runs ``command``: ``run_<command>`` of the module ``<package>.<command>``."""
    module = importlib.import_module(f"{COMMAND_PACKAGES[command]}.{command}")
    return getattr(module, f"run_{command}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gan-retouch",
        description="Paired image-to-image GANs for face retouching, and their distillation into fast students.",
        epilog="Run `gan-retouch COMMAND --help` for a command's flags and every option with its default.",
    )
    parser.add_argument("--version", action="version", version=f"gan-retouch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, flags in FLAGS.items():
        sub = commands.add_parser(name, help=DESCRIPTIONS[name], description=DESCRIPTIONS[name], add_help=False)
        sub.add_argument("-h", "--help", action="store_true", help="show this help and every option with its default")
        if name in RECIPE_COMMANDS:
            sub.add_argument("--recipe", help="bundled recipe name (e.g. quickstart) or path to a recipe YAML")
        if name == "distill":
            sub.add_argument("--student", help="student recipe (e.g. student) or a student generator name")
        if name in ("train", "distill"):
            sub.add_argument("--list", action="store_true", help="list the registered networks and losses")
        if name == "retouch":
            sub.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders to retouch")
        sub.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                         help="override options in dotted form, e.g. --set train.lr=2e-4 data.crop=256")
        sub.add_argument("--device", help="auto | cpu | cuda | cuda:N (device)")
        sub.add_argument("--seed", type=int, help="random seed (seed)")
        for flag_names, key, kwargs in flags:
            if kwargs.get("action") not in ("store_const", "append"):
                kwargs = {"metavar": key.rsplit(".", 1)[-1].upper(), **kwargs}
            sub.add_argument(*flag_names, dest=key.replace(".", "__"), **kwargs)
        sub.set_defaults(handler=_run_command, parser=sub)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The command line's options: dedicated flags first, then --set (which wins)."""
    items: dict[str, Any] = {}
    for _, key, _ in FLAGS[args.command]:
        value = getattr(args, key.replace(".", "__"))
        if value is not None:
            items[key] = value
    if args.device is not None:
        items["device"] = args.device
    if args.seed is not None:
        items["seed"] = args.seed
    if args.command in ("test", "prepare") and args.data__root is not None:
        items["data.source"] = "folder"
    nested: dict[str, Any] = {}
    for key, value in items.items():
        put(nested, key, value)
    return deep_merge(nested, parse_set_items(args.set))


def _recipe_and_student(args: argparse.Namespace, overrides: dict[str, Any]) -> str | None:
    """The recipe to load; for distill, ``--student`` names a recipe or a student generator."""
    recipe = getattr(args, "recipe", None)
    student = getattr(args, "student", None)
    if args.command != "distill" or not student:
        return recipe
    try:
        find_recipe(student)
    except ConfigError:
        import gan_retouch.nets  # noqa: F401  (registers the generators)
        from gan_retouch.registry import GENERATORS

        if student not in GENERATORS.names():
            GENERATORS.get(student)  # raises with the valid names
        overrides.setdefault("model", {}).setdefault("generator", {})["name"] = student
        return recipe or "student"
    if recipe:
        raise ConfigError("give the student either as --student RECIPE or as --recipe RECIPE, not both")
    return student


def _list_components() -> int:
    from rich.table import Table

    import gan_retouch.losses  # noqa: F401  (registers the losses)
    import gan_retouch.nets  # noqa: F401  (registers the networks)
    from gan_retouch.registry import DISCRIMINATORS, GENERATORS, LOSSES

    for title, registry in (("generators", GENERATORS), ("discriminators", DISCRIMINATORS), ("losses", LOSSES)):
        table = Table(title=title, title_justify="left")
        table.add_column("name", style="cyan")
        table.add_column("what it is")
        for name in registry.names():
            table.add_row(name, escape(registry.describe(name)))
        console.print(table)
    return 0


def _run_command(args: argparse.Namespace) -> int:
    overrides = _overrides(args)
    recipe = _recipe_and_student(args, overrides)
    if args.help:
        args.parser.print_help()
        options, sources = resolve(args.command, recipe, overrides)
        title = f"options of `gan-retouch {args.command}`" + (f" with recipe {recipe}" if recipe else "")
        console.print(options_help(options, sources, option_docs(args.command), title), soft_wrap=True)
        return 0
    if getattr(args, "list", False):
        return _list_components()
    options, sources = resolve(args.command, recipe, overrides)
    entry = entry_point(args.command)
    if args.command == "retouch":
        return entry(options, args.inputs) or 0
    if args.command in RECIPE_COMMANDS:
        console.print(f"[bold]resolved options[/] of `gan-retouch {args.command}`:")
        console.print(options_listing(options, sources))
    if args.command in TRAINING_COMMANDS:  # on --resume, the run's own schedule holds where these do not set it
        return entry(options, [key for key, source in sources.items() if source == "--set"]) or 0
    return entry(options) or 0


def shorten_words(message: str, longest: int = LONGEST_WORD) -> str:
    """``message`` with every word longer than ``longest`` characters cut to its start and its length: a value
    pasted by mistake (a whole file in a --set) is echoed once and short, whichever module names it."""
    return re.sub(rf"\S{{{longest + 1},}}", lambda word: f"{word[0][:ECHO_CHARS]}...({len(word[0])} characters)",
                  message)


def one_line_warnings(shown: set[str]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints each warning once per command, as one line of the console (Python's
    prints the source line too, and once per calling line: a pair checked for training and for validation
    warned twice)."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        text = shorten_words(str(message))
        if text not in shown:
            shown.add(text)
            console.print(f"[yellow]warning:[/] {escape(text)}")

    return show


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gan-retouch`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = one_line_warnings(set())
        try:
            return args.handler(args)
        except GanRetouchError as exc:
            console.print(f"[bold red]error:[/] {escape(shorten_words(str(exc)))}")
            return exc.exit_code
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            return 130


if __name__ == "__main__":
    sys.exit(main())
