"""Graph-mode batch-norm pitfalls lab: each pitfall reproduced on real MNIST, measured, and fixed.

`python -m common.pitfalls --out DIR [--steps N] [--quick] [--only SECTION ...] [--seeds N]` trains
the notebook's DCGAN built right and built wrong side by side and writes DIR/report.md with one section
and one figure per pitfall (with --only: the sections named, by number or module name, and only the runs
they need).

One module per pitfall (no_update_deps, one_update_collection, ...: break it, measure it, describe it),
over a shared bench (`harness`: the trained runs, the probe, the measurements) and the pieces of a
section (`sections`); `report` puts the sections in order, `cli` is the command line.
"""
