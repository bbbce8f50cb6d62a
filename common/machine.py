"""What CPU this is, read once from /proc/cpuinfo: its model, ISA flags, clock and usable cores.

Every speed figure says which CPU it was measured on, and `--precision auto` decides from the flags,
so the one parser of /proc/cpuinfo lives here (stdlib only).
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def cpuinfo_fields() -> dict[str, str]:
    """The first processor's "name: value" lines of /proc/cpuinfo (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        text = CPUINFO.read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            break  # the end of the first processor's block
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return fields


def cpu_model() -> str:
    return cpuinfo_fields().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The ISA flags of the first CPU (empty where /proc/cpuinfo is missing)."""
    return frozenset(cpuinfo_fields().get("flags", "").split())


def cpu_ghz() -> float | None:
    """The nominal clock a VM reports ("cpu MHz"); None where it is not given."""
    try:
        return float(cpuinfo_fields()["cpu MHz"]) / 1000.0
    except (KeyError, ValueError):
        return None


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask), not the machine's total."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
