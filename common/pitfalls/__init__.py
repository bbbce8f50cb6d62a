"""Graph-mode batch-norm pitfalls lab: each pitfall reproduced on real MNIST, measured, and fixed.

`python -m common.pitfalls --out DIR [--steps N] [--quick]` trains the notebook's DCGAN built right and
built wrong side by side (`lab`), measures every pitfall (`experiments`) and writes DIR/report.md with one
section and one figure per pitfall (`report`).
"""
