"""Shared helpers for the CPU benchmarks: timing, peak memory, child processes, machine info, output.

Each measured configuration should run in a fresh child process (``run_child``), so that the peak
resident set size (``ru_maxrss``) belongs to that configuration alone.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

GIB = 1024**3
TCMALLOC_NAMES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4")
LIB_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
)


def time_repeats(
    fn: Callable[[], object], repeats: int, warmup: int = 1, budget_s: float | None = None
) -> dict[str, Any]:
    """Wall-clock seconds of ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed ones
    (``cpu_s``: this process's CPU seconds per run, all threads; less sensitive to other jobs).

    With ``budget_s``, fewer timed calls (at least one) are made when the last warm-up call shows
    that ``repeats`` of them would take longer than the budget.
    """
    elapsed = 0.0
    for _ in range(warmup):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
    if budget_s is not None and warmup and elapsed * repeats > budget_s:
        repeats = max(1, int(budget_s / elapsed))
    times, cpu = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times, "cpu_s": cpu}


class PartTimer:
    """Wall seconds spent in named parts of a model, per step: forward hooks on modules (outermost
    call of a nested part only) and wrapped module-level functions. ``sync`` runs before every
    clock read (torch.cuda.synchronize on GPUs)."""

    def __init__(self, sync: Callable[[], None] = lambda: None) -> None:
        self.sync = sync
        self.seconds: dict[str, float] = defaultdict(float)
        self.steps: list[dict[str, float]] = []
        self._open: dict[int, float] = {}

    def hook(self, module: Any, part: str) -> None:
        """Time every forward call of ``module`` as ``part``."""

        def pre(mod: Any, _: Any) -> None:
            self.sync()
            self._open[id(mod)] = time.perf_counter()

        def post(mod: Any, _: Any, __: Any) -> None:
            self.sync()
            self.seconds[part] += time.perf_counter() - self._open.pop(id(mod))

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)

    def wrap(self, owner: Any, name: str, part: str) -> None:
        """Replace function ``owner.name`` by a timed call of it."""
        fn = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self.sync()
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            self.sync()
            self.seconds[part] += time.perf_counter() - start
            return out

        setattr(owner, name, timed)

    def end_step(self) -> None:
        """Close the current step's totals."""
        self.steps.append(dict(self.seconds))
        self.seconds.clear()

    def medians(self, last: int) -> dict[str, float]:
        """Median seconds per part over the last ``last`` steps."""
        steps = self.steps[-last:]
        parts: Iterator[str] = iter(sorted({k for s in steps for k in s}))
        return {k: statistics.median(s.get(k, 0.0) for s in steps) for k in parts}


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """High-water mark of this process's resident set size (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def find_tcmalloc() -> str | None:
    """Path of an installed tcmalloc shared library (Debian: libtcmalloc-minimal4), or None."""
    for d in LIB_DIRS:
        for name in TCMALLOC_NAMES:
            if os.path.exists(os.path.join(d, name)):
                return os.path.join(d, name)
    return None


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """CPU model, cores, memory, torch version and threads, allocator (LD_PRELOAD), load average.

    ``cpu_capability`` names the vector extensions and native bf16 support read from the CPU flags
    with torch's dispatch level beside them (torch's alone can read AVX2 on an AVX512-BF16 CPU when
    ATEN_CPU_CAPABILITY lowers it); ``cpu_bf16`` is the bf16 part (None: no native bf16)."""
    import torch

    from plantbimoe.cpu import cpu_bf16_support, cpu_summary

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    preload = os.environ.get("LD_PRELOAD", "")
    return {
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": threads if threads is not None else torch.get_num_threads(),
        "cpu_capability": cpu_summary(),
        "cpu_bf16": cpu_bf16_support(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "allocator": os.path.basename(preload) if preload else "glibc (default)",
        "omp_env": {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_", "KMP_"))},
        "loadavg_at_start": os.getloadavg(),
    }


def limit_address_space(gib: float) -> None:
    """Cap this process's virtual memory so a runaway configuration fails instead of swapping."""
    cap = int(gib * GIB)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def run_child(
    argv: Sequence[str], env_extra: dict[str, str] | None = None, timeout: float = 1800
) -> dict[str, Any]:
    """Run ``python argv...`` in a fresh process; its last stdout line must be a JSON object."""
    env = {**os.environ, **(env_extra or {})}
    try:
        proc = subprocess.run(
            [sys.executable, *argv], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"status": "failed", "reason": f"timed out after {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "failed", "reason": f"exit {proc.returncode}: {tail[:200]}"}
    return json.loads(lines[-1])


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (temporary file in the same folder, then rename); a dict gains
    ``created`` (UTC) unless it has one, so reports can tell the newest measurement."""
    if isinstance(obj, dict) and "created" not in obj:
        obj = {**obj, "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(f.name, path)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)
