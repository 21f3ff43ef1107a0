"""The built-in teacher and student: weights and manifests shipped as package data (docs/builtin.md).

``store`` finds and checks them by name (``builtin``, ``builtin:teacher``, ``builtin:student``); ``score`` is the
fixed check each manifest records; ``make`` writes them from training checkpoints
(``python -m gan_retouch.builtin.make``).
"""
