"""Run under `torchrun --standalone --nproc_per_node=2` by test_distributed.py: one scenario on two gloo ranks.

    ddp_worker.py ROOT [lockstep | nan | unused | distill]

lockstep: a tiny GAN trains 30 steps; each rank saves its weights and metrics.
nan:      rank 1 alone gets a NaN loss at steps 2, 4 and 5 (nan_policy=skip, at most one skip in a row): both
          ranks skip steps 2 and 4 and both stop at step 5. Before training, rank 1 reads an empty log window.
unused:   u2net_lite trained without its mask terms (its mask head gets no gradient).
distill:  a 3-step distillation from a tiny teacher, with the final report.
node:     one rank of a two-"node" launch (``ddp_worker.py ROOT node STEPS RESUME``): its run folder is
          ROOT/node<GROUP_RANK>, as on machines without a shared disk; it trains to STEPS (train.resume=RESUME)
          and saves its weights and the step it started from.
"""

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from engine_utils import tiny_options  # noqa: E402

from gan_retouch.engine import loop as loop_module  # noqa: E402
from gan_retouch.engine.distributed import init_distributed  # noqa: E402
from gan_retouch.engine.monitor import LogWindow  # noqa: E402
from gan_retouch.train import build_training  # noqa: E402

root = Path(sys.argv[1])
scenario = sys.argv[2] if len(sys.argv) > 2 else "lockstep"
rank = int(os.environ["RANK"])
torch.set_num_threads(1)


def save_weights(trainer) -> None:
    weights = {"g": trainer.model.generator.state_dict()}
    if trainer.model.discriminator is not None:
        weights["d"] = trainer.model.discriminator.state_dict()
    torch.save(weights, root / f"rank{rank}.pt")


def poison_rank1(trainer, steps: set[int]) -> None:
    """On rank 1 only, the first loss term returns NaN during the given steps."""
    step = trainer.model.train_step

    def poisoned(batches):
        if rank != 1 or trainer.step + 1 not in steps:
            return step(batches)
        term = next(iter(trainer.model.optimization.losses.terms.values()))
        original = term.forward
        term.forward = lambda ctx: original(ctx) * float("nan")
        try:
            return step(batches)
        finally:
            term.forward = original

    trainer.model.train_step = poisoned


if scenario == "lockstep":
    options = tiny_options(root, "train.steps=30", "train.lr=2e-3", "train.log_every=5", "train.save_every=0")
    trainer = build_training(options)
    metrics = trainer.fit()
    save_weights(trainer)
    (root / f"metrics{rank}.json").write_text(json.dumps(metrics))
elif scenario == "nan":
    window = LogWindow()
    if rank == 0:
        window.add({"l1": torch.tensor(2.0)}, images=2, lr=0.1)
    means = window.means(init_distributed("cpu"))  # rank 1's window is empty: it must still take part
    loop_module.MAX_CONSECUTIVE_SKIPS = 1
    options = tiny_options(root, "train.steps=6", "train.nan_policy=skip", "train.save_every=1")
    trainer = build_training(options)
    poison_rank1(trainer, {2, 4, 5})
    try:
        trainer.fit()
        stopped = None
    except loop_module.TrainingStopped as exc:
        stopped = str(exc)
    save_weights(trainer)
    (root / f"result{rank}.json").write_text(json.dumps({"means": means, "stopped": stopped, "step": trainer.step}))
elif scenario == "unused":
    extra = {"model": {"generator": {"name": "u2net_lite", "args": {"width": 4, "mid": 2, "ngf": None,
                                                                    "n_blocks": None, "edit_mask": None,
                                                                    "edit_floor": None}},
                       "discriminator": {"name": None}},
             "inference": {"coarse_pass": False},
             "losses": {"gan": None, "edit_map": None, "keep": None}}
    trainer = build_training(tiny_options(root, "train.steps=3", "train.save_every=0", extra=extra))
    trainer.fit()
    save_weights(trainer)
elif scenario == "distill":
    from gan_retouch.config import resolve
    from gan_retouch.distill.command import run_distill

    overrides = {
        "device": "cpu", "checkpoints_root": str(root / "ck"), "results_root": str(root / "res"),
        "data": {"batch_size": 2, "crop": 32, "val_count": 4, "synthetic": {"size": 48, "val_count": 4}},
        "model": {"generator": {"args": {"width": 8, "blocks": 1, "context": 1, "detail": 8, "detail_blocks": 0}}},
        "train": {"steps": 3, "log_every": 1, "save_every": 3},
        "val": {"every": 0, "samples": 1, "lpips": False},
        "distill": {"teacher": str(root / "teacher.pt"), "latency_size": 32, "latency_time_s": 0.01},
    }
    options, _ = resolve("distill", "student", overrides)
    (root / f"exit{rank}.txt").write_text(str(run_distill(options)))
elif scenario == "node":
    node = root / f"node{os.environ['GROUP_RANK']}"
    steps, resume = sys.argv[3], sys.argv[4]
    options = tiny_options(node, f"train.steps={steps}", "train.save_every=2", f"train.resume={resume}")
    trainer = build_training(options)
    started_at = trainer.step
    trainer.fit()
    save_weights(trainer)
    (root / f"node_rank{rank}_{steps}.json").write_text(json.dumps({"started_at": started_at, "step": trainer.step}))
else:
    raise SystemExit(f"unknown scenario {scenario!r}")
