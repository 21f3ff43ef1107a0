"""Validation on a fixed set: mean PSNR / SSIM / MS-SSIM (and LPIPS when its weights are here), sample grids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from gan_retouch import metrics
from gan_retouch.engine.distributed import DistInfo, all_reduce_sum
from gan_retouch.errors import ConfigError
from gan_retouch.evaluate.page import PageRow, write_page
from gan_retouch.imaging import image_grid, save_image
from gan_retouch.nets.base import run_generator

Model = nn.Module | Callable[[torch.Tensor], torch.Tensor]
METRICS = ("psnr", "ssim", "ms_ssim")
LOWER_IS_BETTER = {"lpips"}


def resolve_lpips(setting: Any) -> tuple[nn.Module | None, str | None]:
    """The LPIPS network for ``val.lpips`` (auto | true | false), or None and the reason it is left out."""
    if setting is False:
        return None, "val.lpips is false"
    from gan_retouch.losses.pretrained import build_lpips, weights_unavailable_reason

    reason = weights_unavailable_reason("alexnet")
    if reason is None:
        return build_lpips("alex").eval(), None
    if setting is True:
        raise ConfigError(f"val.lpips is true but LPIPS cannot run: {reason}")
    return None, reason


class Validator:
    """Scores any generator (or callable) on the same validation pairs, sharded over DDP ranks."""

    def __init__(
        self, dataset: Dataset, device: torch.device, dist: DistInfo, batch_size: int, lpips: nn.Module | None = None
    ) -> None:
        self.dataset = dataset
        self.device = device
        self.dist = dist
        shard = Subset(dataset, list(range(dist.rank, len(dataset), dist.world_size)))
        self.loader = DataLoader(shard, batch_size=batch_size, shuffle=False)
        self.lpips = lpips.to(device) if lpips is not None else None
        self._identity: dict[str, float] | None = None

    def _outputs(self, model: Model, batch: dict[str, Any]) -> torch.Tensor:
        x = batch["input"].to(self.device)
        if isinstance(model, nn.Module):
            mask = batch["mask"].to(self.device) if "mask" in batch else None
            return run_generator(model, x, mask)[0]
        return model(x)

    @torch.no_grad()
    def evaluate(self, model: Model) -> dict[str, float]:
        """Mean metrics of ``model`` over the validation set (averaged over every pair on every rank)."""
        was_training = isinstance(model, nn.Module) and model.training
        if isinstance(model, nn.Module):
            model.eval()
        names = list(METRICS) + (["lpips"] if self.lpips is not None else [])
        sums = torch.zeros(len(names) + 1, dtype=torch.float64, device=self.device)
        for batch in self.loader:
            target = batch["target"].to(self.device)
            output = self._outputs(model, batch).float().clamp(0, 1)
            values = [metrics.psnr(output, target), metrics.ssim(output, target), metrics.ms_ssim(output, target)]
            if self.lpips is not None:
                values.append(self.lpips(output, target))
            for index, value in enumerate(values):
                sums[index] += value.double().sum()
            sums[-1] += target.shape[0]
        if was_training:
            model.train()
        sums = all_reduce_sum(sums, self.dist)
        count = max(1.0, float(sums[-1]))
        return {name: float(sums[i]) / count for i, name in enumerate(names)}

    def identity(self) -> dict[str, float]:
        """The identity baseline (output = input), computed once."""
        if self._identity is None:
            self._identity = self.evaluate(lambda x: x)
        return self._identity

    @torch.no_grad()
    def save_samples(self, model: Model, count: int, grid_path: Path, web_dir: Path, title: str,
                     summary: dict[str, dict[str, float]]) -> Path:
        """A PNG grid (one row per validation pair: input | output | target) and the run's HTML page.

        The page (``web_dir/index.html``, the same page as ``gan-retouch test`` writes) shows the latest samples
        with their per-image PSNR / SSIM next to the identity baseline, like pix2pix's web/index.html.
        """
        rows, page_rows = [], []
        was_training = isinstance(model, nn.Module) and model.training
        if isinstance(model, nn.Module):
            model.eval()
        for index in range(min(count, len(self.dataset))):
            item = self.dataset[index]
            batch = {k: v.unsqueeze(0) for k, v in item.items() if isinstance(v, torch.Tensor)}
            output = self._outputs(model, batch)[0].float().clamp(0, 1).cpu()
            rows.append([item["input"], output, item["target"]])
            stem = f"{index:03d}_{item['name']}"
            paths = {}
            for role, image in (("input", item["input"]), ("output", output), ("target", item["target"])):
                paths[role] = f"images/{stem}_{role}.png"
                save_image(image, web_dir / paths[role])
            target = item["target"].unsqueeze(0)
            scores = {
                label: {"psnr": float(metrics.psnr(image.unsqueeze(0), target)[0]),
                        "ssim": float(metrics.ssim(image.unsqueeze(0), target)[0])}
                for label, image in (("identity", item["input"]), ("model", output))
            }
            page_rows.append(PageRow(name=str(item["name"]), input=paths["input"], target=paths["target"],
                                     outputs={"model": paths["output"]}, metrics=scores))
        if was_training:
            model.train()
        save_image(image_grid(rows), grid_path)
        write_page(web_dir, page_rows, summary=summary, title=title)
        return grid_path


def is_better(metric: str, value: float, best: float | None) -> bool:
    """Whether ``value`` improves on ``best`` for this metric (lower is better for LPIPS)."""
    if best is None:
        return True
    return value < best if metric in LOWER_IS_BETTER else value > best
