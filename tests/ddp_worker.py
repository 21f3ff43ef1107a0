"""Run under `torchrun --nproc_per_node=2` by test_distributed.py: trains a tiny GAN with gloo, saves per-rank weights."""

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from engine_utils import tiny_options  # noqa: E402

from gan_retouch.train import build_training  # noqa: E402

root = Path(sys.argv[1])
torch.set_num_threads(1)
options = tiny_options(root, "train.steps=30", "train.lr=2e-3", "train.log_every=5", "train.save_every=0")
trainer = build_training(options)
metrics = trainer.fit()
rank = int(os.environ["RANK"])
torch.save({"g": trainer.model.generator.state_dict(), "d": trainer.model.discriminator.state_dict()},
           root / f"rank{rank}.pt")
(root / f"metrics{rank}.json").write_text(json.dumps(metrics))
