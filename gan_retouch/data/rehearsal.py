"""Rehearsal: a share of a fine-tune's training crops cut from the built-in synthetic faces, beside your pairs.

A fine-tune on one or a few pairs learns their photos as well as their retoucher's style, and what the model it
starts from knew (heal a blemish, leave eyes, hair and skin texture as they are) fades on other photos unless
training keeps showing it. With ``data.rehearsal`` = r, training item ``v`` is, with chance r drawn from
(seed, v), a crop of built-in synthetic face ``v`` (``data.synthetic``) instead of one of your pairs. Only the
training stream mixes: the held-out strength check and validation score your pairs alone.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from gan_retouch.synth.noise import Draws

SHARED_KEYS = ("input", "target", "name")  # what every item of a batch has; "mask" too when your pairs have one


class Rehearsal(Dataset):
    """Your training pairs (``pairs``), with a drawn ``share`` of the items taken from ``synthetic`` instead.

    ``masks``: your pairs come with masks, so the synthetic items keep theirs (batches need the same keys)."""

    def __init__(self, pairs: Dataset, synthetic: Dataset, share: float, seed: int, masks: bool) -> None:
        self.pairs, self.synthetic, self.share, self.seed = pairs, synthetic, share, seed
        self.keys = (*SHARED_KEYS, "mask") if masks else SHARED_KEYS

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index >= 0 and Draws(self.seed, "rehearsal", index).chance(self.share):
            item = self.synthetic[index]
        else:
            item = self.pairs[index]
        return {key: item[key] for key in self.keys}
