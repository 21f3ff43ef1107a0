"""Entry point of `gan-retouch synth`: write the synthetic benchmark to disk, or add defects to clean photos.

Output layout (loadable with data.source=folder, data.mask_dir=mask): ``OUT/<split>/{source,target,mask,skin}/``
for generated faces, and ``OUT/{source,target,mask,skin}/`` for the user's photos (ratio-split when loaded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gan_retouch.console import console
from gan_retouch.data.defects import DefectOptions, add_defects
from gan_retouch.data.io import is_image_file, read_image
from gan_retouch.data.noise import generator_for
from gan_retouch.data.skin import detect_skin
from gan_retouch.data.synthetic import SPLITS, synthesize_pair
from gan_retouch.errors import ConfigError, DataError
from gan_retouch.imaging import save_image
from gan_retouch.registry import choice

FOLDERS = {"input": "source", "target": "target", "mask": "mask", "skin": "skin"}


def _write_item(item: dict[str, Any], folder: Path) -> None:
    for key, sub in FOLDERS.items():
        save_image(item[key], folder / sub / f"{item['name']}.png")


def write_synthetic(out: Path, count: int, size: int, splits: list[str], seed: int, defects: dict[str, Any]) -> int:
    """Write ``count`` generated pairs per split; returns how many pairs were written."""
    for split in splits:
        for index in range(count):
            _write_item(synthesize_pair(index, size, seed, split, **defects), out / split)
        console.print(f"{split}: {count} pairs of {size}x{size} -> {out / split}")
    return count * len(splits)


def blemish_photos(clean: Path, out: Path, seed: int, defects: dict[str, Any]) -> int:
    """Add defects to every photo in ``clean`` on the skin the YCbCr detector finds; returns the pair count."""
    if not clean.is_dir():
        raise DataError(f"synth.clean={clean} is not a folder of photos")
    photos = sorted(p for p in clean.iterdir() if is_image_file(p))
    if not photos:
        raise DataError(f"{clean} holds no images (.png, .jpg, .jpeg, .webp)")
    options = DefectOptions.from_mapping(defects)
    no_skin = []
    for path in photos:
        image = read_image(path)
        skin = detect_skin(image)
        if float(skin.mean()) < 0.005:
            no_skin.append(path.name)
        blemished, mask = add_defects(image, skin, generator_for(seed, "clean", path.name), options)
        _write_item({"input": blemished, "target": image, "mask": mask, "skin": skin, "name": path.stem}, out)
    console.print(f"{len(photos)} photos -> {out} (source/ = with defects, target/ = your originals)")
    if no_skin:
        console.print(f"[yellow]no skin found (so no defects) in {len(no_skin)} photo(s):[/] {', '.join(no_skin[:10])}")
    return len(photos)


def run_synth(options: dict[str, Any]) -> int:
    """Run `gan-retouch synth` with the resolved options; returns the exit status."""
    synth = options["synth"]
    if not synth.get("out"):
        raise ConfigError("gan-retouch synth needs an output folder: --out DIR")
    out = Path(synth["out"]).expanduser()
    if synth.get("clean"):
        blemish_photos(Path(synth["clean"]).expanduser(), out, options["seed"], synth["defects"])
        return 0
    if synth["count"] <= 0 or synth["size"] < 32:
        raise ConfigError(f"synth.count must be > 0 and synth.size >= 32, got {synth['count']} and {synth['size']}")
    splits = [choice(split, SPLITS, "synth.splits") for split in synth["splits"]]
    write_synthetic(out, synth["count"], synth["size"], splits, options["seed"], synth["defects"])
    console.print(f"load it with: --set data.source=folder data.root={out} data.mask_dir=mask")
    return 0
