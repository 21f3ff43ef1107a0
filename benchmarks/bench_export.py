"""Export parity figures: the default teacher and both students to ONNX and TorchScript, fp32 and fp16.

Weights are the default initialisation plus fixed random noise (a fresh student is exactly the identity,
which would make parity trivial). For each export it prints the file size, the export time and the maximum
absolute difference from the float32 PyTorch model on random and synthetic-portrait inputs at the check
sizes, one of which is not a multiple of the networks' strides.

    python benchmarks/bench_export.py
    python benchmarks/bench_export.py --sizes 1x512x512 1x513x383 --formats onnx

It records the table in benchmarks/results/bench_export.json (docs/results.md) unless --no-record.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.config import option_defaults
from gan_retouch.deploy.export import FORMATS, export_model
from gan_retouch.registry import GENERATORS

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results.py, also when loaded by file path
from results import record, table  # noqa: E402

MODELS = ("autoretouch", "student", "student_fast")


def noisy_default(name: str, seed: int) -> torch.nn.Module:
    """The default generator with its weights moved by N(0, 0.02) noise (fixed seed)."""
    torch.manual_seed(seed)
    model = GENERATORS.build(name).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1x128x128", "2x96x80", "1x129x95"],
                        help="batch x height x width of the parity inputs")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    parser.add_argument("--no-record", action="store_true", help="print only; do not write benchmarks/results/")
    args = parser.parse_args()
    sizes = [[int(v) for v in s.split("x")] for s in args.sizes]
    defaults = option_defaults("export")["export"]
    settings = (f"opset {defaults['opset']}; check sizes {' '.join(args.sizes)}; tolerance {defaults['tolerance']:g} "
                f"(fp32), {defaults['tolerance_fp16']:g} (fp16)")
    print(f"torch {torch.__version__}; {settings}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in MODELS:
            model = noisy_default(name, seed=0)
            for fmt in args.formats:
                for fp16 in (False, True):
                    path = Path(folder) / f"{name}{'-fp16' if fp16 else ''}{FORMATS[fmt]}"
                    start = time.perf_counter()
                    results = export_model(model, fmt, path, fp16=fp16, check_sizes=sizes, opset=defaults["opset"],
                                           tolerance=defaults["tolerance_fp16" if fp16 else "tolerance"])
                    seconds = time.perf_counter() - start
                    worst = {kind: max(r["max_abs_diff"] for r in results if r["input"] == kind)
                             for kind in ("random", "synthetic")}
                    rows.append([name, fmt, "fp16" if fp16 else "fp32", f"{path.stat().st_size / 1e6:.2f}",
                                 f"{seconds:.1f} s", f"{worst['random']:.1e} / {worst['synthetic']:.1e}"])
                    print("  ".join(rows[-1]), flush=True)
    if not args.no_record:
        columns = ["model", "format", "precision", "file MB", "export + check", "max abs diff (random / synthetic)"]
        record("bench_export", [table(f"default weights plus N(0, 0.02) noise; {settings}", columns, rows)],
               title=f"Export parity, {' and '.join(args.formats)}")


if __name__ == "__main__":
    main()
