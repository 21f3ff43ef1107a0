"""Rendered blemishes against real ones: size relative to the face and redness, measured the same way on both.

For each photo of ``--faces`` with a face OpenCV finds, the red spots of its face skin are measured twice:
- **real**: the spots the photo already has (``synth.spots.red_spots``: a* above the local skin mean at one of
  its levels, a longer side of 0.3-5 % of the face width, compact, inside the skin:
  the spots the real-photo training pairs tone down in their targets);
- **rendered**: the spots the renderer draws on the same photo (``synth.photos.blemish_photo`` with the family of
  ``--recipe``, default the built-in ``faces`` recipe), found the same way on the input, inside its defect mask.
Per kind it prints how many spots a face has, their equivalent diameter as a share of the face width and their
peak a* excess (10th percentile, median, 90th percentile). ``--crops DIR`` writes 100 % crops, real spots on the
left and rendered ones on the right, one row per photo. ``--record`` adds the table to docs/results.md.

Run:
    python benchmarks/bench_blemishes.py --faces ../shared/data/real-faces --crops /tmp/blemishes
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

from gan_retouch.config import resolve
from gan_retouch.data.io import is_image_file, read_image
from gan_retouch.imaging import save_image
from gan_retouch.inference.face_scale import largest_face_width
from gan_retouch.synth.photos import blemish_photo, face_skin
from gan_retouch.synth.spots import red_spots, to_lab

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results.py, also when loaded by file path
import results  # noqa: E402

WORK_FACE_WIDTH = 480  # photos are measured with their face scaled to this width (the renderer is scale-free)
CROP = 64  # side of each 100 % crop, in pixels of the measured photo


def spot_stats(spots: np.ndarray, excess: np.ndarray, face_width: float) -> list[tuple[float, float, int, int]]:
    """``(diameter / face width, peak a* excess, centre y, centre x)`` of each connected spot of ``spots``."""
    import cv2

    count, labels, stats, centres = cv2.connectedComponentsWithStats(spots.astype(np.uint8), connectivity=8)
    found = []
    for label in range(1, count):
        area = stats[label, cv2.CC_STAT_AREA]
        peak = float(excess[labels == label].max())
        cx, cy = centres[label]
        found.append((2 * math.sqrt(area / math.pi) / face_width, peak, int(cy), int(cx)))
    return found


def measure(photo: torch.Tensor, family: dict, seed: int) -> dict[str, list] | None:
    """Real and rendered spots of one photo scaled so its face is ``WORK_FACE_WIDTH`` px wide (None: no face)."""
    width = largest_face_width(photo)
    if width is None:
        return None
    scale = min(1.0, WORK_FACE_WIDTH / width)
    if scale < 1.0:
        size = (round(photo.shape[1] * scale), round(photo.shape[2] * scale))
        photo = torch.nn.functional.interpolate(photo[None], size=size, mode="bilinear", antialias=True)[0].clamp(0, 1)
    faces, skin = face_skin(photo)
    face_width = faces[0].w
    skin_np = skin[0].numpy()
    real, excess = red_spots(to_lab(photo), skin_np, face_width)
    pair = blemish_photo(photo, family, (seed, "bench_blemishes"), faces, tone_down=False)
    drawn, drawn_excess = red_spots(to_lab(pair["input"]), skin_np, face_width)
    drawn &= pair["mask"][0].numpy() > 0
    return {"real": spot_stats(real, excess, face_width), "rendered": spot_stats(drawn, drawn_excess, face_width),
            "photo": photo, "input": pair["input"]}


def crops(image: torch.Tensor, spots: list, count: int) -> torch.Tensor:
    """Up to ``count`` ``CROP`` px crops around the reddest ``spots``, side by side (grey where none)."""
    tiles = []
    for _, _, cy, cx in sorted(spots, key=lambda s: -s[1])[:count]:
        y0 = min(max(cy - CROP // 2, 0), image.shape[1] - CROP)
        x0 = min(max(cx - CROP // 2, 0), image.shape[2] - CROP)
        tiles.append(image[:, y0 : y0 + CROP, x0 : x0 + CROP])
    tiles += [torch.full((3, CROP, CROP), 0.5)] * (count - len(tiles))
    return torch.cat(tiles, 2)


def summary(name: str, spots: list, faces: int) -> list:
    diameters = np.array([s[0] * 100 for s in spots]) if spots else np.zeros(1)
    peaks = np.array([s[1] for s in spots]) if spots else np.zeros(1)
    q = lambda values: "/".join(f"{v:.1f}" for v in np.percentile(values, [10, 50, 90]))  # noqa: E731
    return [name, faces, round(len(spots) / max(faces, 1), 1), q(diameters), q(peaks)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, required=True, help="folder of real face photos (searched recursively)")
    parser.add_argument("--recipe", default="faces", help="recipe whose data.synthetic family renders (default faces)")
    parser.add_argument("--crops", type=Path, help="write real | rendered 100 %% crops here (one PNG per photo)")
    parser.add_argument("--record", action="store_true", help="record the table in docs/results.md")
    args = parser.parse_args(argv)
    files = sorted(p for p in args.faces.rglob("*") if is_image_file(p)) if args.faces.is_dir() else []
    if not files:
        print(f"error: no photos under {args.faces}", file=sys.stderr)
        return 2
    family = resolve("train", args.recipe, {})[0]["data"]["synthetic"]
    real, rendered, used = [], [], 0
    for index, path in enumerate(files):
        found = measure(read_image(path), family, index)
        if found is None:
            print(f"{path.name}: no face found, left out")
            continue
        used += 1
        real += found["real"]
        rendered += found["rendered"]
        print(f"{path.name}: {len(found['real'])} real spots, {len(found['rendered'])} rendered")
        if args.crops:
            args.crops.mkdir(parents=True, exist_ok=True)
            strip = torch.cat([crops(found["photo"], found["real"], 4), torch.ones(3, CROP, 8),
                               crops(found["input"], found["rendered"], 4)], 2)
            save_image(strip, args.crops / f"{path.stem}.png")
    block = results.table(
        f"red spots on face skin, real vs rendered ({used} photos of {args.faces.name}, faces scaled to "
        f"{WORK_FACE_WIDTH} px; recipe {args.recipe})",
        ["spots", "photos", "per face", "diameter % of face width (p10/median/p90)", "a* excess (p10/median/p90)"],
        [summary("real (already in the photos)", real, used), summary("rendered", rendered, used)])
    results.print_table(block)
    if args.record:
        results.record("bench_blemishes", [block], title=f"{args.faces.name}: real vs rendered ({args.recipe})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
