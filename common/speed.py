"""How a training Session runs on this machine: threads, XLA and precision (see docs/benchmarks.md).

The defaults are what measured fastest with unchanged results on the CPU the project was tuned on. The
two settings that change numerics or rarely help are opt-in, through the environment (so every command
that trains picks them up without a new flag):

    DCGAN_PRECISION=bfloat16   oneDNN's automatic bf16 mixed precision (CPUs with AVX-512-BF16 or AMX)
    DCGAN_XLA=1                XLA auto-clustering (global_jit_level ON_1)
    DCGAN_INTRA_OP_THREADS=N, DCGAN_INTER_OP_THREADS=N   thread pools (0: TensorFlow decides)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from common.config import ConfigError

v1 = tf.compat.v1

PRECISIONS = ("float32", "bfloat16")
# Any of these lets oneDNN run bf16 matrix work natively (AMX tiles, or AVX-512 bf16 dot products).
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags() -> frozenset[str]:
    """The ISA flags of the first CPU in /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bf16_supported(flags: frozenset[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BF16_FLAGS)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class SpeedSettings:
    intra_op_threads: int = 0  # 0: TensorFlow's choice (one per core)
    inter_op_threads: int = 0
    precision: str = "float32"
    xla: bool = False

    @classmethod
    def default_settings(cls) -> SpeedSettings:
        """The defaults, overridden by the DCGAN_* environment variables (see the module docstring)."""
        settings = cls(
            intra_op_threads=_int_from_env("DCGAN_INTRA_OP_THREADS", cls.intra_op_threads),
            inter_op_threads=_int_from_env("DCGAN_INTER_OP_THREADS", cls.inter_op_threads),
            precision=os.environ.get("DCGAN_PRECISION", cls.precision).strip().lower() or cls.precision,
            xla=os.environ.get("DCGAN_XLA", "0").strip().lower() in ("1", "true", "on", "yes"),
        )
        return settings.validate()

    def validate(self) -> SpeedSettings:
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"DCGAN_PRECISION must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.precision == "bfloat16" and tf.config.list_physical_devices("GPU"):
            raise ConfigError("DCGAN_PRECISION=bfloat16 is the CPU (oneDNN) rewrite; unset it on a GPU")
        return self

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
        return f"{self.precision}, {threads}, XLA {'on' if self.xla else 'off'}"


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
