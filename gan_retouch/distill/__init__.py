"""Distillation of a trained teacher into a lightweight student (`gan-retouch distill`)."""

from gan_retouch.distill.command import run_distill

__all__ = ["run_distill"]
