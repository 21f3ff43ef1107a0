"""Map-style paired datasets (folders, aligned A|B files, synthetic) and ``build_dataset``.

Training items accept any virtual index ``v``: the pair is ``v % len(ds)`` and every random augmentation draw
comes from a generator seeded from (seed, v), so an item is bit-identical whenever (and in whichever worker or
DDP rank) it is loaded; that is what makes training resumable. Validation and test items are never augmented.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from gan_retouch.data.augment import AugmentOptions, augment_item
from gan_retouch.data.cache import DecodedFiles
from gan_retouch.data.folders import ALL, PairRecord, find_pairs
from gan_retouch.data.holdout import HOLDOUT, HeldOut, RegionPairs, held_out_names, holdout_mode
from gan_retouch.data.io import DEFAULT_LIMIT, PixelLimit, data_limit, pixels_to_image, pixels_to_mask
from gan_retouch.data.photo_faces import PhotoFaces
from gan_retouch.data.pixels import read_pixels
from gan_retouch.data.rehearsal import Rehearsal
from gan_retouch.data.training_scale import at_scale, training_scale
from gan_retouch.errors import ConfigError, DataError
from gan_retouch.registry import choice
from gan_retouch.synth.family import SynthOptions
from gan_retouch.synth.noise import Draws, generator_for
from gan_retouch.synth.synthetic import SPLITS, synthesize_pair

SOURCES = ("synthetic", "folder", "aligned")
DATASET_SPLITS = (*SPLITS, ALL)  # what commands may ask for; training also builds HOLDOUT (data.holdout)
SYNTHETIC_STREAM_LENGTH = 2**30  # length of the infinite synthetic stream (the engine's sampler treats it as one)
NOT_FAMILY_KEYS = ("size", "seed", "train_count", "val_count", "test_count", "crops_per_face",
                   "photos", "photo_share", "photo_face_width")  # the rest: the family


class PairedDataset(Dataset):
    """Shared indexing: virtual indices and per-item augmentation generators for the train split."""

    def __init__(self, split: str, seed: int, augment: AugmentOptions | None) -> None:
        self.split = split
        self.seed = seed
        self.augment = augment

    def load(self, index: int) -> dict[str, Any]:
        """The un-augmented item of pair ``index`` (0 <= index < len)."""
        raise NotImplementedError

    def load_pixels(self, index: int) -> tuple[dict[str, Any], Callable[[str, torch.Tensor], torch.Tensor]]:
        """Pair ``index`` as kept (decoded pixels for files on disk) and the conversion of a key's rows (or any
        region) to ``load``'s float form: full-resolution scoring converts band by band (``evaluate.bands``)."""
        return self.load(index), lambda key, part: part

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            raise IndexError(f"dataset indices are non-negative, got {index}")
        item = self.load(index % len(self))
        if self.augment is not None:
            item = augment_item(item, self.augment, generator_for(self.seed, "augment", index))
        return item


class SyntheticPairs(PairedDataset):
    """The built-in benchmark: pairs generated on the fly (an infinite stream, or a fixed count per split).

    In the train split, ``crops_per_face`` consecutive items share one generated face (item i is face
    i // crops_per_face) and differ by their augmentation, i.e. their crop: generating a face costs far more than
    cutting a crop, and the training stream asks for consecutive items, so the last face is kept for the next.
    With ``photos`` (a folder of real face photos), a drawn ``photo_share`` of the training faces are cut from
    them instead, with blemishes rendered on their skin (``data.photo_faces``); validation and test stay procedural.
    """

    def __init__(self, synthetic: dict[str, Any], split: str, count: int, seed: int,
                 augment: AugmentOptions | None, limit: PixelLimit = DEFAULT_LIMIT) -> None:
        super().__init__(split, seed, augment)
        self.size = synthetic["size"]
        self.dataset_seed = synthetic["seed"]
        self.family = {key: value for key, value in synthetic.items() if key not in NOT_FAMILY_KEYS}
        SynthOptions.from_mapping(self.family)  # a bad setting is an error now, not in a loader worker
        self.count = count
        self.crops_per_face = int(synthetic.get("crops_per_face", 1)) if split == "train" else 1
        self.photo_share = float(synthetic.get("photo_share", 0.0))
        self.photos = None
        if split == "train" and synthetic.get("photos") and self.photo_share > 0:
            width = tuple(float(v) for v in synthetic.get("photo_face_width", (240, 400)))
            self.photos = PhotoFaces(synthetic["photos"], self.size, width, limit)
            self.options = SynthOptions.from_mapping(self.family)
        self._last: tuple[int, dict[str, Any]] | None = None

    def __len__(self) -> int:
        return self.count

    def load(self, index: int) -> dict[str, Any]:
        face = index // self.crops_per_face
        if self._last is None or self._last[0] != face:
            if self.photos is not None and Draws(self.dataset_seed, "photo_share", face).chance(self.photo_share):
                pair = self.photos.pair(face, self.dataset_seed, self.options)
            else:
                pair = synthesize_pair(face, self.size, self.dataset_seed, self.split, **self.family)
            self._last = (face, pair)
        return dict(self._last[1])


class FolderPairs(PairedDataset):
    """Pairs read from disk: two folders with matching stems, or aligned A|B files; optional masks.

    A file whose decoded pixels ``files`` holds (the cache, ``data.cache``) is read from memory, never from disk.
    With ``skip_bad`` a pair that fails to load (a file changed or broke after the pre-check) is reported once
    and replaced by the next readable pair, so a long run does not stop for one file.
    """

    def __init__(self, records: list[PairRecord], split: str, seed: int, augment: AugmentOptions | None,
                 skip_bad: bool = False, files: DecodedFiles | None = None,
                 limit: PixelLimit = DEFAULT_LIMIT, scaling: tuple[int | None, int | None] = (None, None)) -> None:
        super().__init__(split, seed, augment)
        self.records = records
        self.skip_bad = skip_bad
        self.files = files if files is not None else DecodedFiles(keep=False)
        self.limit = limit
        self.bad: set[int] = set()
        self.max_side, self.face_width = scaling  # data.max_side and inference.face_width (``data.training_scale``)
        self.scales: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.augment is None:
            return super().__getitem__(index)
        if index < 0:
            raise IndexError(f"dataset indices are non-negative, got {index}")
        pixels, record = self._readable(index % len(self))
        options = self.augment
        if self.face_width:  # each pair at its own face's scale
            options = at_scale(options, pixels["input"].shape[-2:], self.training_scale(index % len(self)))
        try:
            return augment_item(pixels, options, generator_for(self.seed, "augment", index),
                                lambda key, part: self._convert(key, part, record))
        except DataError as exc:  # a crop larger than the image: name the file
            raise DataError(f"{record.input}: {exc}") from exc

    def training_scale(self, index: int) -> float:
        """The factor that brings pair ``index`` to the training scale (``data.training_scale``), found once."""
        if index not in self.scales:
            pixels, record = self._readable(index)
            image = self._convert("input", pixels["input"], record) if self.face_width else pixels["input"]
            self.scales[index] = training_scale(image, self.max_side, self.face_width)
        return self.scales[index]

    def load(self, index: int) -> dict[str, Any]:
        pixels, record = self._readable(index)
        return {**pixels, **{key: self._convert(key, pixels[key], record) for key in ("input", "target", "mask")
                             if key in pixels}}

    def load_pixels(self, index: int) -> tuple[dict[str, Any], Callable[[str, torch.Tensor], torch.Tensor]]:
        pixels, record = self._readable(index)
        return pixels, lambda key, part: self._convert(key, part, record)

    def _readable(self, index: int) -> tuple[dict[str, Any], PairRecord]:
        """The decoded pixels of pair ``index``; with ``skip_bad``, of the next readable pair when it fails."""
        if not self.skip_bad:
            return self._read(index), self.records[index]
        for offset in range(len(self.records)):
            candidate = (index + offset) % len(self.records)
            if candidate in self.bad:
                continue
            try:
                return self._read(candidate), self.records[candidate]
            except DataError as exc:
                self.bad.add(candidate)
                warnings.warn(f"data.skip_bad_pairs: skipping pair {self.records[candidate].name}: {exc}",
                              stacklevel=3)
        raise DataError(f"data.skip_bad_pairs: none of the {len(self.records)} pairs can be read any more; "
                        f"check the files under data.root")

    @staticmethod
    def _convert(key: str, pixels: torch.Tensor, record: PairRecord) -> torch.Tensor:
        """Decoded pixels (or a region of them) -> float in [0, 1]: RGB for images, one channel for masks."""
        if key == "mask":
            return pixels_to_mask(pixels)
        return pixels_to_image(pixels, record.input if key == "input" or record.target is None else record.target)

    def _pixels(self, path: Path) -> torch.Tensor:
        held = self.files.get(path)
        return held if held is not None else read_pixels(path, self.limit)

    def _read(self, index: int) -> dict[str, Any]:
        """The decoded pixels of pair ``index`` (uint8/uint16 ``[C,H,W]``; aligned A|B files as two halves)."""
        record = self.records[index]
        source = self._pixels(record.input)
        if record.target is None:
            half = source.shape[-1] // 2
            source, target = source[..., :half], source[..., half : 2 * half]
        else:
            target = self._pixels(record.target)
        if source.shape[-2:] != target.shape[-2:]:
            raise DataError(f"size mismatch: {record.input} decodes to {tuple(source.shape[-2:])} but "
                            f"{record.target} to {tuple(target.shape[-2:])}")
        item: dict[str, Any] = {"input": source, "target": target}
        if record.mask is not None:
            mask = self._pixels(record.mask)
            if mask.shape[-2:] != source.shape[-2:]:
                raise DataError(f"size mismatch: mask {record.mask} is {tuple(mask.shape[-2:])}, "
                                f"its pair {tuple(source.shape[-2:])}")
            item["mask"] = mask
        item["name"] = record.name
        return item


def _limit(count: int, limit: int | None) -> int:
    return count if limit is None else min(count, int(limit))


class _Subset(PairedDataset):
    """The first ``count`` pairs of another dataset (a limited validation set)."""

    def __init__(self, base: PairedDataset, count: int) -> None:
        super().__init__(base.split, base.seed, None)
        self.base = base
        self.count = count

    def __len__(self) -> int:
        return self.count

    def load(self, index: int) -> dict[str, Any]:
        return self.base.load(index)

    def load_pixels(self, index: int) -> tuple[dict[str, Any], Callable[[str, torch.Tensor], torch.Tensor]]:
        return self.base.load_pixels(index)


def _with_rehearsal(pairs: Dataset, data: dict[str, Any], seed: int, options: AugmentOptions,
                    masks: bool) -> Rehearsal:
    """The training stream of your pairs with ``data.rehearsal`` of its crops cut from synthetic faces."""
    if options.crop is None:
        raise ConfigError("data.rehearsal mixes crops of synthetic faces into batches of your pairs, so they need one "
                          "size: set data.crop (e.g. 128), or data.rehearsal=0")
    synthetic = SyntheticPairs(data["synthetic"], "train", SYNTHETIC_STREAM_LENGTH, seed, options, data_limit(data))
    return Rehearsal(pairs, synthetic, float(data["rehearsal"]), seed, masks)


def build_dataset(data: dict[str, Any], split: str, seed: int = 0, augment: bool = True,
                  face_width: int | None = None) -> Dataset:
    """The dataset of ``split`` (train | val | test | all | holdout) described by the resolved ``options["data"]``.

    ``all`` (folder and aligned data) is every pair of data.root, whatever its split folders or data.split_ratio.
    With ``data.holdout``, ``train`` leaves out the held-out pairs or regions and ``holdout``
    is what they hold out. Augmentation (data.crop, data.resize, data.augment) applies to the train split only,
    unless ``augment`` is false; ``data.val_count`` limits the validation split. ``seed`` seeds the augmentation
    (the synthetic faces follow data.synthetic.seed). ``face_width`` (the run's ``inference.face_width``) scales
    your pairs down to the face width the network learns (``data.training_scale``).
    """
    choice(split, (*DATASET_SPLITS, HOLDOUT), "split")
    source = data["source"]  # one of SOURCES: checked when options load, and when test reads a checkpoint's
    if split in (ALL, HOLDOUT) and source == "synthetic":
        raise DataError(f"split '{split}' is for data.source=folder or aligned: the synthetic data has train, val "
                        "and test splits (data.synthetic.*_count)")
    options = AugmentOptions.from_data(data) if split == "train" and augment else None
    if source == "synthetic":
        if data.get("holdout", "none") != "none":
            raise ConfigError("data.holdout is for data.source=folder or aligned (your own pairs); the synthetic "
                              "data has a validation split: set data.holdout=none")
        if data.get("rehearsal"):
            raise ConfigError("data.rehearsal mixes the synthetic faces into your own pairs (data.source=folder or "
                              "aligned); with data.source=synthetic every pair is synthetic already: set "
                              "data.rehearsal=0")
        synthetic = data["synthetic"]
        counts = {"train": synthetic["train_count"] or SYNTHETIC_STREAM_LENGTH,
                  "val": _limit(synthetic["val_count"], data.get("val_count")), "test": synthetic["test_count"]}
        if counts[split] <= 0:
            raise DataError(f"data.synthetic.{split}_count is {counts[split]}: the {split} split would be empty")
        return SyntheticPairs(synthetic, split, counts[split], seed, options, data_limit(data))
    records, files = find_pairs(data, "train" if split == HOLDOUT else split)
    mode = holdout_mode(data, len(records)) if split in ("train", HOLDOUT) else "none"
    if split == HOLDOUT and mode == "none":
        raise ConfigError("split 'holdout' needs data.holdout (auto | pairs | regions)")
    if mode == "pairs":
        held = held_out_names([r.name for r in records])
        records = [r for r in records if (r.name in held) == (split == HOLDOUT)]
    dataset = FolderPairs(records, split, seed, None if mode == "regions" else options,
                          bool(data.get("skip_bad_pairs", False)), files, data_limit(data),
                          (data.get("max_side"), face_width))
    if split == HOLDOUT:
        return HeldOut(dataset, data, regions=mode == "regions")
    if mode == "regions" and options is not None:
        dataset = RegionPairs(dataset, options, data)
    if options is not None and data.get("rehearsal"):
        return _with_rehearsal(dataset, data, seed, options, masks=any(r.mask is not None for r in records))
    if split == "val" and data.get("val_count") is not None:
        return _Subset(dataset, _limit(len(dataset), data["val_count"]))
    return dataset
