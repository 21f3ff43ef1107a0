"""Transfer benchmark: does a model retouch defect families and faces it never saw, and leave clean photos alone?

Scores one generator (a checkpoint, or a recipe trained first on ``TRAIN_FAMILY``) on

- synthetic families set by ``data.synthetic`` (test split, a dataset seed no recipe trains on): held-out defect
  kinds, skin tones, face sizes and backgrounds (held out from ``TRAIN_FAMILY``), the subtle mode (statistics of
  real professional retouching) and the default family on new faces; next to the identity baseline
  (output = input): PSNR overall, inside the edited region and outside it (the region = the data's defect mask
  or any pixel the target changes by more than half a level, so "outside" is what a retoucher left alone);
- a real photo (scikit-image's astronaut) with the default family's defects drawn on its face skin;
- independent blemishes (``independent_blemishes.py``: OpenCV polygons and ellipses, alpha-blended colours, code
  that shares nothing with the training synthesizer) on new synthetic faces and on the astronaut's face skin, and
  on the same faces split by size (small spots only; two or three large patches only);
- clean real photos that ship with scikit-image (nothing to fix): PSNR of the output against the input.

The model runs at its working size (``inference.work_size``) and with its coarse pass setting, as
``gan-retouch test`` and ``retouch`` run it (``--work-size`` overrides, 0 = native; ``--coarse-pass on|off``). ``--size 1024 --photo-scale 2`` asks whether it transfers to high-resolution portraits: 1024 px faces
and a 1024 px astronaut, every defect four (twice) as many pixels.

It prints a table, writes ``transfer.json`` and ``crop_<photo>.png`` (input | output | 10x |output - input| |
edit map when the model has one, at 100 %) under ``--out``, and records the table in
benchmarks/results/bench_transfer.json (docs/results.md) unless ``--no-record``. Needs scikit-image.

Run:
    python benchmarks/bench_transfer.py --checkpoint checkpoints/quickstart/best.pt
    python benchmarks/bench_transfer.py --recipe quickstart   # trains on TRAIN_FAMILY into --out first
    python benchmarks/bench_transfer.py --checkpoint checkpoints/quickstart/best.pt --size 1024 --photo-scale 2
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gan_retouch.cli import main as cli_main
from gan_retouch.config import resolve
from gan_retouch.data import build_dataset
from gan_retouch.engine.load import load_model
from gan_retouch.imaging import image_row, save_image
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.run import run_plan
from gan_retouch.inference.work_size import work_shape
from gan_retouch.metrics import masked_psnr, psnr
from gan_retouch.nets.base import unwrap
from gan_retouch.synth import blemish_photo, face_skin

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling module, also when loaded by file path
from independent_blemishes import independent_pair  # noqa: E402

from results import record, table  # noqa: E402

CHANGED = 0.5 / 255  # a target pixel that differs from the input by more than this was edited
DATASET_SEED = 9001  # synthetic faces no recipe trains on (recipes use data.synthetic.seed 0)
# --recipe trains on this family only, so that the held-out families below are truly unseen.
TRAIN_FAMILY: dict[str, Any] = {
    "defects": ["acne", "pustule", "post_acne", "redness", "pores"], "skin_tone": [0.0, 0.6],
    "face_scale": [0.8, 1.5], "backgrounds": ["plain", "gradient", "blotchy"],
}
# name -> data.synthetic overrides of the test pairs (checked like a recipe's: a typo names the closest key).
FAMILIES: dict[str, dict[str, Any]] = {
    "default family, new faces": {},
    "subtle (real-retouching stats)": {"mode": "subtle"},
    "held-out kinds: spots/lines/eyes": {"defects": ["dark_spot", "lines", "under_eye"]},
    "held-out tones: dark skin": {"skin_tone": [0.7, 1.0]},
    "held-out: close-ups, busy bg": {"face_scale": [1.6, 2.0], "backgrounds": ["pattern", "bokeh", "skin"]},
    "held-out kind: large blotches": {"defects": ["blotch"], "defect_count": [1, 4]},
}
CLEAN_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
CROP = {"astronaut": (30, 150, 192)}  # photo -> (top, left, side) of the 100 % crop: the face, at --photo-scale 1


def real_photos(names: tuple[str, ...], scale: float = 1.0) -> dict[str, torch.Tensor]:
    """scikit-image's sample photos as ``[3,H,W]`` in [0, 1], resized by ``scale`` (bicubic; 2 = the astronaut at
    1024 px, every feature twice as many pixels, like a high-resolution portrait); a clear message when
    scikit-image is missing."""
    try:
        from skimage import data as samples
    except ImportError as error:
        raise SystemExit("bench_transfer needs scikit-image for its clean real photos: pip install scikit-image") from error
    photos = {}
    for name in names:
        array = getattr(samples, name)()
        photo = torch.from_numpy(array[..., :3].copy()).permute(2, 0, 1).float() / 255.0
        if scale != 1.0:
            photo = F.interpolate(photo[None], scale_factor=scale, mode="bicubic", align_corners=False,
                                  antialias=scale < 1)[0].clamp(0.0, 1.0)
        photos[name] = photo
    return photos


def synthetic_pairs(overrides: dict[str, Any], count: int, size: int) -> list[dict[str, torch.Tensor]]:
    """``count`` test pairs of the family (options checked like a recipe's: a typo names the closest key)."""
    synthetic = {**overrides, "size": size, "test_count": count, "seed": DATASET_SEED}
    options, _ = resolve("train", None, {"data": {"source": "synthetic", "synthetic": synthetic}})
    dataset = build_dataset(options["data"], "test")
    return [dataset[index] for index in range(len(dataset))]


def blemished_photo(photo: torch.Tensor, count: int) -> list[dict[str, torch.Tensor]]:
    """``count`` versions of a real photo with the default family's defects on its face skin."""
    family = resolve("train")[0]["data"]["synthetic"]
    return [blemish_photo(photo, family, (DATASET_SEED, "bench_transfer", index)) for index in range(count)]


def independent_families(photo: torch.Tensor, count: int, size: int) -> dict[str, list[dict[str, torch.Tensor]]]:
    """Independent blemishes on the clean targets of new synthetic faces, and on the photo's face skin; and on the
    same faces split by size (small spots only, or two or three large ones), to tell which a model misses."""
    faces = synthetic_pairs({"clean_fraction": 0.0}, count, size)

    def on_faces(**settings: Any) -> list[dict[str, torch.Tensor]]:
        return [independent_pair(pair["target"], pair["skin"], DATASET_SEED + index, **settings)
                for index, pair in enumerate(faces)]

    _, skin = face_skin(photo, name="the astronaut")
    on_photo = [independent_pair(photo, skin, DATASET_SEED + 1000 + index) for index in range(max(count // 2, 1))]
    return {"independent blemishes, synth faces": on_faces(), "independent blemishes, astronaut": on_photo,
            "independent, small spots only": on_faces(large_share=0.0),
            "independent, large ones only": on_faces(count=(2, 3), large_share=1.0)}


@torch.no_grad()
def retouch(model: torch.nn.Module, image: torch.Tensor, plan: InferencePlan | None = None) -> torch.Tensor:
    """The model's output for one ``[3,H,W]`` image, ``[1,3,H,W]`` in [0, 1], under its inference plan (the
    working size and coarse pass ``gan-retouch test`` and ``retouch`` run; None = native)."""
    x = image[None]
    mask = torch.zeros_like(x[:, :1]) if getattr(unwrap(model), "takes_mask", False) else None
    return run_plan(plan or InferencePlan(), model, x, mask)


def score_pairs(model: torch.nn.Module, pairs: list[dict[str, torch.Tensor]],
                plan: InferencePlan | None = None) -> dict[str, float]:
    """Mean PSNR of model and identity: overall, inside the edited region, outside it."""
    rows: dict[str, list[float]] = {key: [] for key in ("psnr", "psnr_in", "psnr_out", "id", "id_in", "id_out")}
    for pair in pairs:
        x, target = pair["input"][None], pair["target"][None]
        region = ((x - target).abs().amax(1, keepdim=True) > CHANGED).float()
        if "mask" in pair:
            region = torch.maximum(region, (pair["mask"][None] > 0).float())
        output = retouch(model, pair["input"], plan)
        for prefix, image in (("psnr", output), ("id", x)):
            rows[prefix].append(float(psnr(image, target)))
            rows[f"{prefix}_in"].append(float(masked_psnr(image, target, region, inside=True)))
            rows[f"{prefix}_out"].append(float(masked_psnr(image, target, region, inside=False)))
    return {key: _mean(values) for key, values in rows.items()}


def score_clean(model: torch.nn.Module, photos: dict[str, torch.Tensor],
                plan: InferencePlan | None = None) -> dict[str, float]:
    """PSNR of the output against the input for each clean photo (100 dB = untouched)."""
    return {name: float(psnr(retouch(model, photo, plan), photo[None])) for name, photo in photos.items()}


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def write_crop(model: torch.nn.Module, name: str, photo: torch.Tensor, out: Path, scale: float = 1.0,
               plan: InferencePlan | None = None) -> Path:
    """input | output | 10x |output - input| (| edit map) of the photo's face at 100 % (``CROP`` times ``scale``,
    the photo's --photo-scale), the model run on the whole photo at its working size, as a user runs it."""
    height, width = photo.shape[-2:]
    top, left, side = CROP.get(name, (0, 0, min(height, width)))
    top, left, side = (round(value * scale) for value in (top, left, side))
    side = min(side, height, width)
    top, left = min(top, height - side), min(left, width - side)  # the crop stays inside smaller photos
    face = (slice(None), slice(top, top + side), slice(left, left + side))
    plan = plan or InferencePlan()
    crop, output = photo[face], retouch(model, photo, plan)[0][face]
    panels = [crop, output, ((output - crop).abs() * 10).clamp(0, 1)]
    inner = unwrap(model)
    if getattr(inner, "edit_mask", False):
        shape = work_shape(height, width, plan.work_size)
        small = F.interpolate(photo[None], size=shape, mode="bilinear", align_corners=False, antialias=True)
        with torch.no_grad():
            edit_map = F.interpolate(inner.edit_map(small, floor=plan.edit_floor), size=(height, width),
                                     mode="bilinear", align_corners=False)
        panels.append(edit_map[0][face].expand(3, -1, -1))
    path = out / f"crop_{name}.png"
    save_image(image_row(panels), path)
    return path


def train_first(recipe: str, sets: list[str], out: Path) -> Path:
    """Train ``recipe`` into ``out/checkpoints/transfer`` and return its best checkpoint."""
    root = out / "checkpoints"
    family = [f"data.synthetic.{key}={json.dumps(value)}" for key, value in TRAIN_FAMILY.items()]
    args = ["train", "--recipe", recipe, "--set", "name=transfer", f"checkpoints_root={root}",
            f"results_root={out / 'results'}", *family, *sets]
    status = cli_main(args)
    if status != 0:
        raise SystemExit(f"training {recipe} failed with status {status}")
    return root / "transfer" / "best.pt"


def print_table(report: dict[str, Any]) -> None:
    print(f"trained on data.synthetic: {json.dumps(report['trained_on'])}")
    print(f"pairs of {report['size']} px, photos x{report['photo_scale']:g}, "
          f"work size {report['work_size'] or 'native'}, coarse pass {'on' if report['coarse_pass'] else 'off'}")
    print(f"{'family':<34} {'identity':>9} {'model':>9} {'gain':>7} | {'in: id':>7} {'model':>7} |"
          f" {'out: id':>8} {'model':>7}")
    for name, row in report["families"].items():
        print(f"{name:<34} {row['id']:9.2f} {row['psnr']:9.2f} {row['psnr'] - row['id']:+7.2f} |"
              f" {row['id_in']:7.2f} {row['psnr_in']:7.2f} | {row['id_out']:8.2f} {row['psnr_out']:7.2f}")
    clean = report["clean_photos"]
    print("clean real photos, PSNR(output, input) (100 = untouched): "
          + ", ".join(f"{name} {value:.2f}" for name, value in clean.items()))


def record_report(report: dict[str, Any], command_args: argparse.Namespace) -> None:
    """The printed table as a record of benchmarks/results/bench_transfer.json, titled by what was scored."""
    rows = [[name, f"{row['id']:.2f}", f"{row['psnr'] - row['id']:+.2f}", f"{row['id_in']:.2f} -> {row['psnr_in']:.2f}",
             f"{row['psnr_out']:.2f}"] for name, row in report["families"].items()]
    rows.append(["clean " + " / ".join(report["clean_photos"]), "100",
                 " / ".join(f"{value:.1f}" for value in report["clean_photos"].values()), "-", "-"])
    setting = (f"{report['size']} px pairs, photos x{report['photo_scale']:g}, work size "
               f"{report['work_size'] or 'native'}, coarse pass {'on' if report['coarse_pass'] else 'off'}")
    record("bench_transfer", [table(f"{command_args.count} pairs per family; {setting}; clean photos: PSNR(output, "
                                    "input)", ["family", "identity", "gain (dB)", "inside: identity -> model",
                                               "outside: model"], rows)],
           title=f"{report['checkpoint']}: {setting}", notes=[f"trained on {json.dumps(report['trained_on'])}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a trained generator checkpoint (best.pt)")
    source.add_argument("--recipe", help="train this recipe first (into --out), then score it")
    parser.add_argument("--set", nargs="*", default=[], help="KEY=VALUE options for --recipe")
    parser.add_argument("--count", type=int, default=16, help="pairs per synthetic family (default 16)")
    parser.add_argument("--size", type=int, default=256, help="side of the synthetic pairs in pixels (256)")
    parser.add_argument("--photo-scale", type=float, default=1.0,
                        help="resize the real photos by this factor (2 = the astronaut at 1024 px; default 1)")
    parser.add_argument("--work-size", type=int, default=None,
                        help="the model's working size for this run, 0 = native (default: the checkpoint's)")
    parser.add_argument("--coarse-pass", choices=("model", "on", "off"), default="model",
                        help="the coarse pass (default: the checkpoint's own, as gan-retouch test runs it)")
    parser.add_argument("--out", default="results/bench_transfer", help="folder for transfer.json and crops")
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/results/")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = Path(args.checkpoint) if args.checkpoint else train_first(args.recipe, args.set, out)
    photos = real_photos(CLEAN_PHOTOS, args.photo_scale)
    coarse = {"model": None, "on": True, "off": False}[args.coarse_pass]
    loaded = load_model(checkpoint, {"work_size": args.work_size, "coarse_pass": coarse}, "bench_transfer")
    model, info, plan = loaded.network, loaded.info, loaded.plan
    data = info.get("options", {}).get("data", {})
    trained_on = data.get("synthetic") if data.get("source") == "synthetic" else data.get("root")
    families = {name: score_pairs(model, synthetic_pairs(overrides, args.count, args.size), plan)
                for name, overrides in FAMILIES.items()}
    families["real photo + defects"] = score_pairs(model, blemished_photo(photos["astronaut"], args.count // 2), plan)
    for name, pairs in independent_families(photos["astronaut"], args.count, args.size).items():
        families[name] = score_pairs(model, pairs, plan)
    report = {"checkpoint": str(checkpoint), "trained_on": trained_on, "count": args.count, "size": args.size,
              "photo_scale": args.photo_scale, "work_size": plan.work_size, "families": families,
              "coarse_pass": plan.coarse_pass, "clean_photos": score_clean(model, photos, plan),
              "crops": [str(write_crop(model, name, photos[name], out, args.photo_scale, plan)) for name in CROP]}
    print_table(report)
    (out / "transfer.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {out / 'transfer.json'} and {', '.join(report['crops'])}")
    if not args.no_record:
        record_report(report, args)


if __name__ == "__main__":
    main()
