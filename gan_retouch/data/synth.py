"""Entry point of `gan-retouch synth`: write the synthetic benchmark to disk, or add defects to clean photos.

Output layout (loadable with data.source=folder, data.mask_dir=mask): ``OUT/<split>/{source,target,mask,skin}/``
for generated faces, and ``OUT/{source,target,mask,skin}/`` for the user's photos (ratio-split when loaded).
On photos, defects go on skin inside the faces OpenCV's Haar cascades find (never on a skin-coloured background).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gan_retouch.console import console
from gan_retouch.data.folders import check_new_output
from gan_retouch.data.io import DEFAULT_LIMIT, PixelLimit, is_image_file, read_image
from gan_retouch.errors import ConfigError, DataError
from gan_retouch.fileio import ensure_writable_dir
from gan_retouch.imaging import save_image
from gan_retouch.synth.faces import find_faces
from gan_retouch.synth.family import SynthOptions
from gan_retouch.synth.photos import blemish_photo
from gan_retouch.synth.synthetic import synthesize_pair

FOLDERS = {"input": "source", "target": "target", "mask": "mask", "skin": "skin"}


def _write_item(item: dict[str, Any], folder: Path) -> None:
    for key, sub in FOLDERS.items():
        save_image(item[key], folder / sub / f"{item['name']}.png")


def write_synthetic(out: Path, count: int, size: int, splits: list[str], seed: int, family: dict[str, Any]) -> int:
    """Write ``count`` generated pairs per split; returns how many pairs were written."""
    for split in splits:
        for index in range(count):
            _write_item(synthesize_pair(index, size, seed, split, **family), out / split)
        console.print(f"{split}: {count} pairs of {size}x{size} -> {out / split}")
    return count * len(splits)


def blemish_photos(clean: Path, out: Path, seed: int, family: dict[str, Any],
                   limit: PixelLimit = DEFAULT_LIMIT, tone_down: bool = True) -> int:
    """Add defects to every photo in ``clean`` on the skin of the faces found; returns the pair count.

    Every photo is checked before anything is written: one without a detectable face is an error naming it.
    ``clean_fraction`` and ``camera`` do not apply (the photos are real photos, and each gets defects).
    """
    if not clean.is_dir():
        raise DataError(f"synth.clean={clean} is not a folder of photos")
    photos = sorted(p for p in clean.iterdir() if is_image_file(p))
    if not photos:
        raise DataError(f"{clean} holds no images (.png, .jpg, .jpeg, .webp)")
    options = SynthOptions.from_mapping(family, "synth.family")
    found = {path: find_faces(read_image(path, limit)) for path in photos}
    faceless = [path.name for path, faces in found.items() if not faces]
    if faceless:
        raise DataError(
            f"no face found in {len(faceless)} photo(s) of {clean}: {', '.join(faceless[:10])}"
            f"{' ...' if len(faceless) > 10 else ''}. synth --clean needs an upright face in each photo "
            f"(at least 8 % of the shorter side): crop or rotate those photos, or move them out of the folder"
        )
    for path, faces in found.items():
        pair = blemish_photo(read_image(path, limit), options, (seed, "clean", path.name), faces, path.name, tone_down)
        _write_item({**pair, "name": path.stem}, out)
    target = "your originals, their own red spots toned down" if tone_down else "your originals"
    console.print(f"{len(photos)} photos -> {out} (source/ = with defects, target/ = {target})")
    return len(photos)


def run_synth(options: dict[str, Any]) -> int:
    """Run `gan-retouch synth` with the resolved options; returns the exit status."""
    synth = options["synth"]
    if not synth.get("out"):
        raise ConfigError("gan-retouch synth needs an output folder: --out DIR")
    check_new_output(Path(synth["out"]).expanduser(), "synth.out")
    out = ensure_writable_dir(Path(synth["out"]).expanduser(), "synth output folder")
    if synth.get("clean"):
        blemish_photos(Path(synth["clean"]).expanduser(), out, options["seed"], synth["family"],
                       PixelLimit(synth["max_pixels"], "synth.max_pixels"), bool(synth["tone_down_spots"]))
        return 0
    if synth["count"] <= 0 or synth["size"] < 32:
        raise ConfigError(f"synth.count must be > 0 and synth.size >= 32, got {synth['count']} and {synth['size']}")
    splits = list(synth["splits"])  # each of train | val | test, checked when options load
    SynthOptions.from_mapping(synth["family"], "synth.family")
    write_synthetic(out, synth["count"], synth["size"], splits, options["seed"], synth["family"])
    console.print(f"load it with: --set data.source=folder data.root={out} data.mask_dir=mask")
    return 0
