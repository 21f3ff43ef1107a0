"""Distillation of a trained teacher into a lightweight student (`gan-retouch distill`)."""

from gan_retouch.distill.command import run_distillation

__all__ = ["run_distillation"]
