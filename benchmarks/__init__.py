"""Speed benchmarks, run by hand (python -m benchmarks.speed, python -m benchmarks.levers)."""
