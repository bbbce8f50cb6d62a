"""What CPU this is, read once from /proc/cpuinfo: its model, ISA flags, clock and usable cores.

Every speed figure says which CPU it was measured on, and `--precision auto` decides from the flags,
so the one parser of /proc/cpuinfo lives here (stdlib only).

oneDNN, which runs TensorFlow's matrix work on the CPU, can be told to use no ISA above a level
(`ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16`, say). The flags above that level are then of no use to a run,
so `cpu_flags()` leaves them out: that is how an AMX Xeon stands in for a CPU with AVX512_BF16 alone
(AMD Zen 4, Intel Cooper Lake), both for `--precision auto` and for the benchmarks' peak estimates.
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
    """The model name, with the family and model numbers where given: a virtual machine's name is often
    generic ("AMD EPYC" for Zen 3 and Zen 4 alike) and the numbers tell them apart (25/1 Milan, 25/17
    Genoa)."""
    fields = cpuinfo_fields()
    name = fields.get("model name") or platform.processor() or platform.machine()
    if cpu_family() and fields.get("model"):
        name += f" (family {cpu_family()}, model {fields['model']})"
    return name


def cpu_vendor() -> str:
    """/proc/cpuinfo's vendor_id (GenuineIntel, AuthenticAMD, ...); empty where it is not given."""
    return cpuinfo_fields().get("vendor_id", "")


def cpu_family() -> str:
    """/proc/cpuinfo's "cpu family" (25: AMD Zen 3 and Zen 4; 6: most Intel cores); empty where not given."""
    return cpuinfo_fields().get("cpu family", "")


def hardware_cpu_flags() -> frozenset[str]:
    """The ISA flags of the first CPU as /proc/cpuinfo lists them (empty where it is missing)."""
    return frozenset(cpuinfo_fields().get("flags", "").split())


# oneDNN's ISA levels (the values ONEDNN_MAX_CPU_ISA takes), lowest first, with the /proc/cpuinfo flags
# of what each level adds to the one below. A cap hides the flags of every level above it.
ONEDNN_ISA_LEVELS: tuple[tuple[str, frozenset[str]], ...] = (
    ("SSE41", frozenset({"sse4_1"})),
    ("AVX", frozenset({"avx"})),
    ("AVX2", frozenset({"avx2", "fma"})),
    ("AVX2_VNNI", frozenset({"avx_vnni"})),
    ("AVX2_VNNI_2", frozenset({"avx_vnni_int8", "avx_ne_convert"})),
    ("AVX512_CORE", frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"})),
    ("AVX512_CORE_VNNI", frozenset({"avx512_vnni"})),
    ("AVX512_CORE_BF16", frozenset({"avx512_bf16"})),
    ("AVX512_CORE_FP16", frozenset({"avx512_fp16"})),
    ("AVX512_CORE_AMX", frozenset({"amx_tile", "amx_bf16", "amx_int8"})),
    ("AVX512_CORE_AMX_FP16", frozenset({"amx_fp16"})),
)
ISA_CAP_VARIABLE = "ONEDNN_MAX_CPU_ISA"


def onednn_isa_cap() -> str | None:
    """The oneDNN ISA level $ONEDNN_MAX_CPU_ISA caps the matrix kernels at; None when it caps nothing."""
    value = os.environ.get(ISA_CAP_VARIABLE, "").strip().upper()
    known = [name for name, _ in ONEDNN_ISA_LEVELS]
    return value if value in known and value != known[-1] else None  # DEFAULT, unknown: no cap


def flags_hidden_by_cap(cap: str | None, flags: frozenset[str]) -> frozenset[str]:
    """The flags of `flags` that oneDNN may not use under the ISA level `cap` (empty without a cap)."""
    if cap is None:
        return frozenset()
    names = [name for name, _ in ONEDNN_ISA_LEVELS]
    above = ONEDNN_ISA_LEVELS[names.index(cap) + 1 :]
    return flags & frozenset().union(*(level_flags for _, level_flags in above))


def hidden_cpu_flags() -> frozenset[str]:
    """The flags this CPU has that oneDNN's ISA cap (if any) keeps it from using."""
    return flags_hidden_by_cap(onednn_isa_cap(), hardware_cpu_flags())


def cpu_flags() -> frozenset[str]:
    """The ISA flags a run can use: the first CPU's, less those oneDNN's ISA cap (if any) hides."""
    return hardware_cpu_flags() - hidden_cpu_flags()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages ("unknown" where /proc/loadavg is missing): the benchmarks
    print it with every figure, since other work on a shared machine slows every row."""
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, ValueError):
        return "unknown"
    return f"{one} {five} {fifteen}"


def cpu_ghz() -> float | None:
    """The nominal clock a VM reports ("cpu MHz"); None where it is not given."""
    try:
        return float(cpuinfo_fields()["cpu MHz"]) / 1000.0
    except (KeyError, ValueError):
        return None


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask), not the machine's total."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
