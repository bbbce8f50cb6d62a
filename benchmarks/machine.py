"""The machine a benchmark ran on, and its peak arithmetic rate estimated from the detected ISA.

Peak = cores x clock x FLOPs per cycle per core. Assumptions (stated in docs/benchmarks.md):
- the clock is /proc/cpuinfo's "cpu MHz" (the nominal one a VM reports; turbo is not counted);
- float32: two FMA units per core (Xeon server cores), each an FMA (2 FLOPs) on a full vector:
  AVX-512 16 lanes -> 64 FLOPs/cycle, AVX2 + FMA 8 lanes -> 32, otherwise SSE 4 lanes, no FMA -> 8;
- bf16: AMX (amx_bf16) does 1024 bf16 multiply-adds per cycle per core -> 2048 FLOPs/cycle; AVX-512-BF16
  alone (vdpbf16ps, two ports, 32 pairs per vector) -> 128;
- AMD Zen 4 (AuthenticAMD, cpu family 25 with avx512f) runs each 512-bit operation on its two 256-bit
  FMA units in turn, so one 512-bit FMA or vdpbf16ps per cycle: half the rates above (float32 32,
  AVX-512-BF16 64). In the levers run on the 2-core Zen 4 guest the project's float32 and bf16 steps
  then both reach 70% of their peaks, where the full-width figures had said 35% (docs/benchmarks.md).
Under an oneDNN ISA cap (ONEDNN_MAX_CPU_ISA, common.machine) the flags above it count as absent, and
`describe()` says the figures emulate such a CPU on this one.
"""

from __future__ import annotations

import dataclasses

from common.machine import (
    ISA_CAP_VARIABLE,
    cpu_count,
    cpu_family,
    cpu_flags,
    cpu_ghz,
    cpu_model,
    cpu_vendor,
    hidden_cpu_flags,
    onednn_isa_cap,
)
from common.speed import bf16_supported

REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


def avx512_on_256_bit_units(vendor: str, family: str) -> bool:
    """Whether this CPU runs a 512-bit vector operation as two halves on 256-bit units (AMD Zen 4)."""
    return vendor == "AuthenticAMD" and family == "25"


def float32_flops_per_cycle(flags: frozenset[str], half_width_avx512: bool = False) -> int:
    if "avx512f" in flags:
        return 2 * 2 * 16 // (2 if half_width_avx512 else 1)
    if "avx2" in flags and "fma" in flags:
        return 2 * 2 * 8
    return 2 * 4


def bf16_flops_per_cycle(flags: frozenset[str], half_width_avx512: bool = False) -> int | None:
    if "amx_bf16" in flags:
        return 2 * 1024
    if "avx512_bf16" in flags:
        return 2 * 2 * 32 // (2 if half_width_avx512 else 1)
    return None


@dataclasses.dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    ghz: float | None
    flags: tuple[str, ...]  # the REPORTED_FLAGS this CPU has
    peak_float32_gflops: float | None
    peak_bf16_gflops: float | None
    isa_cap: str | None = None  # ONEDNN_MAX_CPU_ISA's level, when it hides flags this CPU has
    hidden_flags: tuple[str, ...] = ()  # the REPORTED_FLAGS the cap hides

    def describe(self) -> str:
        clock = f"{self.ghz:.2f} GHz" if self.ghz else "unknown clock"
        flags = " ".join(self.flags) or "none of interest"
        lines = [f"CPU: {self.cpu}, {self.cores} cores, {clock}; flags: {flags}"]
        if self.isa_cap:
            lines.append(
                f"oneDNN capped at {ISA_CAP_VARIABLE}={self.isa_cap}: an emulation, on this CPU, of one "
                f"without {' '.join(self.hidden_flags)} (not a measurement of such a CPU)"
            )
        if self.peak_float32_gflops:
            peak = f"estimated peak: float32 {self.peak_float32_gflops:.0f} GFLOP/s"
            if self.peak_bf16_gflops:
                peak += f", bf16 {self.peak_bf16_gflops:.0f} GFLOP/s"
            lines.append(peak + " (cores x GHz x FLOPs/cycle; see benchmarks/machine.py)")
        return "\n".join(lines)


def this_machine() -> Machine:
    flags = cpu_flags()
    cap, hidden = onednn_isa_cap(), hidden_cpu_flags()
    cores, ghz = cpu_count(), cpu_ghz()
    half_width = avx512_on_256_bit_units(cpu_vendor(), cpu_family())
    bf16 = bf16_flops_per_cycle(flags, half_width) if bf16_supported(flags) else None
    return Machine(
        cpu=cpu_model(),
        cores=cores,
        ghz=ghz,
        flags=tuple(f for f in REPORTED_FLAGS if f in flags),
        peak_float32_gflops=cores * ghz * float32_flops_per_cycle(flags, half_width) if ghz else None,
        peak_bf16_gflops=cores * ghz * bf16 if ghz and bf16 else None,
        isa_cap=cap if hidden else None,
        hidden_flags=tuple(f for f in REPORTED_FLAGS if f in hidden),
    )
