"""Leave-one-out on a folder of real pairs: does a model learn a retoucher's style from the other pairs?

For each pair of ``--data`` (``source/`` + ``target/``, or any layout ``data.source=folder`` reads), the other pairs
form a training folder and that pair is scored at full resolution, next to the identity baseline (output =
input), in up to three ways:

- ``pretrained``: the ``--pretrained`` checkpoint as it is (e.g. the quick-start teacher, trained on synthetic
  faces only);
- ``finetune``: ``gan-retouch train --recipe finetune --init PRETRAINED`` on the other pairs;
- ``scratch``: ``gan-retouch train --recipe quickstart`` from scratch on the other pairs;
- ``student``: ``gan-retouch distill --student student_finetune`` from that fold's ``finetune`` teacher (so it
  needs ``finetune`` in ``--ways``), started from ``--student-init`` when given, else from the recipe's built-in
  student.

Every step runs the CLI exactly as a user would (``train``, then ``test --data``), so the figures are the user's.
The training folder of fold i has ``train/`` (the other pairs) and ``val/`` (the same pairs again: validation
never sees the held-out pair); ``test/`` holds the held-out pair. Files are symlinked, never copied.

It prints one row per held-out pair (identity PSNR, each way's gain over it in dB, and the edit strength each
fine-tune or student saved, chosen on what its own fold kept out), the mean gain and the training times, records
them in ``benchmarks/results/bench_real.json`` (docs/results.md; ``--no-record`` to skip) and writes every figure
to ``real.json`` under ``--out``.

Run:
    python benchmarks/bench_real.py --data DIR --pretrained checkpoints/quickstart/best.pt
    python benchmarks/bench_real.py --data DIR --pretrained CKPT --ways finetune --folds 0,2 --set train.steps=300
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from gan_retouch.cli import main as cli_main
from gan_retouch.config import resolve
from gan_retouch.data.folders import find_pairs

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results.py, also when loaded by file path
import results  # noqa: E402

WAYS = ("pretrained", "finetune", "scratch", "student")
TRAIN_RECIPES = {"finetune": "finetune", "scratch": "quickstart"}


def link_pairs(records: list[Any], folder: Path) -> None:
    """Symlink each pair's input and target into ``folder/source`` and ``folder/target`` (same stems)."""
    for side in ("source", "target"):
        (folder / side).mkdir(parents=True, exist_ok=True)
    for record in records:
        (folder / "source" / record.input.name).symlink_to(record.input.resolve())
        (folder / "target" / (record.input.stem + record.target.suffix)).symlink_to(record.target.resolve())


def make_fold(records: list[Any], held_out: int, folder: Path) -> Path:
    """``folder/{train,val,test}``: the other pairs to train (and validate) on, the held-out pair to score."""
    others = [r for i, r in enumerate(records) if i != held_out]
    for split, chosen in (("train", others), ("val", others), ("test", [records[held_out]])):
        if not (folder / split).exists():
            link_pairs(chosen, folder / split)
    return folder


def run_cli(arguments: list[str]) -> None:
    """One gan-retouch command; a non-zero exit stops the benchmark with the command that failed."""
    code = cli_main(arguments)
    if code != 0:
        raise SystemExit(f"bench_real: `gan-retouch {' '.join(arguments)}` exited with {code}")


def score(checkpoint: Path, fold: Path, out: Path, name: str) -> dict[str, float]:
    """``gan-retouch test`` of ``checkpoint`` on the fold's held-out pair: identity and model PSNR."""
    results = out / "results"
    run_cli(["test", "--checkpoint", str(checkpoint), "--data", str(fold), "--split", "test",
             "--set", f"name={name}", f"results_root={results}", "test.lpips=false"])
    page = sorted((results / name).glob("test_*/metrics.json"), key=lambda p: p.stat().st_mtime)[-1]
    summary = json.loads(page.read_text())["summary"]
    identity, model = list(summary)  # the page's first column is the identity baseline, then the model
    return {"identity": summary[identity]["psnr"], "model": summary[model]["psnr"]}


def train(way: str, fold: Path, out: Path, name: str, pretrained: str, extra: list[str]) -> tuple[Path, float]:
    """Train ``way``'s recipe on the fold's other pairs; the checkpoint to score and the wall time in seconds."""
    arguments = ["train", "--recipe", TRAIN_RECIPES[way], "--set", "data.source=folder", f"data.root={fold}",
                 f"name={name}", f"checkpoints_root={out / 'checkpoints'}", "val.lpips=false", *extra]
    if way == "finetune":
        arguments[3:3] = ["--init", pretrained]
    start = time.perf_counter()
    run_cli(arguments)
    run = out / "checkpoints" / name
    return (run / "best.pt" if (run / "best.pt").exists() else run / "latest.pt"), time.perf_counter() - start


def distill(fold: Path, out: Path, name: str, teacher: Path, student_init: str | None,
            extra: list[str]) -> tuple[Path, float]:
    """Distil ``student_finetune`` from the fold's fine-tuned ``teacher``; the checkpoint and the wall time."""
    arguments = ["distill", "--teacher", str(teacher), "--student", "student_finetune", "--set",
                 "data.source=folder", f"data.root={fold}", f"name={name}", f"checkpoints_root={out / 'checkpoints'}",
                 "val.lpips=false", *extra]
    if student_init:
        arguments[5:5] = ["--init", student_init]
    start = time.perf_counter()
    run_cli(arguments)
    run = out / "checkpoints" / name
    return (run / "best.pt" if (run / "best.pt").exists() else run / "latest.pt"), time.perf_counter() - start


def saved_strength(checkpoint: Path) -> float | None:
    """The edit strength a run chose on what it kept out (its ``metrics.json``); None when it chose none."""
    metrics = checkpoint.parent / "metrics.json"
    return json.loads(metrics.read_text()).get("strength") if metrics.is_file() else None


def leave_one_out(args: argparse.Namespace) -> list[dict[str, Any]]:
    data = resolve("train", None, {"data": {"source": "folder", "root": str(args.data), "cache": False,
                                            "alignment": "off"}})[0]["data"]
    records, _ = find_pairs(data, "all")
    if len(records) < 2:
        raise SystemExit(f"bench_real: {args.data} holds {len(records)} pair(s); leave-one-out needs at least 2")
    folds = range(len(records)) if args.folds is None else [int(i) for i in args.folds.split(",")]
    rows, teachers = [], {}
    for index in folds:
        fold = make_fold(records, index, args.out / f"fold_{index}")
        row: dict[str, Any] = {"pair": records[index].name}
        for way in args.ways:
            name = f"{way}_{index}"
            if way == "pretrained":
                checkpoint, seconds = Path(args.pretrained), 0.0
            elif way == "student":
                checkpoint, seconds = distill(fold, args.out, name, teachers[index], args.student_init,
                                              args.student_set)
            else:
                checkpoint, seconds = train(way, fold, args.out, name, args.pretrained, args.set)
            if way == "finetune":
                teachers[index] = checkpoint
            scores = score(checkpoint, fold, args.out, name)
            row["identity"] = scores["identity"]
            row[way] = scores["model"] - scores["identity"]
            row[f"{way}_seconds"] = seconds
            if way != "pretrained":
                row[f"{way}_strength"] = saved_strength(checkpoint)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def gain_table(rows: list[dict[str, Any]], ways: list[str], data: Path) -> dict[str, Any]:
    """One row per held-out pair (identity PSNR, each way's gain over it) and the mean, as a results table."""
    chose = [w for w in ways if any(row.get(f"{w}_strength") is not None for row in rows)]
    cells = [[row["pair"], f"{row['identity']:.2f}", *(f"{row[w]:+.3f}" for w in ways),
              *(f"{row[f'{w}_strength']:g}" for w in chose)] for row in rows]
    mean = lambda key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    cells.append(["mean", f"{mean('identity'):.2f}", *(f"{mean(w):+.3f}" for w in ways), *("" for _ in chose)])
    trained = [w for w in ways if w != "pretrained"]
    if trained:
        cells.append(["training minutes (mean)", "", *(f"{mean(f'{w}_seconds') / 60:.1f}" if w in trained else ""
                                                       for w in ways), *("" for _ in chose)])
    return results.table(f"held-out pairs of {data}: PSNR gain over the identity (output = input), dB",
                         ["held-out pair", "identity dB", *(f"{w} gain" for w in ways),
                          *(f"{w} strength (chosen in the fold)" for w in chose)], cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of real pairs (source/ + target/)")
    parser.add_argument("--pretrained", default="builtin:teacher",
                        help="checkpoint to score and to fine-tune from (default: the built-in teacher)")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated subset of {', '.join(WAYS)}")
    parser.add_argument("--folds", default=None, help="comma-separated held-out pair indices (default: all)")
    parser.add_argument("--out", type=Path, default=Path("bench_real"), help="work folder (runs, results, json)")
    parser.add_argument("--set", nargs="*", default=[], help="extra --set overrides for the training runs")
    parser.add_argument("--student-init", default=None, help="student checkpoint the student way starts from "
                        "(default: the recipe's, the built-in student)")
    parser.add_argument("--student-set", nargs="*", default=[], help="extra --set overrides for the student runs")
    parser.add_argument("--no-record", action="store_true", help="print only; do not write benchmarks/results/")
    args = parser.parse_args()
    args.ways = [w.strip() for w in args.ways.split(",")]
    unknown = sorted(set(args.ways) - set(WAYS))
    if unknown:
        parser.error(f"unknown way(s) {unknown}; valid: {', '.join(WAYS)}")
    if "student" in args.ways and ("finetune" not in args.ways
                                   or args.ways.index("student") < args.ways.index("finetune")):
        parser.error("the student way distils the finetune way's teacher: list finetune before student in --ways")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = leave_one_out(args)
    block = gain_table(rows, args.ways, args.data)
    results.print_table(block)
    (args.out / "real.json").write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=2))
    if not args.no_record:
        folds = "all pairs" if args.folds is None else f"held-out pairs {args.folds}"
        extra = f"; --set {' '.join(args.set)}" if args.set else ""
        results.record("bench_real", [block], title=f"{args.data.name}: {', '.join(args.ways)} ({folds}{extra})")


if __name__ == "__main__":
    main()
