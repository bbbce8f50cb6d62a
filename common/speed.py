"""How a training Session runs on this machine: precision, threads and XLA (see docs/benchmarks.md).

Precision is a run setting (`--precision`, saved in config.json): `auto` picks, per kind of CPU
(`CPU_KINDS`), the precision that measured fastest at the same sample quality there; on a GPU float32.
Threads and XLA change nothing in the results and rarely help, so they are
set through the environment:

    DCGAN_XLA=1                XLA auto-clustering (global_jit_level ON_1)
    DCGAN_INTRA_OP_THREADS=N, DCGAN_INTER_OP_THREADS=N   thread pools (0: TensorFlow decides)
    TF_ENABLE_ONEDNN_OPTS=0    TensorFlow's own CPU kernels, not oneDNN's (on by default: common/__init__)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2
from tensorflow.python.util import _pywrap_util_port

from common.config import PRECISIONS, ConfigError
from common.layers import LayerImpl
from common.machine import cpu_flags, cpu_vendor

v1 = tf.compat.v1

# Any of these lets oneDNN run bf16 matrix work natively (AMX tiles, or AVX-512 bf16 dot products).
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclasses.dataclass(frozen=True)
class CpuKind:
    """A kind of CPU as the precision choice sees it, and what `--precision auto` trains in there."""

    name: str
    flag: str | None  # the /proc/cpuinfo flag that makes a CPU this kind (None: any other CPU)
    vendor: str | None  # its vendor_id, where the kind depends on it (None: any vendor)
    auto: str  # float32 or bfloat16
    measured: str  # the measurement behind `auto` (docs/benchmarks.md has the tables)


# First match wins, so the richer ISA comes first. Each `auto` is a measurement, not a guess: speed in
# an interleaved benchmark run, and sample quality (FID of the project's evaluator) for every bf16
# choice. The AVX512_BF16 kinds split by vendor because they measured differently: bf16 2.0x float32
# on an AMD EPYC Zen 4, 0.97x on an Intel core with AMX switched off (likely because a Zen 4 core runs
# 512-bit FMAs on 256-bit units, so its float32 has more to gain). An unmeasured vendor gets float32.
CPU_KINDS = (
    CpuKind(
        "AMX (Intel Xeon 4th generation and later)",
        "amx_bf16",
        None,
        "bfloat16",
        "Xeon with AMX: bf16 2.0x float32; one-epoch FID over six seeds +2.9 above float32's (within "
        "the seed-to-seed spread)",
    ),
    CpuKind(
        "AVX512_BF16 on AMD (Zen 4 and later)",
        "avx512_bf16",
        "AuthenticAMD",
        "bfloat16",
        "AMD EPYC Zen 4 (family 25 model 17), idle, 2026-12-03: bf16 2.0x float32, 1.31x Keras "
        "mixed_bfloat16; FID after one epoch within 2.4 of float32's on three seeds there",
    ),
    CpuKind(
        "AVX512_BF16 on Intel without AMX (Cooper Lake)",
        "avx512_bf16",
        None,
        "float32",
        "Xeon with oneDNN capped at AVX512_CORE_BF16 (an emulation): bf16 no faster than float32",
    ),
    CpuKind(
        "no native bf16 (AVX2 or AVX-512 without BF16)",
        None,
        None,
        "float32",
        "AMD EPYC Zen 3 (AVX2, FMA): float32, the only precision oneDNN runs natively there (bf16 is "
        "refused); oneDNN's kernels on (common/__init__) made its step 2.1x faster",
    ),
)


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its CPU ops on oneDNN's kernels (TF_ENABLE_ONEDNN_OPTS: common/__init__).

    TensorFlow's own answer: no public API has it.
    """
    return bool(_pywrap_util_port.IsMklEnabled())


def cpu_kind(flags: frozenset[str] | None = None, vendor: str | None = None) -> CpuKind:
    """The first CPU_KINDS entry this CPU (its usable flags, its vendor_id) matches."""
    flags = cpu_flags() if flags is None else flags
    vendor = cpu_vendor() if vendor is None else vendor
    return next(
        kind
        for kind in CPU_KINDS
        if (kind.flag is None or kind.flag in flags) and (kind.vendor is None or kind.vendor == vendor)
    )


def bf16_supported(flags: frozenset[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BF16_FLAGS)


def resolve_precision(
    requested: str, on_gpu: bool, flags: frozenset[str] | None = None, vendor: str | None = None
) -> str:
    """The precision a run trains in: `auto` made concrete for this machine; bfloat16 checked against it.

    bfloat16 is oneDNN's CPU rewrite: refused on a GPU, and on a CPU that cannot run bf16 natively (a
    resumed run is checked too: it may have been started on another machine).
    """
    flags = cpu_flags() if flags is None else flags
    if requested == "auto":
        return "float32" if on_gpu else cpu_kind(flags, vendor).auto
    if requested == "bfloat16" and on_gpu:
        raise ConfigError("--precision bfloat16 is the CPU (oneDNN) rewrite: use float32 on a GPU")
    if requested == "bfloat16" and not bf16_supported(flags):
        raise ConfigError(
            "--precision bfloat16 needs a CPU with AMX or AVX-512-BF16, and this one has neither: "
            "use --precision float32 (or auto)"
        )
    return requested


@dataclasses.dataclass(frozen=True)
class SpeedSettings:
    intra_op_threads: int = 0  # 0: TensorFlow's choice (one per core)
    inter_op_threads: int = 0
    precision: str = "float32"
    xla: bool = False
    # The layers' implementation for this precision (common.layers.LayerImpl): resolved with the rest.
    layer_impl: LayerImpl = LayerImpl().for_precision("float32")

    @classmethod
    def default_settings(cls, precision: str = "float32") -> SpeedSettings:
        """Threads and XLA from the DCGAN_* environment variables (module docstring); a run's precision.

        `precision` is already resolved (common.speed.resolve_precision): float32 or bfloat16.
        """
        if precision not in PRECISIONS[1:]:
            raise ValueError(f"unresolved precision {precision!r}")
        return cls(
            intra_op_threads=_int_from_env("DCGAN_INTRA_OP_THREADS", cls.intra_op_threads),
            inter_op_threads=_int_from_env("DCGAN_INTER_OP_THREADS", cls.inter_op_threads),
            precision=precision,
            xla=os.environ.get("DCGAN_XLA", "0").strip().lower() in ("1", "true", "on", "yes"),
            layer_impl=LayerImpl().for_precision(precision),
        )

    def apply(self, config: v1.ConfigProto) -> v1.ConfigProto:
        config.intra_op_parallelism_threads = self.intra_op_threads
        config.inter_op_parallelism_threads = self.inter_op_threads
        if self.xla:
            config.graph_options.optimizer_options.global_jit_level = v1.OptimizerOptions.ON_1
        if self.precision == "bfloat16":
            # Grappler casts the matrix work (and what can follow it) to bf16; variables stay float32.
            rewrites = config.graph_options.rewrite_options
            rewrites.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
        return config

    def describe(self) -> str:
        threads = f"threads intra {self.intra_op_threads or 'auto'}, inter {self.inter_op_threads or 'auto'}"
        onednn = "oneDNN kernels " + ("on" if onednn_enabled() else "off")
        return f"{self.precision}, {threads}, XLA {'on' if self.xla else 'off'}, {onednn}"


def _int_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a non-negative integer, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {raw!r}")
    return value


@contextlib.contextmanager
def op_determinism(enabled: bool) -> Iterator[None]:
    """TensorFlow's op determinism on (or off) for a block, restored afterwards.

    On the CPU some multi-threaded kernels sum in an order that depends on thread timing, so without it
    two identical runs drift apart in the last bits after a few dozen steps (seen here under load).
    """
    from tensorflow.python.framework import config as tf_config  # the public API can only enable it

    before = tf_config.is_op_determinism_enabled()
    if enabled:
        tf_config.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()
    try:
        yield
    finally:
        if before:
            tf_config.enable_op_determinism()
        else:
            tf_config.disable_op_determinism()
