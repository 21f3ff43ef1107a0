"""Benchmark figures in one place: each script records its tables here, and docs/results.md is rendered from them.

A script ends with ``record(...)``: its tables, with the machine, the date, the git commit and the command, go to
``benchmarks/results/<script>.json`` (a list of records, newest first; a record with the same title as an
earlier one replaces it). ``GAN_RETOUCH_RESULTS_DIR`` points the records elsewhere (the tests do). Then::

    python benchmarks/results.py            # render docs/results.md from benchmarks/results/*.json
    python benchmarks/results.py --check    # exit 1 when docs/results.md is stale

From a script in benchmarks/ (run as ``python benchmarks/<script>.py``, so this folder is on the path)::

    from results import record, table
    record("bench_data", [table("pairs per second", ["what", "pairs/s"], rows)], notes=["..."])
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
DOC = REPO / "docs" / "results.md"
ENV_DIR = "GAN_RETOUCH_RESULTS_DIR"
# An absolute path under the folders that hold checkouts, runs and scratch files: never recorded as it is.
# The checkout's own top folder (a CI machine may hold it under /check or /builds) counts as one of them too.
MACHINE_TOPS = sorted({"work", "tmp", "home", "root", "mnt", "scratch", "Users", "data", REPO.parts[1]})
MACHINE_PATH = re.compile(r"(?<![^\s=('\"`,:])/(?:" + "|".join(map(re.escape, MACHINE_TOPS))
                          + r")(?:/[^\s'\"`,;)]*)?")
# What each script measures, in the order docs/results.md shows them (scripts not listed follow, by name).
ABOUT = {
    "recipes": "Training runs of the bundled recipes (`gan-retouch train`, `distill`, `test`): wall time and PSNR.",
    "bench_real": "Real retouching pairs, leave-one-out: pretrained, fine-tuned and from-scratch models.",
    "bench_transfer": "PSNR gain over the identity on synthetic families and blemishes a model never trained on, "
                      "and how far it moves clean real photos.",
    "bench_faces": "Real faces without targets: change inside eyes, brows, mouth, hair and outside the face, and "
                   "the share of red-spot contrast removed and skin texture kept; PSNR gain on the face dev pair.",
    "bench_blemishes": "Rendered blemishes against the red spots real face photos already have: size relative to "
                       "the face and redness (CIELAB a*), measured the same way on both.",
    "bench_inference": "Parameters, size, MACs and latency of the teacher and both students at 1024 px and 4K.",
    "bench_train": "Seconds per training step: the engine against a minimal hand-written loop.",
    "bench_data": "Synthetic pairs/s, folder loading pairs/s, identity baseline of the synthetic validation set.",
    "bench_real_loading": "Quick-start step time on 1024 px pairs against the same pairs at 256 px.",
    "bench_export": "ONNX / TorchScript parity with PyTorch, file size and export time.",
    "bench_test_memory": "Peak resident memory of `gan-retouch test` on one large pair, per pixel of the photo.",
    "retouch_4k": "Start-up and one 4K photo: `gan-retouch retouch` wall time and `gan-retouch --help`, measured by hand.",
    "retouch_folder": "`gan-retouch retouch` on a folder of 1024 px JPEGs: wall and CPU time, measured by hand.",
    "gpu_check": "The GPU paths on one GPU under a time budget: training step (fp32, bf16, fp16, channels_last, "
                 "cudnn.benchmark, compile), torchrun with data time, fp16 latency, ONNX.",
}


def table(caption: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """One table of a record: a caption, column names and rows of cells (numbers or text)."""
    rows = [list(row) for row in rows]
    if any(len(row) != len(columns) for row in rows):
        raise ValueError(f"table {caption!r}: every row needs {len(columns)} cells")
    return {"caption": caption, "columns": list(columns), "rows": rows}


def print_table(block: dict[str, Any]) -> None:
    """A table on the terminal, one line per row (also in a log file): numeric columns right-aligned."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    shown = Table(title=block["caption"], title_justify="left")
    for index, column in enumerate(block["columns"]):
        numeric = all(_text(row[index]).replace(",", "").replace(".", "").lstrip("-+").isdigit() or
                      _text(row[index]) == "-" for row in block["rows"])
        shown.add_column(str(column), justify="right" if numeric and block["rows"] else "left")
    for row in block["rows"]:
        shown.add_row(*(escape(_text(cell)) for cell in row))
    Console(width=200, highlight=False).print(shown)


def machine() -> dict[str, Any]:
    """The machine this process runs on: CPU model, cores, GPU (when torch sees one), torch and Python."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform(terse=True),
                             "python": platform.python_version()}
    if hasattr(os, "getloadavg"):  # other jobs on the cores slow every timing down: say how busy the machine was
        facts["load_average"] = round(os.getloadavg()[0], 1)
    if "torch" in sys.modules:  # a script that measured with torch has it loaded; never import it just for this
        torch = sys.modules["torch"]
        facts["torch"] = torch.__version__
        facts["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return facts


def git_commit() -> str | None:
    """The checkout's commit (short hash, ``+changes`` when its working tree differs), or None outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def portable(text: str) -> str:
    """``text`` (a command, a caption) with each absolute path of this machine as a user would type it: relative
    to the repository inside it, else the placeholder PATH with the path's last part (``PATH/best.pt``)."""
    def shown(match: re.Match[str]) -> str:
        path = Path(match.group(0))
        if path.is_relative_to(REPO):
            return str(path.relative_to(REPO)) if path != REPO else "."
        return f"PATH/{path.name}" if path.name else "PATH"

    return MACHINE_PATH.sub(shown, text)


def command_line() -> str:
    """How this process was started, as a user would type it from the repository root (``portable`` paths)."""
    return portable(shlex.join(["python", sys.argv[0], *sys.argv[1:]]))


def results_dir() -> Path:
    return Path(os.environ.get(ENV_DIR) or RESULTS_DIR)


def record(script: str, tables: Sequence[dict[str, Any]], title: str | None = None, command: str | None = None,
           machine_facts: dict[str, Any] | str | None = None, date: str | None = None,
           notes: Sequence[str] = (), commit: str | None = None) -> Path:
    """Add a record to ``<results>/<script>.json`` (replacing one with the same title) and return the file."""
    entry = {
        "title": title or script,
        "date": date or datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "commit": commit if commit is not None else git_commit(),
        "command": portable(command) if command else command_line(),
        "machine": machine_facts if machine_facts is not None else machine(),
        "tables": [{**block, "caption": portable(block["caption"])} if "caption" in block else block
                   for block in tables],
        "notes": list(notes),
    }
    path = results_dir() / f"{script}.json"
    records = load(path)["records"] if path.is_file() else []
    records = [entry, *(old for old in records if old["title"] != entry["title"])]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(dump({"script": script, "records": records}), encoding="utf-8")
    temporary.replace(path)  # a crash leaves the previous file whole
    print(f"recorded in {path} (docs/results.md: python benchmarks/results.py)")
    return path


SCALAR_LIST = re.compile(r"\[\n\s+((?:[^\[\]{}\n]+,\n\s+)*[^\[\]{}\n]+)\n\s+\]")


def dump(data: dict[str, Any]) -> str:
    """JSON with every list of plain values on one line (a table row is one line: small diffs)."""
    text = json.dumps(data, indent=1, ensure_ascii=False)
    return SCALAR_LIST.sub(lambda match: "[" + re.sub(r",\n\s+", ", ", match.group(1)) + "]", text) + "\n"


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise ValueError(f"{path} is not a results file: it needs a 'records' list")
    return data


def _text(value: Any) -> str:
    text = "-" if value is None else (f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value))
    return text.replace("\n", " ")


def _cell(value: Any) -> str:
    """A Markdown table cell."""
    return _text(value).replace("|", "\\|")


def _machine_text(facts: dict[str, Any] | str) -> str:
    if isinstance(facts, str):
        return facts
    parts = [f"{facts.get('cpu', '?')} ({facts.get('cores', '?')} cores)"]
    if facts.get("gpu"):
        parts.append(str(facts["gpu"]))
    parts += [f"{key} {facts[key]}" for key in ("torch", "python", "system") if facts.get(key)]
    if facts.get("load_average") is not None:
        parts.append(f"load average {facts['load_average']} when recorded")
    return ", ".join(parts)


def render_record(entry: dict[str, Any]) -> list[str]:
    lines = [f"### {entry['title']}", "", f"- date: {entry['date']}",
             f"- machine: {_machine_text(entry['machine'])}",
             f"- commit: {entry['commit'] or 'not recorded'}"]
    commands = entry["command"] if isinstance(entry["command"], list) else [entry["command"]]
    lines += [f"- command: `{command}`" for command in commands]
    for block in entry["tables"]:
        lines += ["", f"*{block['caption']}*", "", "| " + " | ".join(_cell(c) for c in block["columns"]) + " |",
                  "| " + " | ".join("---" for _ in block["columns"]) + " |"]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in block["rows"]]
    if entry["notes"]:
        lines += ["", *(f"- {note}" for note in entry["notes"])]
    return [*lines, ""]


def render(folder: Path = RESULTS_DIR) -> str:
    """docs/results.md from every ``<script>.json`` in ``folder``."""
    files = {path.stem: load(path) for path in sorted(folder.glob("*.json"))}
    order = [name for name in ABOUT if name in files] + sorted(set(files) - set(ABOUT))
    lines = ["# Results", "",
             "The project's measured figures, each with the machine, date, commit and command it was measured with.",
             "Generated by `python benchmarks/results.py` from `benchmarks/results/*.json`, which the benchmark",
             "scripts write (how to run each: [benchmarks/README.md](../benchmarks/README.md)); do not edit by hand.",
             "Timings from a shared machine say so; compare ratios measured in one run rather than absolute times.",
             "How the recipes' settings were chosen, and older figures measured on code that has changed since:",
             "[history.md](history.md).", ""]
    lines += [f"- [{name}](#{name}): {ABOUT.get(name, '')}".rstrip(": ") for name in order]
    lines.append("")
    for name in order:
        records = sorted(files[name]["records"], key=lambda entry: str(entry["date"]), reverse=True)
        lines += [f"## {name}", "", ABOUT.get(name, ""), ""] if name in ABOUT else [f"## {name}", ""]
        for entry in records:
            lines += render_record(entry)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/results.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        stale = not DOC.is_file() or DOC.read_text(encoding="utf-8") != text
        if stale:
            print(f"{DOC} is stale: run python benchmarks/results.py")
        return int(stale)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
