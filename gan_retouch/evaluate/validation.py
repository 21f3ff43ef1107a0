"""Validation during training: mean PSNR / SSIM / MS-SSIM (and LPIPS when its weights are here; PSNR inside and
outside the defect masks when the pairs have masks) on fixed pairs, the identity baseline, and the sample grid +
HTML page of the run (the same page ``gan-retouch test`` writes).

A network is scored through the inference plan the run saves with it (``inference.plan.training_plan``: its
working size, coarse pass and edit floor), the plan ``test`` and ``retouch`` run, so best.pt is chosen under the
same inference path it is used with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from gan_retouch import metrics
from gan_retouch.data import build_dataset
from gan_retouch.engine.distributed import DistInfo, all_reduce_sum
from gan_retouch.errors import ConfigError
from gan_retouch.evaluate.page import PageRow, write_page
from gan_retouch.imaging import image_grid, save_image
from gan_retouch.inference.plan import InferencePlan, training_plan
from gan_retouch.inference.run import run_plan
from gan_retouch.inference.work_size import work_shape

ImageFunction = nn.Module | Callable[[torch.Tensor], torch.Tensor]  # a generator, or any image -> image callable
METRICS = ("psnr", "ssim", "ms_ssim")
MASK_METRICS = ("psnr_mask", "psnr_clean")  # PSNR inside / outside the defect mask: fixed enough? harm done?
GRID_SIDE = 512  # longest side of an image in the samples/step_N.png overview (the page keeps full resolution)


def overview(image: torch.Tensor) -> torch.Tensor:
    """``image`` scaled down (antialiased) so that its longer side is at most GRID_SIDE: a grid of 24-megapixel
    photos would otherwise be a 200-megapixel PNG that takes minutes to write."""
    size = work_shape(*image.shape[-2:], GRID_SIDE)
    if size == tuple(image.shape[-2:]):
        return image
    return torch.nn.functional.interpolate(image[None], size=size, mode="bilinear", antialias=True,
                                           align_corners=False)[0].clamp(0, 1)


def resolve_lpips(setting: Any, key: str, offline: bool) -> tuple[nn.Module | None, str | None]:
    """The LPIPS network for an ``auto | true | false`` option, or None and the reason it is left out.

    auto uses the AlexNet weights when they are in torchvision's cache and never downloads; true fetches them
    (downloaded once unless ``offline``) and makes their absence an error."""
    if setting not in (True, False, "auto"):
        raise ConfigError(f"{key} must be auto, true or false; got {setting!r}")
    if setting is False:
        return None, f"LPIPS not computed: {key} is false."
    from gan_retouch.losses.pretrained import build_lpips, fetch_weights, weights_unavailable_reason

    if setting == "auto":
        reason = weights_unavailable_reason("alexnet")
        if reason is not None:
            return None, f"LPIPS not computed: {reason} ({key}: auto never downloads; {key}: true downloads it once)."
    else:
        try:
            fetch_weights("alexnet", offline)
        except ConfigError as exc:
            raise ConfigError(f"{key} is true, but LPIPS cannot run: {exc}") from exc
    return build_lpips("alex").eval(), None


class Validator:
    """Scores any generator (or callable) on the same validation pairs, sharded over DDP ranks."""

    def __init__(self, dataset: Dataset, device: torch.device, dist: DistInfo, batch_size: int,
                 lpips: nn.Module | None = None, samples: int = 4, title: str = "validation",
                 plan: InferencePlan | None = None) -> None:
        self.dataset = dataset
        self.plan = plan or InferencePlan()  # how the networks are run
        self.device = device
        self.dist = dist
        shard = Subset(dataset, list(range(dist.rank, len(dataset), dist.world_size)))
        self.loader = DataLoader(shard, batch_size=batch_size, shuffle=False)
        self.lpips = lpips.to(device) if lpips is not None else None
        self.samples = samples
        self.title = title
        self._identity: dict[str, float] | None = None
        self.has_masks = len(dataset) > 0 and "mask" in dataset[0]
        self.names = METRICS + (("lpips",) if self.lpips is not None else ()) + (MASK_METRICS if self.has_masks else ())

    @classmethod
    def from_options(cls, options: dict[str, Any], device: torch.device, dist: DistInfo) -> Validator:
        """The split ``val.split`` of ``options["data"]`` (val, or train: the training pairs as they are, without
        what data.holdout keeps out; ``data.val_count`` pairs, null = all), LPIPS per ``val.lpips``, networks run
        under the run's inference plan."""
        data, split = options["data"], options["val"].get("split", "val")
        dataset = build_dataset(data, split, int(options["seed"]), augment=False)
        count = data.get("val_count")
        if count is not None and count < len(dataset):
            dataset = Subset(dataset, list(range(int(count))))
        # cache only: val.lpips=true was fetched before step 1, once per machine (engine/backbones.py)
        lpips_model, _ = resolve_lpips(options["val"]["lpips"], "val.lpips", offline=True)
        batch_size = 4 if data["source"] == "synthetic" else 1
        return cls(dataset, device, dist, batch_size, lpips_model, int(options["val"]["samples"]),
                   str(options["name"]), training_plan(options))

    def _outputs(self, model: ImageFunction, batch: dict[str, Any]) -> torch.Tensor:
        x = batch["input"].to(self.device)
        if isinstance(model, nn.Module):
            mask = batch["mask"].to(self.device) if "mask" in batch else None
            return run_plan(self.plan, model, x, mask)
        return model(x)

    @torch.no_grad()
    def evaluate(self, model: ImageFunction) -> dict[str, float]:
        """Mean metrics of ``model`` over the validation set (averaged over every pair on every rank; a masked
        PSNR over the pairs where its region is not empty)."""
        was_training = isinstance(model, nn.Module) and model.training
        if isinstance(model, nn.Module):
            model.eval()
        sums = torch.zeros(2, len(self.names), dtype=torch.float64, device=self.device)  # sums, counts
        for batch in self.loader:
            target = batch["target"].to(self.device)
            output = self._outputs(model, batch).float().clamp(0, 1)
            values = [metrics.psnr(output, target), metrics.ssim(output, target), metrics.ms_ssim(output, target)]
            if self.lpips is not None:
                values.append(self.lpips(output, target).flatten())
            if self.has_masks:
                mask = batch["mask"].to(self.device)
                values += [metrics.masked_psnr(output, target, mask, inside=True),
                           metrics.masked_psnr(output, target, mask, inside=False)]
            for index, value in enumerate(values):
                value = value.double()
                sums[0, index] += value.nan_to_num(0.0).sum()
                sums[1, index] += (~value.isnan()).sum()
        if was_training:
            model.train()
        sums = all_reduce_sum(sums, self.dist)
        return {name: float(sums[0, i] / sums[1, i]) if sums[1, i] > 0 else float("nan")
                for i, name in enumerate(self.names)}

    def identity(self) -> dict[str, float]:
        """The identity baseline (output = input), computed once."""
        if self._identity is None:
            self._identity = self.evaluate(lambda x: x)
        return self._identity

    @torch.no_grad()
    def write_samples(self, model: ImageFunction, step: int, run_dir: Path,
                      summary: dict[str, dict[str, float]]) -> Path | None:
        """``samples/step_N.png`` (one row per pair: input | output | target, each at most GRID_SIDE px; an
        overview) and the run's ``web/index.html`` (full resolution),
        with per-image PSNR / SSIM next to the identity baseline, like pix2pix's web/index.html. With
        ``val.samples`` 0 the page holds the summary only and there is no grid (None is returned)."""
        web_dir = Path(run_dir) / "web"
        rows, page_rows = [], []
        was_training = isinstance(model, nn.Module) and model.training
        if isinstance(model, nn.Module):
            model.eval()
        for index in range(min(self.samples, len(self.dataset))):
            item = self.dataset[index]
            batch = {k: v.unsqueeze(0) for k, v in item.items() if isinstance(v, torch.Tensor)}
            output = self._outputs(model, batch)[0].float().clamp(0, 1).cpu()
            rows.append([overview(image) for image in (item["input"], output, item["target"])])
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
        write_page(web_dir, page_rows, summary=summary, title=f"{self.title}: validation at step {step}")
        if not rows:
            return None
        grid_path = Path(run_dir) / "samples" / f"step_{step:07d}.png"
        save_image(image_grid(rows), grid_path)
        return grid_path
