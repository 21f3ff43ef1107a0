"""Before step 1, and before the run folder is touched: the pretrained backbones a run needs are on this machine.

The loss terms of every stage that run an ImageNet backbone (``vgg``, ``lpips``), and the validation's LPIPS when
``val.lpips`` is true, are fetched into torchvision's cache: downloaded once when allowed, or refused with one line
(``gan_retouch.losses.pretrained.fetch_weights``). Under torchrun the first process of each machine fetches while
the others wait, so a file is downloaded once per machine and every process then reads the same cache.
"""

from __future__ import annotations

import torch.distributed

from gan_retouch.config import Options, stage_options
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.errors import ConfigError
from gan_retouch.losses.perceptual import pretrained_backbones
from gan_retouch.losses.pretrained import resolve_weights

LPIPS_METRIC_ARCH = "alexnet"  # the validation LPIPS (evaluate.validation.resolve_lpips) runs LPIPS alex


def fetch_run_backbones(options: Options, dist: DistInfo) -> None:
    """Fetch (or check) every pretrained backbone of the run; a ConfigError when a needed one is unavailable."""
    if dist.local_rank == 0:
        _fetch(options)
    if dist.enabled:
        torch.distributed.barrier()


def _fetch(options: Options) -> None:
    offline = bool(options["pretrained"]["offline"])
    specs = [options["losses"]] + [stage_options(options, i)["losses"] for i in range(len(options.get("stages") or []))]
    for arch, weights in dict.fromkeys(need for spec in specs for need in pretrained_backbones(spec)):
        resolve_weights(arch, weights, offline)
    if options["val"]["lpips"] is True:  # auto uses the weights only when they are already here
        try:
            resolve_weights(LPIPS_METRIC_ARCH, "imagenet", offline)
        except ConfigError as exc:
            raise ConfigError(f"val.lpips is true, but LPIPS cannot run: {exc}") from exc
