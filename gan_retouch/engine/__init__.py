"""The training loop, stages, checkpoints, resume, EMA, distributed training and logging."""
