"""The training loop: stages in order, and the schedule of logging, validation and saving around model steps.

``TrainingLoop`` owns time (steps, stages, Ctrl-C, progress, the summary); the ``RetouchModel`` it drives owns
the networks and their optimization. Validation is handed in by the command (``gan_retouch.evaluate``), so the
engine knows only the small ``Validation`` protocol below.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Collection
from typing import Any, Protocol

import torch
from rich.markup import escape
from torch import nn

from gan_retouch.config import Options
from gan_retouch.console import console
from gan_retouch.engine import distributed, monitor
from gan_retouch.engine.backbones import fetch_run_backbones
from gan_retouch.engine.checkpoint import save_checkpoint
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.engine.model import NonFiniteStep, RetouchModel
from gan_retouch.engine.monitor import GpuMonitor, LogWindow, RunLog, progress_bar, validation_table
from gan_retouch.engine.precision import resolve_precision
from gan_retouch.engine.resume import complete_error, kept_init, resumed_options, weights_from_checkpoint
from gan_retouch.engine.run_folder import RunFolder
from gan_retouch.engine.signals import install_stop_handlers, restore_handlers
from gan_retouch.engine.stage import StagePlan, batch_stream, plan_stages
from gan_retouch.engine.strength import calibrate_run, check_strength
from gan_retouch.errors import ConfigError, GanRetouchError
from gan_retouch.registry import choice
from gan_retouch.runtime import seed_everything

MAX_CONSECUTIVE_SKIPS = 20  # nan_policy=skip gives up after this many non-finite steps in a row


class TrainingStopped(GanRetouchError):
    """The run stopped early (Ctrl-C or a non-finite loss); the message says what was saved."""


class TrainingInterrupted(TrainingStopped):
    """Ctrl-C or SIGTERM: a checkpoint was saved at a step boundary; exit status 128 + signal (130, 143)."""

    exit_code = 130

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.exit_code = 128 + int(signum)


class Validation(Protocol):
    """What the loop needs from validation (``gan_retouch.evaluate.validation.Validator`` provides it)."""

    names: tuple[str, ...]  # the metrics evaluate() returns

    def evaluate(self, model: nn.Module) -> dict[str, float]: ...

    def identity(self) -> dict[str, float]: ...

    def write_samples(self, model: nn.Module, step: int, run_dir: Any, summary: dict[str, dict[str, float]]) -> None:
        ...


ModelFactory = Callable[[Options, torch.device, DistInfo, Any], RetouchModel]
ValidationFactory = Callable[[Options, torch.device, DistInfo], Validation]


class TrainingLoop:
    """Runs the remaining stages of a run; every failure of the options or folder surfaces before step 1.

    ``command_line`` is the option keys the command line set: a resumed run keeps its own schedule for the keys
    not in it (``engine.resume``); None (the Python API) takes ``options`` as they are.
    """

    def __init__(self, options: Options, model_factory: ModelFactory, validation_factory: ValidationFactory,
                 command_line: Collection[str] | None = None) -> None:
        self.options = options
        self.dist = distributed.init_distributed(str(options["device"]))
        self.device = device = distributed.bind_device(options["device"], self.dist)  # cuda:LOCAL_RANK under DDP
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = bool(options["train"]["cudnn_benchmark"])
        fetch_run_backbones(options, self.dist)  # pretrained weights downloaded or refused before any work
        seed_everything(int(options["seed"]))  # identical initial weights on every rank
        self.run = RunFolder(options, self.dist.is_main)
        self.fresh = not self.run.will_resume()  # a resumed run takes every weight from its checkpoint
        self.model = model_factory(options if self.fresh else weights_from_checkpoint(options), device, self.dist,
                                   resolve_precision(options["train"], device))
        self.plans = plan_stages(options)
        self.total_steps = sum(plan.steps for plan in self.plans)
        check_strength(options)
        self.validation = validation_factory(options, device, self.dist)
        choice(options["val"]["metric"], self.validation.names, "val.metric (the metric that selects best.pt)")
        self.min_clean = options["val"]["min_psnr_clean"]
        if self.min_clean is not None and "psnr_clean" not in self.validation.names:
            raise ConfigError("val.min_psnr_clean needs validation pairs with defect masks (the synthetic data has "
                              "them; for folders give data.mask_dir), to measure PSNR outside them; drop the option")
        self.run_dir = self.run.path
        self.step = self.stage_index = self.stage_step = 0
        self.best: dict[str, Any] = {"metric": options["val"]["metric"], "value": None, "step": None}
        self.stop_requested, self.stop_signal, self._skips = False, signal.SIGINT, 0
        state = distributed.decided_on_main(self.run.open, self.dist)  # rank 0's folder decides for every rank
        try:
            if state is not None:
                self._resume(state, command_line)
        except BaseException:
            self.run.close()
            raise
        self.run.begin(self.options, self.step if state is not None else None)
        self.log = RunLog(self.run_dir, bool(options["train"]["tensorboard"])) if self.dist.is_main else None
        self.gpu = GpuMonitor(device) if self.dist.is_main else None
        self.times = monitor.StepTimes()

    def _resume(self, state: dict[str, Any], command_line: Collection[str] | None) -> None:
        """Take the position, schedule and weights of ``state``; a complete run is refused before anything is
        written."""
        self.options, notes = resumed_options(self.options, state.get("options"), command_line, int(state["step"]))
        self.options, init_notes = kept_init(self.options, state.get("options"), command_line)
        notes += init_notes
        self.plans = plan_stages(self.options)
        self.total_steps = sum(plan.steps for plan in self.plans)
        self.step, self.stage_index, self.stage_step = (int(state[k]) for k in ("step", "stage", "stage_step"))
        self.best = state.get("best", self.best)
        if self.step >= self.total_steps or self.stage_index >= len(self.plans):
            raise complete_error(self.run_dir, self.step, self.total_steps)
        self.model.start_stage(self.plans[self.stage_index])
        self.model.load_state_dict(state)
        for note in notes if self.dist.is_main else ():
            console.print(f"[yellow]{escape(f'{self.run_dir}: {note}')}[/]")

    # ----------------------------------------------------------------- saving and validation
    def save(self, plan: StagePlan, name: str = "latest.pt") -> None:
        """An atomic checkpoint of the model and the loop's position (rank 0 only)."""
        if self.dist.is_main:
            save_checkpoint({**self.model.state_dict(), "options": self.options, "step": self.step,
                             "stage": plan.index, "stage_step": self.stage_step, "best": self.best},
                            self.run_dir / name)

    def validate(self, plan: StagePlan) -> dict[str, float]:
        """Validation metrics of the evaluation generator; samples, page, log record and best.pt on rank 0."""
        model = self.model
        distributed.sync_buffers([model.generator, model.discriminator, model.eval_generator()], self.dist)
        scores = self.validation.evaluate(model.eval_generator())
        identity = self.validation.identity()
        if not self.dist.is_main:
            return scores
        self.validation.write_samples(model.eval_generator(), self.step, self.run_dir,
                                      {"identity": identity, "model": scores})
        metric = self.options["val"]["metric"]
        self.log.write({"step": self.step, "stage": plan.name, **{f"val_{k}": v for k, v in scores.items()},
                        **{f"identity_{k}": v for k, v in identity.items()}})
        console.print(validation_table(self.step, scores, identity))
        eligible = self.min_clean is None or scores["psnr_clean"] >= self.min_clean
        if not eligible:
            console.print(f"step {self.step}: psnr_clean {scores['psnr_clean']:.2f} dB is below val.min_psnr_clean "
                          f"{self.min_clean:g} dB, so this step cannot become best.pt")
        if eligible and monitor.is_better(metric, scores[metric], self.best["value"]):
            self.best = {"metric": metric, "value": scores[metric], "step": self.step}
            self.save(plan, "best.pt")
        return scores

    # ----------------------------------------------------------------- steps
    def _step(self, plan: StagePlan, batches: Any) -> tuple[dict[str, torch.Tensor], int]:
        """One model step with the NaN policy applied: its loss values and images, ({}, 0) when skipped."""
        drawn = [next(batches) for _ in range(self.model.d_steps)]
        try:
            values = self.model.train_step(drawn)
        except NonFiniteStep as bad:
            self._skips += 1
            if self.options["train"]["nan_policy"] == "skip" and self._skips <= MAX_CONSECUTIVE_SKIPS:
                console.print(f"[yellow]step {self.step + 1}: non-finite {bad}; step skipped[/]")
                return {}, 0
            latest = self.run_dir / "latest.pt"
            raise TrainingStopped(
                f"non-finite loss at step {self.step + 1} (stage {plan.name}) in term(s) {bad}; no weights were "
                f"updated with it and nothing was saved. Last good checkpoint: "
                f"{latest if latest.exists() else 'none saved yet'}. Lower train.lr, enable train.grad_clip, "
                "or set train.nan_policy=skip."
            ) from None
        self._skips = 0
        return values, int(drawn[-1]["input"].shape[0])

    def _log(self, plan: StagePlan, window: LogWindow, batches: monitor.TimedBatches) -> str:
        speed = self.times.record(window, self.device, self.dist.world_size, batches.take_waited())
        values = window.means(self.dist)
        if not self.dist.is_main:
            return ""
        record = {"step": self.step, "stage": plan.name, **values, "lr": window.lr,
                  **speed, **(self.gpu.figures() if self.gpu else {})}
        self.log.write(record)
        shown = ["G", "D"] + [k for k in values if k not in ("G", "D")][:2]
        info = "  ".join(f"{k} {values[k]:.4g}" for k in shown if k in values)
        return f"{info}  {speed['images_per_sec']:.1f} img/s, {monitor.speed_note(speed)}"

    def _run_stage(self, plan: StagePlan, progress: Any, task: Any) -> None:
        train, val_every = plan.options["train"], int(self.options["val"]["every"])
        log_every, save_every, keep_every = (int(train[k]) for k in ("log_every", "save_every", "keep_every"))
        batches = batch_stream(plan, int(self.options["seed"]), self.stage_step, self.dist, self.device)
        window = LogWindow()
        while self.stage_step < plan.steps:
            window.begin_step(self.device)
            lr = self.model.optimization.lr
            values, images = self._step(plan, batches)
            self.model.optimization.step_schedules()
            self.step += 1
            self.stage_step += 1
            if images:
                window.add(values, images, lr)
            progress.update(task, completed=self.step)
            last = self.stage_step == plan.steps
            if self.step % log_every == 0 or last:
                info = self._log(plan, window, batches)
                progress.update(task, info=info)
                if self.dist.is_main and not console.is_terminal:  # no live bar in logs: one line instead
                    console.print(f"step {self.step}/{self.total_steps} ({plan.name}) {info}")
                window = LogWindow()
            if val_every and self.step % val_every == 0 and not last:
                self.validate(plan)
            if save_every and self.step % save_every == 0:
                self.save(plan)
            if keep_every and self.step % keep_every == 0:
                self.save(plan, f"step_{self.step}.pt")
            self._stop_if_requested(plan, log_every)
        self.save(plan)

    def _stop_if_requested(self, plan: StagePlan, log_every: int) -> None:
        if self.dist.enabled:  # every rank must agree, so ranks compare flags at log steps only
            if self.step % log_every:
                return
            flag = torch.tensor([1.0 if self.stop_requested else 0.0], device=self.device)
            requested = distributed.all_reduce_sum(flag, self.dist).item() > 0
        else:
            requested = self.stop_requested
        if requested:
            self.save(plan)
            where = self.run_dir / "latest.pt" if self.dist.is_main else "on rank 0"
            raise TrainingInterrupted(f"interrupted at step {self.step} by {signal.Signals(self.stop_signal).name}; "
                                      f"saved {where}. Continue with the same command plus --resume.",
                                      self.stop_signal)

    # ----------------------------------------------------------------- the run
    def fit(self, first: Callable[[], object] | None = None) -> dict[str, float]:
        """Run ``first`` (distill scores its teacher), the remaining stages and the final validation, then close."""
        previous_handlers = install_stop_handlers(self._request_stop)
        failed = True
        try:
            if first is not None:
                first()
            with progress_bar(self.dist.is_main) as progress:
                task = progress.add_task("train", total=self.total_steps, completed=self.step, stage="", info="")
                for plan in self.plans[self.stage_index:]:
                    if plan.index != self.stage_index or self.model.optimization is None:
                        self.stage_index, self.stage_step = plan.index, 0
                        self.model.start_stage(plan)
                    label = f"{self.model.kind} {plan.name} ({plan.index + 1}/{len(self.plans)})"
                    progress.update(task, stage=label)
                    self._run_stage(plan, progress, task)
            final = self._finish(self.plans[-1])
            failed = False
            return final
        finally:
            restore_handlers(previous_handlers)
            if self.log is not None:
                self.log.close()
            if failed and self.fresh:  # a new run that saved nothing leaves its name free for the next try
                self.run.discard_unsaved()
            self.run.close()
            distributed.shutdown(self.dist)

    def _finish(self, plan: StagePlan) -> dict[str, float]:
        scores = self.validate(plan)
        final = {**scores, **{f"identity_{k}": v for k, v in self.validation.identity().items()}}
        if self.dist.is_main:
            gain = final["psnr"] - final["identity_psnr"]
            fit = " (training pairs: a fit, not a held-out score)" if self.options["val"]["split"] == "train" else ""
            console.print(
                f"[bold]done[/]: {self.step} steps ({monitor.speed_note(self.times.figures())}). Validation PSNR{fit} "
                f"{final['psnr']:.2f} dB vs identity {final['identity_psnr']:.2f} dB "
                f"([{'green' if gain > 0 else 'red'}]{gain:+.2f} dB[/]); SSIM "
                f"{final['ssim']:.4f} vs {final['identity_ssim']:.4f}.{monitor.best_note(self.best, self.step, self.min_clean)} Run folder: {self.run_dir}"
            )
            summary = {"step": self.step, **final, **self.times.figures()}
            if self.options["inference"]["strength"] == "auto":
                summary.update(calibrate_run(self.options, self.run_dir, self.device).summary())
            (self.run_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        return final

    def _request_stop(self, signum: int) -> None:
        """A stop signal: save at the end of this step; a second one aborts at once."""
        if self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested, self.stop_signal = True, signum
        console.print(f"[yellow]{signal.Signals(signum).name}: saving a checkpoint at the end of this step (send it "
                      "again to abort)[/]")
