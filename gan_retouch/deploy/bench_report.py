"""The figures around a `gan-retouch bench` timing: peak memory, GPU identity, budget verdicts, the table."""

from __future__ import annotations

import resource
import sys
from typing import Any

import torch
from rich.table import Table

from gan_retouch.errors import ConfigError


def gpu_info(device: torch.device) -> dict[str, Any]:
    """GPU name, driver and device-wide used memory from NVML (nvidia-ml-py)."""
    props = torch.cuda.get_device_properties(device)
    info: dict[str, Any] = {"name": props.name, "total_mb": props.total_memory / 1e6}
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            bus_id = f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
            handle = pynvml.nvmlDeviceGetHandleByPciBusId(bus_id)
            info["name"] = pynvml.nvmlDeviceGetName(handle)
            info["driver"] = pynvml.nvmlSystemGetDriverVersion()
            info["nvml_used_mb"] = pynvml.nvmlDeviceGetMemoryInfo(handle).used / 1e6
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # ImportError or one of NVMLError's many subclasses: reported, not hidden
        info["nvml_error"] = f"{type(exc).__name__}: {exc}"
    for key in ("name", "driver"):
        if isinstance(info.get(key), bytes):
            info[key] = info[key].decode()
    return info


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak memory: CUDA allocator peak, or the process's peak resident set on CPU (MB = 1e6 bytes)."""
    if device.type == "cuda":
        return {"cuda_max_allocated_mb": torch.cuda.max_memory_allocated(device) / 1e6}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bytes_used = rss if sys.platform == "darwin" else rss * 1024  # macOS reports bytes, Linux KiB
    return {"cpu_peak_rss_mb": bytes_used / 1e6}


def check_budgets(latency_ms: float, size_mb: float, budget_ms: float | None,
                  budget_mb: float | None) -> list[dict[str, Any]]:
    """One verdict per budget given: ``{name, value, limit, unit, passed}``."""
    verdicts = []
    for name, value, limit, unit in (("latency", latency_ms, budget_ms, "ms"), ("size", size_mb, budget_mb, "MB")):
        if limit is None:
            continue
        if limit <= 0:
            raise ConfigError(f"the {name} budget must be positive, got {limit} {unit}")
        verdicts.append({"name": name, "value": value, "limit": limit, "unit": unit, "passed": value <= limit})
    return verdicts


def _latency_text(latency: dict[str, float], gmacs: float) -> str:
    return (f"median {latency['median']:.2f} ms, p90 {latency['p90']:.2f} ms, min {latency['min']:.2f} ms "
            f"({latency['runs']} runs; {gmacs / latency['median'] * 1e3:.1f} GMAC/s)")


def _macs_text(native: float, plan: float, width: int, height: int) -> str:
    return f"{native:.4g} G native (the network at {width}x{height}); {plan:.4g} G under the plan"


def report_table(report: dict[str, Any]) -> Table:
    """The report as a two-column rich table."""
    table = Table(title=f"bench: {report['model']}", title_justify="left", show_header=False)
    table.add_column("figure", style="cyan")
    table.add_column("value", style="bold")
    size, throughput = report["size"], report["throughput"]
    device = report["device"] + (f" ({report['gpu']['name']}, driver {report['gpu'].get('driver', '?')})"
                                 if report["gpu"] else "")
    rows = [
        ("device", device),
        ("backend", report["backend"]),
        ("plan timed", report["plan_text"]),
        ("input", f"{report['batch_size']} x 3 x {size} x {size}, {report['precision']}, "
                  f"compile={report['compile']}, cuda_graph={report['cuda_graph']}"),
        ("parameters", f"{report['parameters']:,}"),
        ("file size", f"{report['size_mb_fp32']:.2f} MB fp32, {report['size_mb_fp16']:.2f} MB fp16"),
        (f"MACs per {size}x{size} image", _macs_text(report["gmacs"], report["gmacs_plan"], size, size)),
        (f"latency at {size}x{size}", _latency_text(report["latency_ms"],
                                                    report["gmacs_plan"] * report["batch_size"])),
    ]
    if report.get("uhd"):
        uhd = report["uhd"]
        rows += [("plan at 3840x2160 (4K)", uhd["plan_text"]),
                 ("MACs per 4K image", _macs_text(uhd["gmacs"], uhd["gmacs_plan"], 3840, 2160)),
                 ("latency at 3840x2160 (4K)", _latency_text(uhd["latency_ms"], uhd["gmacs_plan"]))]
    rows.append(("throughput", f"{throughput['images_per_s']:.2f} images/s at batch {throughput['best_batch']}"))
    rows += [(key.replace("_mb", "").replace("_", " "), f"{value:.1f} MB") for key, value in report["memory"].items()]
    if report["gpu"] and "nvml_used_mb" in report["gpu"]:
        rows.append(("NVML device memory used", f"{report['gpu']['nvml_used_mb']:.1f} MB"))
    if report["gpu"] and "nvml_error" in report["gpu"]:
        rows.append(("NVML", f"unavailable: {report['gpu']['nvml_error']}"))
    for table_row in rows:
        table.add_row(*table_row)
    return table


def budget_lines(verdicts: list[dict[str, Any]], size: int) -> list[str]:
    """``PASS latency 12.3 ms <= 50 ms at 1024x1024`` style lines (rich markup)."""
    lines = []
    for v in verdicts:
        mark = "[green]PASS[/]" if v["passed"] else "[red]FAIL[/]"
        relation = "<=" if v["passed"] else ">"
        where = f" at {size}x{size}" if v["name"] == "latency" else " (fp32)"
        lines.append(f"{mark} {v['name']} budget: {v['value']:.2f} {v['unit']} {relation} {v['limit']:g} {v['unit']}{where}")
    return lines
