"""Real faces without targets: does a model remove real spots, keep the skin's texture, and leave eyes, brows,
mouth, hair and everything outside the face alone?

Each model retouches every photo of ``--faces`` and the sources of the face pair(s) in ``--pair`` (``source/`` +
``target/``, same stems) by running ``gan-retouch retouch`` itself (its checkpoint's saved plan, with the
``--set`` overrides, e.g. ``retouch.work_size=512``; PNG outputs in a work folder), so the figures are what a user
gets. ``--identity`` adds the baseline row (output = input). Per model it prints:

- on the dev pair: the PSNR gain over the identity (dB) and the mean change inside the pair's eyes (/255);
- per photo and the mean: the mean change (/255) inside the eyes, brows, mouth, hair and outside the face
  (``gan_retouch.synth.regions``), and the spot score on face skin: the number of red spots found, the share of
  their redness contrast removed and the share of the skin texture kept (``face_scores.py`` defines them).

Photos without a face found are named and left out. ``--crops DIR`` writes, per model and photo, 100 % crops
(input | output | 4x |output - input|) around the strongest spots and one eye, and a mask overlay per photo
(``parts_<photo>.png``: eyes green, brows yellow, mouth magenta, hair blue, skin red, outside grey).
``--record`` writes the tables to benchmarks/results/bench_faces.json (docs/results.md).

Run:
    python benchmarks/bench_faces.py --identity --checkpoint checkpoints/quickstart/best.pt --crops crops/
    python benchmarks/bench_faces.py --checkpoint CKPT --set retouch.work_size=512 --faces DIR --pair DIR
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_retouch.cli import main as cli_main
from gan_retouch.data.io import PixelLimit, is_image_file
from gan_retouch.deploy.image_files import read_photo
from gan_retouch.imaging import image_row, save_image
from gan_retouch.metrics import psnr
from gan_retouch.synth.regions import FaceParts, face_parts

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, also when loaded by file path
from face_scores import region_changes, spot_score  # noqa: E402

import results  # noqa: E402

LIMIT = PixelLimit(200_000_000, "bench_faces")
UNCHANGED = ("eyes", "brows", "mouth", "hair", "outside")
CROP = 256  # side of the 100 % crops, px
SPOT_CROPS = 3  # crops around the strongest spots per photo
OVERLAY = {"eyes": (0, 1, 0), "brows": (1, 1, 0), "mouth": (1, 0, 1), "hair": (0, 0.4, 1), "skin": (1, 0, 0),
           "outside": (0.5, 0.5, 0.5)}


def images_in(folder: Path) -> list[Path]:
    """Every image under ``folder``, sorted; a clear exit when there is none."""
    found = sorted(p for p in folder.rglob("*") if is_image_file(p)) if folder.is_dir() else []
    if not found:
        raise SystemExit(f"bench_faces: {folder} holds no PNG/JPEG/WebP images; give --faces or --pair a folder")
    return found


def retouched(model: str, folder: Path, work: Path, overrides: list[str]) -> Path:
    """``gan-retouch retouch folder -o work --checkpoint model`` (PNG outputs); the output folder."""
    arguments = ["retouch", str(folder), "-o", str(work), "--checkpoint", model, "--set", "retouch.format=png",
                 "retouch.overwrite=true", *overrides]
    if cli_main(arguments) != 0:
        raise SystemExit(f"bench_faces: `gan-retouch {' '.join(arguments)}` failed (see above)")
    return work


def output_of(source: Path, folder: Path, outputs: Path | None, image: torch.Tensor) -> torch.Tensor:
    """The retouched copy of ``source`` (None = the identity: ``image`` itself)."""
    if outputs is None:
        return image
    path = (outputs / source.relative_to(folder)).with_suffix(".png")
    if not path.is_file():
        raise SystemExit(f"bench_faces: retouch wrote no {path} for {source}")
    return read_photo(path, LIMIT)[0]


def crop_strip(source: torch.Tensor, output: torch.Tensor, centre: tuple[float, float], side: int) -> torch.Tensor:
    """input | output | 4x |output - input| of the ``side`` px square around ``centre``, at 100 %."""
    height, width = source.shape[-2:]
    side = min(side, height, width)
    top = min(max(int(centre[1]) - side // 2, 0), height - side)
    left = min(max(int(centre[0]) - side // 2, 0), width - side)
    window = (slice(None), slice(top, top + side), slice(left, left + side))
    a, b = source[window], output[window]
    return image_row([a, b, ((b - a).abs() * 4).clamp(0, 1)])


def overlay(image: torch.Tensor, parts: FaceParts, side: int = 768) -> torch.Tensor:
    """The photo and its part masks tinted over it, side by side, the long side ``side`` px."""
    scale = min(1.0, side / max(image.shape[-2:]))
    small = F.interpolate(image[None], scale_factor=scale, mode="area")[0] if scale < 1 else image
    tinted = small.clone()
    for name, colour in OVERLAY.items():
        mask = F.interpolate(parts.masks[name][None], size=small.shape[-2:], mode="area")[0]
        tinted = tinted * (1 - 0.45 * mask) + 0.45 * mask * torch.tensor(colour)[:, None, None]
    return image_row([small, tinted])


def score_photo(source: torch.Tensor, output: torch.Tensor, parts: FaceParts) -> dict:
    """Changes per part (/255) and the spot score of one retouched photo."""
    row = region_changes(source, output, {name: parts.masks[name] for name in (*UNCHANGED, "skin")})
    row.update(spot_score(source, output, parts.masks["skin"], parts.face.w))
    return row


def write_crops(crops: Path, label: str, stem: str, source: torch.Tensor, output: torch.Tensor, parts: FaceParts,
                centres: list[tuple[int, int]]) -> None:
    crops.mkdir(parents=True, exist_ok=True)
    for index, centre in enumerate(centres[:SPOT_CROPS]):
        save_image(crop_strip(source, output, centre, CROP), crops / f"{label}_{stem}_spot{index}.png")
    x0, y0, x1, y1 = parts.eye_boxes[0]
    side = min(max(CROP, int(x1 - x0), int(y1 - y0)), 3 * CROP)
    save_image(crop_strip(source, output, ((x0 + x1) / 2, (y0 + y1) / 2), side), crops / f"{label}_{stem}_eye.png")


def pair_score(source: Path, folder: Path, outputs: Path | None) -> dict:
    """PSNR gain over the identity on one dev pair and the change inside its eyes (/255)."""
    image = read_photo(source, LIMIT)[0]
    targets = [p for p in (folder.parent / "target").glob(source.stem + ".*") if is_image_file(p)]
    if not targets:
        raise SystemExit(f"bench_faces: {source} has no target in {folder.parent / 'target'} (same stem)")
    target = read_photo(targets[0], LIMIT)[0]
    output = output_of(source, folder, outputs, image)
    gain = float(psnr(output[None], target[None]) - psnr(image[None], target[None]))
    parts = face_parts(image)
    eyes = region_changes(image, output, {"eyes": parts.masks["eyes"]})["eyes"] if parts else float("nan")
    return {"gain": gain, "eyes": eyes}


def mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else float("nan")


def fmt(value: float, kind: str) -> str:
    if math.isnan(value):
        return "-"
    return {"pct": f"{100 * value:.0f} %", "db": f"{value:+.2f}", "lvl": f"{value:.2f}"}[kind]


def measure(args: argparse.Namespace, models: list[tuple[str, str | None]], work: Path) -> dict[str, dict]:
    """Every model's retouch of every photo and pair, scored; {label: {"photos": {stem: row}, "pair": row}}."""
    photos, sources = images_in(args.faces), images_in(args.pair / "source")
    outputs = {label: (None, None) if model is None else
               (retouched(model, args.faces, work / label / "faces", args.set),
                retouched(model, args.pair / "source", work / label / "pair", args.set))
               for label, model in models}
    scores: dict[str, dict] = {label: {"photos": {}, "pair": {}} for label, _ in models}
    for label, _ in models:
        rows = [pair_score(source, args.pair / "source", outputs[label][1]) for source in sources]
        scores[label]["pair"] = {key: mean([row[key] for row in rows]) for key in ("gain", "eyes")}
    for path in photos:
        name = str(path.relative_to(args.faces))
        image = read_photo(path, LIMIT)[0]
        parts = face_parts(image)
        if parts is None:
            print(f"bench_faces: no face found in {path}; not scored", flush=True)
            continue
        if args.crops:
            args.crops.mkdir(parents=True, exist_ok=True)
            save_image(overlay(image, parts), args.crops / f"parts_{path.stem}.png")
        for label, _ in models:
            output = output_of(path, args.faces, outputs[label][0], image)
            row = score_photo(image, output, parts)
            scores[label]["photos"][name] = row
            if args.crops:
                write_crops(args.crops, label, path.stem, image, output, parts, row["centres"])
        print(f"{name}: {parts.found}, " + ", ".join(
            f"{label} removed {fmt(scores[label]['photos'][name]['removed'], 'pct')}" for label, _ in models),
            flush=True)
    return scores


def tables(scores: dict[str, dict], args: argparse.Namespace) -> list[dict]:
    """A summary table (one row per model) and one table per model (one row per photo and the mean)."""
    columns = ["photo", "spots", "removed", "texture kept", *(f"{part} /255" for part in UNCHANGED)]
    summary, blocks = [], []
    for label, score in scores.items():
        rows = list(score["photos"].items())
        cells = [[name, row["spots"], fmt(row["removed"], "pct"), fmt(row["texture_kept"], "pct"),
                  *(fmt(row[part], "lvl") for part in UNCHANGED)] for name, row in rows]
        means = {key: mean([row[key] for _, row in rows]) for key in ("removed", "texture_kept", *UNCHANGED)}
        spots = sum(row["spots"] for _, row in rows) / max(len(rows), 1)
        cells.append(["mean", f"{spots:.1f}", fmt(means["removed"], "pct"), fmt(means["texture_kept"], "pct"),
                      *(fmt(means[part], "lvl") for part in UNCHANGED)])
        blocks.append(results.table(f"{label}: real faces ({args.faces.name}), change inside the parts and spot "
                                    "score on face skin", columns, cells))
        summary.append([label, fmt(score["pair"]["gain"], "db"), fmt(score["pair"]["eyes"], "lvl"),
                        fmt(means["removed"], "pct"), fmt(means["texture_kept"], "pct"),
                        *(fmt(means[part], "lvl") for part in UNCHANGED)])
    head = results.table(f"models on {len(rows)} real faces and the dev pair ({args.pair.name}); means over photos",
                         ["model", "dev pair gain dB", "dev pair eyes /255", "spot contrast removed",
                          "texture kept", *(f"{part} /255" for part in UNCHANGED)], summary)
    return [head, *blocks]


def model_list(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """(label, checkpoint or None for the identity), labels unique: the run folder and file name."""
    models: list[tuple[str, str | None]] = [("identity", None)] if args.identity else []
    for checkpoint in args.checkpoint:
        path = Path(checkpoint)
        label = f"{path.parent.name}-{path.stem}" if path.parent.name else path.stem
        while label in {name for name, _ in models}:
            label += "'"
        models.append((label, checkpoint))
    if not models:
        raise SystemExit("bench_faces: nothing to score; give --checkpoint CKPT (repeatable) and/or --identity")
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", action="append", default=[], help="a model to score (repeatable)")
    parser.add_argument("--identity", action="store_true", help="also score the identity (output = input)")
    parser.add_argument("--faces", type=Path, default=Path("../shared/data/real-faces"), help="real photos")
    parser.add_argument("--pair", type=Path, default=Path("../shared/data/real-dev/face"),
                        help="dev pair folder: source/ and target/ with the same stems")
    parser.add_argument("--crops", type=Path, default=None, help="write 100 %% crops and mask overlays here")
    parser.add_argument("--work", type=Path, default=None, help="keep the retouched photos here (default: a "
                                                                "temporary folder, removed at the end)")
    parser.add_argument("--set", nargs="*", default=[], help="retouch overrides, e.g. retouch.work_size=512")
    parser.add_argument("--record", action="store_true", help="record the tables in benchmarks/results/")
    parser.add_argument("--note", action="append", default=[], help="a line recorded with the tables: what the "
                        "models are, e.g. what they were trained on (repeatable)")
    args = parser.parse_args()
    models = model_list(args)
    with tempfile.TemporaryDirectory(prefix="bench_faces_") as temporary:
        scores = measure(args, models, args.work or Path(temporary))
    blocks = tables(scores, args)
    for block in blocks:
        results.print_table(block)
    if args.record:
        settings = f"; --set {' '.join(args.set)}" if args.set else ""
        results.record("bench_faces", blocks, title=f"{', '.join(label for label, _ in models)}{settings}",
                       notes=args.note)


if __name__ == "__main__":
    main()
