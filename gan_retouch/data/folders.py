"""Finding the pairs of a split on disk, and checking them before training starts.

Layouts: two folders with matching file stems (``source/`` + ``target/``, ``image/`` + ``groundtruth/`` or
``A/`` + ``B/``), or pix2pix "aligned" files (input | target side by side); optionally a folder of masks with the
same stems (``mask/`` or ``masks/``). A root with ``train/``, ``val/`` or ``test/`` subfolders uses them; otherwise
the pairs are split deterministically by ``data.split_ratio``; the split ``all`` is every pair of the root. Every
image is decoded once before training (``gan_retouch.data.precheck``, which also checks that input and target
line up and feeds the in-memory cache), and every problem is collected and reported together, naming the files.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gan_retouch.data.alignment import alignment_mode
from gan_retouch.data.cache import DecodedFiles, decoded_files
from gan_retouch.data.pixels import is_pair_file
from gan_retouch.data.precheck import check_pairs
from gan_retouch.errors import ConfigError, DataError

INPUT_DIR_NAMES = ("source", "image", "A")
TARGET_DIR_NAMES = ("target", "groundtruth", "B")
MASK_DIR_NAMES = ("mask", "masks")
SPLIT_NAMES = ("train", "val", "test")
ALL = "all"  # the split name for every pair of the root (all split subfolders, no ratio split)
SPLIT_SALT = "gan-retouch split"  # fixed: a pair's split depends on its name only, never on the run's seed
LISTED = 10  # offending files named in an error before "... and N more"
NO_IMAGES = "holds no images (.png, .jpg, .jpeg, .webp, or .npy from gan-retouch prepare); nothing to load"


@dataclass(frozen=True)
class PairRecord:
    """One pair on disk: ``target`` is None for an aligned A|B file; ``mask`` is None without a mask folder."""

    name: str
    input: Path
    target: Path | None
    mask: Path | None


def _listing(paths: list[Any]) -> str:
    shown = ", ".join(str(p) for p in paths[:LISTED])
    return shown + (f" ... and {len(paths) - LISTED} more" if len(paths) > LISTED else "")


def _images_by_stem(folder: Path) -> dict[str, Path]:
    files = sorted(p for p in folder.iterdir() if is_pair_file(p))
    by_stem: dict[str, Path] = {}
    duplicates = []
    for path in files:
        if path.stem in by_stem:
            duplicates.append(path)
        by_stem[path.stem] = path
    if duplicates:
        raise DataError(f"{folder} has several images with the same name but another extension: {_listing(duplicates)}")
    return by_stem


def _pick_dir(base: Path, option: str, names: tuple[str, ...], key: str) -> Path:
    if option != "auto":
        folder = base / option
        if not folder.is_dir():
            raise DataError(f"{key}={option!r}: folder {folder} does not exist")
        return folder
    for name in names:
        if (base / name).is_dir():
            return base / name
    present = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    raise DataError(
        f"{base} has none of the folders {', '.join(names)} (found: {', '.join(present) or 'no folders'}). "
        f"Set {key} to the folder's name, or use data.source=aligned for A|B files."
    )


def split_folder(root: Path, split: str) -> tuple[Path, bool]:
    """The folder that holds ``split`` and whether it is a dedicated split subfolder."""
    if not root.is_dir():
        raise DataError(f"data.root {root} is not a folder")
    present = [name for name in SPLIT_NAMES if (root / name).is_dir()]
    if not present:
        return root, False
    if split not in present:
        raise DataError(f"{root} has split folders {', '.join(present)} but no {split}/: add it, or point "
                        f"data.root at a folder without split subfolders to split by data.split_ratio")
    return root / split, True


def split_of(name: str, ratios: list[float]) -> str:
    """The split (train | val | test) of the pair called ``name`` under ``ratios``: a hash of the name alone, so a
    pair never changes split when pairs are added, removed or skipped."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ConfigError(f"data.split_ratio must be three non-negative fractions (train, val, test), got {ratios}")
    digest = hashlib.sha256(f"{SPLIT_SALT}:{name}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64 * sum(ratios)  # uniform in [0, sum)
    bound = 0.0
    for split, ratio in zip(SPLIT_NAMES, ratios, strict=True):
        bound += ratio
        if position < bound:
            return split
    return next(split for split, ratio in zip(SPLIT_NAMES[::-1], ratios[::-1], strict=True) if ratio > 0)


def ratio_split(names: list[str], ratios: list[float], split: str) -> list[str]:
    """The names of ``names`` (sorted) whose ``split_of`` is ``split``. Each split holds about its fraction of a
    large set; a small one can leave a split empty (``empty_split_error`` says what to do)."""
    return [name for name in sorted(names) if split_of(name, ratios) == split]


def empty_split_error(split: str, where: Path, ratios: Any, total: int) -> DataError:
    """The refusal of an empty ratio split, with the ways out."""
    fix = ("set data.split_ratio=[1, 0, 0] to train on every pair" if split == "train"
           else f"raise the {split} fraction of data.split_ratio (e.g. [0.7, 0.15, 0.15])")
    return DataError(f"the {split} split of {where} is empty: each pair's split comes from a hash of its name "
                     f"(data.split_ratio={ratios}) and none of its {total} usable pairs fell in {split}. To fix: {fix}, "
                     f"add pairs, or give the root train/, val/ and test/ subfolders")


def check_new_output(out: Path, option: str) -> None:
    """A ConfigError when a command that writes a set of pairs (synth, prepare) would write into a set that
    exists (a mix of old and new files) or make a split folder inside a folder of pairs (which would then read
    as split subfolders, and no longer as its own pairs)."""
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"{option} {out} already holds files: choose a new or empty folder (writing into it would "
                          "mix new pairs with the old ones); nothing was written")
    parent = out.parent
    pairs_here = [name for name in INPUT_DIR_NAMES + TARGET_DIR_NAMES if (parent / name).is_dir()]
    if out.name in SPLIT_NAMES and pairs_here:
        raise ConfigError(f"{option} {out} is inside the folder of pairs {parent} (it holds {pairs_here[0]}/): a "
                          f"{out.name}/ folder there would make {parent} read as split subfolders, so training on it "
                          f"would fail. Choose a folder outside {parent}; nothing was written")


def _mask_folder(base: Path, option: str | None) -> Path | None:
    """The mask folder: ``auto`` finds mask/ or masks/ (none is fine); a name also accepts its other spelling."""
    if not option:
        return None
    names = MASK_DIR_NAMES if option == "auto" else (option,) + tuple(
        other for other in MASK_DIR_NAMES if option in MASK_DIR_NAMES and other != option)
    for name in names:
        if (base / name).is_dir():
            return base / name
    if option == "auto":
        return None
    raise DataError(f"data.mask_dir={option!r}: folder {base / option} does not exist (set data.mask_dir=auto "
                    f"to use mask/ or masks/ when present, or null for no masks)")


def _pairs_in(base: Path, data: dict[str, Any], aligned: bool) -> tuple[list[PairRecord], list[str], int]:
    """The matched pairs of one folder, the problems found by name matching, and how many names it holds."""
    problems: list[str] = []
    if aligned:
        inputs = _images_by_stem(base)
        if not inputs:
            raise DataError(f"{base} {NO_IMAGES}")
        targets: dict[str, Path] = {}
    else:
        input_dir = _pick_dir(base, data.get("input_dir", "auto"), INPUT_DIR_NAMES, "data.input_dir")
        target_dir = _pick_dir(base, data.get("target_dir", "auto"), TARGET_DIR_NAMES, "data.target_dir")
        inputs, targets = _images_by_stem(input_dir), _images_by_stem(target_dir)
        for folder, found in ((input_dir, inputs), (target_dir, targets)):
            if not found:
                raise DataError(f"{folder} {NO_IMAGES}")
        no_target = sorted(set(inputs) - set(targets))
        no_input = sorted(set(targets) - set(inputs))
        if no_target:
            problems.append(f"inputs without a target in {target_dir}: {_listing([inputs[s].name for s in no_target])}")
        if no_input:
            problems.append(f"targets without an input in {input_dir}: {_listing([targets[s].name for s in no_input])}")
    masks: dict[str, Path] = {}
    mask_folder = _mask_folder(base, data.get("mask_dir"))
    if mask_folder is not None:
        masks = _images_by_stem(mask_folder)
        no_mask = sorted(set(inputs) - set(masks))
        if no_mask:
            problems.append(f"pairs without a mask in {mask_folder}: {_listing(no_mask)}")
    stems = sorted(inputs) if aligned else sorted(set(inputs) & set(targets))
    records = [PairRecord(s, inputs[s], targets.get(s), masks.get(s)) for s in stems if not masks or s in masks]
    return records, problems, len(set(inputs) | set(targets))


def _split_bases(root: Path, split: str) -> tuple[list[tuple[str, Path]], bool]:
    """(label, folder) to read for ``split`` and whether they are dedicated split subfolders."""
    if split != ALL:
        base, dedicated = split_folder(root, split)
        return [("", base)], dedicated
    if not root.is_dir():
        raise DataError(f"data.root {root} is not a folder")
    present = [name for name in SPLIT_NAMES if (root / name).is_dir()]
    return ([(name, root / name) for name in present] or [("", root)]), True


def find_pairs(data: dict[str, Any], split: str) -> tuple[list[PairRecord], DecodedFiles]:
    """The checked pairs of ``split`` (train | val | test | all) under ``data.root``, sorted by name, and their
    decoded files (kept in memory per ``data.cache``, for the dataset to read).

    ``all`` is every pair of the root: all of its split subfolders, or the whole root without a ratio split; a
    name that occurs in two split folders is prefixed with the split (``val_name``).
    """
    if data.get("root") in (None, ""):
        raise ConfigError(f"data.source={data['source']} needs data.root: the folder that holds your pairs")
    root = Path(data["root"]).expanduser()
    bases, dedicated = _split_bases(root, split)
    aligned = data["source"] == "aligned"
    labelled: list[tuple[str, PairRecord]] = []
    problems: list[str] = []
    names = 0
    for label, base in bases:
        found, trouble, count = _pairs_in(base, data, aligned)
        labelled.extend((label, record) for record in found)
        problems.extend(trouble)
        names += count
    where = bases[0][1] if len(bases) == 1 else root
    seen = Counter(record.name for _, record in labelled)
    records = [replace(r, name=f"{label}_{r.name}") if seen[r.name] > 1 else r for label, r in labelled]
    alignment = alignment_mode(data)
    paths = [p for r in records for p in (r.input, r.target, r.mask) if p is not None]
    files = decoded_files(data, root, paths, str(where))
    bad = check_pairs(records, files, aligned, alignment)
    problems.extend(bad.values())
    if problems and not data.get("skip_bad_pairs", False):
        raise DataError(
            f"{len(problems)} problem(s) with the pairs in {where}:\n  - " + "\n  - ".join(problems)
            + "\nFix or remove these files, or set data.skip_bad_pairs=true to skip them."
        )
    good = [r for r in records if r.name not in bad]
    skipped = names - len(good)
    if skipped:
        warnings.warn(f"data.skip_bad_pairs: skipped {skipped} bad or unmatched pair(s) in {where} ({len(bad)} "
                      f"unreadable or mismatched); {len(good)} remain", stacklevel=2)
    if not good:
        raise DataError(f"no usable pairs in {where}")
    if not dedicated:  # each pair's split comes from its own name: skipping a bad pair never moves a good one
        ratios = list(data.get("split_ratio", [0.9, 0.05, 0.05]))
        total, good = len(good), [r for r in good if split_of(r.name, ratios) == split]
        if not good:
            raise empty_split_error(split, where, data.get("split_ratio"), total)
    return good, files
