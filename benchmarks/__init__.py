"""Speed benchmarks, run by hand (python -m benchmarks.speed, python -m benchmarks.levers)."""

# common's package start sets TensorFlow's oneDNN switch, which TensorFlow reads only when it loads: it
# must run before any benchmark module imports TensorFlow (third-party imports sort before common's).
import common  # noqa: F401
