"""The report: one `##` section and one figure per pitfall, every number formatted from the results."""

from __future__ import annotations

import inspect
import io
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from common.gan import adam_train_op, network_update_ops
from common.pitfalls import experiments as ex
from common.pitfalls import lab
from common.rundir import atomic_path, atomic_write_bytes, grid_image


# ------------------------------------------------------------------------------------ figures
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    pixels = ex.to_levels(images).astype(np.uint8)
    grid = grid_image(pixels, columns=min(columns, len(pixels)))
    return grid[..., 0] if grid.shape[-1] == 1 else grid


def _save(fig, path: Path) -> None:
    """PNG with a 64-colour palette: the figures are mostly gray, and stay small in the repository."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
    _pyplot().close(fig)
    buffer.seek(0)
    picture = Image.open(buffer).convert("RGB").quantize(colors=64)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG", optimize=True)


def grids_figure(path: Path, panels: Mapping[str, np.ndarray], title: str, columns: int = 8) -> None:
    """Sample grids side by side, one titled panel each (at most 32 images per panel)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    for ax, (label, images) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        ax.imshow(_grid(images[:32], columns), cmap="gray", vmin=0, vmax=255)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def rows_figure(path: Path, rows: Mapping[str, np.ndarray], title: str, extra=None) -> None:
    """One row of images per label (a few images each); `extra(ax)` draws an optional plot on the right."""
    plt = _pyplot()
    n_rows = len(rows)
    width = 7 if extra is None else 11
    fig = plt.figure(figsize=(width, 1.05 * n_rows + 0.8))
    grid = fig.add_gridspec(n_rows, 2 if extra else 1, width_ratios=[7, 4] if extra else [1])
    for i, (label, images) in enumerate(rows.items()):
        ax = fig.add_subplot(grid[i, 0])
        ax.imshow(_grid(images, columns=len(images)), cmap="gray", vmin=0, vmax=255)
        ax.set_title(label, fontsize=7, loc="left", pad=2)
        ax.axis("off")
    if extra:
        extra(fig.add_subplot(grid[:, 1]))
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def lines_figure(path: Path, panels: Mapping[str, Callable[[Any], None]], title: str) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4))
    for ax, (label, draw) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        draw(ax)
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def smooth(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Running mean over about 1/25 of the run (GAN losses are noisy step to step); (curve, window)."""
    window = max(len(values) // 25, 1)
    return np.convolve(values, np.ones(window) / window, mode="valid"), window


def plot_smoothed(ax, values: np.ndarray, label: str) -> int:
    curve, window = smooth(values)
    ax.plot(np.arange(len(curve)) + window, curve, label=label, alpha=0.85)
    return window


def loss_panel(losses: dict[str, np.ndarray], labels: dict[str, str], column: int, ylabel: str):
    """A panel drawing one loss column of every run, smoothed, against the step."""

    def plot(ax):
        for run, values in losses.items():
            window = plot_smoothed(ax, values[:, column], labels[run])
        ax.set_xlabel("step")
        ax.set_ylabel(f"{ylabel} (mean of {window} steps)")
        ax.legend(fontsize=7)

    return plot


# ------------------------------------------------------------------------------------ text helpers
def source(*functions) -> str:
    """The code that ran, as it is in the repository."""
    return "\n\n".join(textwrap.dedent(inspect.getsource(f)).strip() for f in functions)


def code(text: str) -> str:
    return f"```python\n{textwrap.dedent(text).strip()}\n```"


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def stats_rows(stats: Mapping[str, ex.SampleStats]) -> list[list[str]]:
    return [[k, f"{s.mean_pixel:.3f}", f"{s.diversity:.3f}", f"{s.nn_rms:.3f}"] for k, s in stats.items()]


STATS_HEADER = ["samples", "mean pixel", "diversity", "distance to nearest real"]
STATS_NOTE = (
    "*mean pixel* is in [-1, 1] (MNIST is mostly black background: about -0.76); *diversity* is the "
    "per-pixel standard deviation across the batch; *distance to nearest real* is the RMS pixel distance "
    "from each sample to its nearest MNIST test image (lower: more digit-like)."
)


def updates(counts: Mapping[str, int]) -> str:
    return f"{counts['generator']} G + {counts['discriminator']} D"


class Section(NamedTuple):
    title: str
    figure: str
    text: str
    headline: str  # one line for the summary table


# ------------------------------------------------------------------------------------ the sections
def section_no_update_deps(r: ex.NoUpdateDeps, out: Path) -> Section:
    name = "no_update_deps.png"
    grids_figure(out / name, r.images, f"Same weights and z after {r.steps} steps: inference samples")
    fixed_stats, broken_stats = r.stats["fixed, inference"], r.stats["broken, inference"]
    text = f"""
**What goes wrong.** `batch_norm(x, training=True)` does not update `moving_mean` / `moving_variance` by
itself: it *adds* two assign ops per call to `UPDATE_OPS`, and only a train op built under a control
dependency on them runs them. Without it, training looks perfect (the training graph uses batch
statistics), and the inference sampler, which uses the moving statistics, normalizes with their initial
values 0 and 1.

**The broken code** (it ran as written; `adam` is `AdamOptimizer(...).minimize(loss, var_list=...)`):

{code(source(lab.adam, lab.without_update_deps))}

**The fix** (`common/gan.py`): each optimizer waits for its own network's updates.

{code(source(network_update_ops, adam_train_op))}

**Measured** after {r.steps} steps, same initial weights, batches and noise:

- Largest change of any moving statistic from its initial value: **{r.moving_change_broken:g}** broken,
  {r.moving_change_fixed:.3f} fixed. Broken `moving_mean` entries lie in
  [{r.moving_mean_broken[0]:g}, {r.moving_mean_broken[1]:g}] and `moving_variance` entries in
  [{r.moving_variance_broken[0]:g}, {r.moving_variance_broken[1]:g}]: the initial values.
- Moving-average updates one training step runs: {updates(r.updates_per_step["fixed"])} fixed,
  {updates(r.updates_per_step["without_update_deps"])} broken.
- The trained weights differ by at most {r.weights_difference:g} between the two runs: the moving
  statistics play no part in training, so nothing in the losses warns you.

{table(STATS_HEADER, stats_rows(r.stats))}

{STATS_NOTE}

![broken vs fixed]({name})

The broken run's generator is trained all the same: run with batch statistics (third panel) its samples
are {r.stats["broken, batch statistics"].nn_rms:.3f} from the nearest real image, against
{broken_stats.nn_rms:.3f} in inference mode. Only its inference mode is broken.
"""
    headline = (
        f"moving stats change {r.moving_change_broken:g} (fixed {r.moving_change_fixed:.3f}); inference "
        f"samples' distance to real {broken_stats.nn_rms:.3f} vs {fixed_stats.nn_rms:.3f}"
    )
    return Section("1. Train ops without the UPDATE_OPS control dependencies", name, text, headline)


def section_one_update_collection(r: ex.OneCollection, out: Path) -> Section:
    name = "one_update_collection.png"
    names = {"fixed": "per network (fixed)", "one_update_collection": "one collection"}

    def bars(ax):
        labels, own, other = [], [], []
        for run, label in names.items():
            for op, network in (("G train op", "generator"), ("D train op", "discriminator")):
                counts = r.waits_for[run][op]
                labels.append(f"{op[0]}: {label}")
                own.append(counts[network])
                other.append(sum(counts.values()) - counts[network])
        y = np.arange(len(labels))
        ax.barh(y, own, label="its own network's")
        ax.barh(y, other, left=own, label="the other network's")
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_xlabel("update ops the train op waits for")
        ax.legend(fontsize=7)

    def traces(ax):
        for run, style in (("fixed", "-"), ("one_update_collection", "--")):
            for i, (layer, values) in enumerate(r.g_variance_traces[run].items()):
                ax.plot(values, style, color=f"C{i}", label=f"{layer}, {names[run]}")
        ax.set_xlabel("step")
        ax.set_ylabel("G moving_variance (channel mean)")
        ax.legend(fontsize=6)

    lines_figure(
        out / name,
        {"what each train op waits for": bars, "G's moving variance": traces},
        "One UPDATE_OPS collection for both optimizers",
    )
    fixed_s, broken_s = r.step_seconds["fixed"], r.step_seconds["one_update_collection"]
    fixed_u, broken_u = r.updates_per_step["fixed"], r.updates_per_step["one_update_collection"]
    waits = r.waits_for["one_update_collection"]
    text = f"""
**What goes wrong.** The notebook built both optimizers under one
`tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS))`. The collection holds every batch
norm's updates: G's *and* D's, from every call. So the G step also runs D's updates (and D's forward
pass on the real batch, which the G step does not otherwise need), and the D step runs G's again: each
moving average takes more than one update per step, mixing statistics from before and after the G update.

**The broken code:**

{code(source(lab.one_update_collection))}

**The fix:** `network_update_ops(tower, network, config)` (section 1) keeps the updates of the network a
train op trains, from the tower it trains on.

**Measured** (ops counted in each train op's control dependencies and in what `sess.run(step)` reaches):

{
        table(
            [
                "",
                "G train op waits for",
                "D train op waits for",
                "updates one step runs",
                "ops one step runs",
            ],
            [
                [
                    names[run],
                    updates(r.waits_for[run]["G train op"]),
                    updates(r.waits_for[run]["D train op"]),
                    updates(r.updates_per_step[run]),
                    r.ops_per_step[run],
                ]
                for run in names
            ],
        )
    }

- The G train op waits for {waits["G train op"]["discriminator"]} of D's updates and the D train op for
  {waits["D train op"]["generator"]} of G's: each step runs
  {sum(broken_u.values()) - sum(fixed_u.values())} extra moving-average updates
  ({sum(broken_u.values())} instead of {sum(fixed_u.values())}) and
  {r.ops_per_step["one_update_collection"] - r.ops_per_step["fixed"]} extra ops in all.
- Median step time, the two runs interleaved: {broken_s * 1000:.0f} ms vs {fixed_s * 1000:.0f} ms
  (x{broken_s / fixed_s:.2f}).
- After {r.steps} steps G's moving statistics differ from the fixed run's by
  {r.g_moving_relative_difference["moving_mean"]:.1%} (means) and
  {r.g_moving_relative_difference["moving_variance"]:.1%} (variances), relative L2, while the trained
  weights differ by at most {r.weights_difference:g}; the inference samples differ by
  {r.sample_difference[1]:.2f} 8-bit levels on average (max {r.sample_difference[0]:.0f}).

![one collection]({name})

G's moving averages move twice per step (faster warm-up, a shorter memory: an effective momentum of
about 0.99^2) and D's four times, and the step does work it does not need.
"""
    headline = (
        f"{sum(broken_u.values())} moving-average updates per step instead of {sum(fixed_u.values())}; "
        f"step time x{broken_s / fixed_s:.2f}"
    )
    return Section("2. One UPDATE_OPS collection for both optimizers", name, text, headline)


def section_captured_before_layers(r: ex.CapturedEarly, out: Path) -> Section:
    name = "captured_before_layers.png"

    def draw(run):
        def plot(ax):
            for layer, values in r.traces[run].items():
                ax.plot(values, label=layer)
            ax.set_xlabel("step")
            ax.set_ylabel("moving_variance (channel mean)")
            ax.legend(fontsize=7)

        return plot

    lines_figure(
        out / name,
        {"fixed": draw("fixed"), "control dependency captured early": draw("captured_before_layers")},
        f"Moving variances over {r.steps} steps",
    )
    text = f"""
**What goes wrong.** `tf.control_dependencies(ops)` takes a *list*, evaluated when the `with` line runs.
Read the collection before the networks are built and the list is empty; the batch norms built inside the
block add their updates to the collection afterwards, where nothing looks.

**The broken code:**

{code(source(lab.captured_before_layers))}

**The fix:** read the collection after the layers exist, right where the train op is built, as
`adam_train_op` does with the list `network_update_ops` returns.

**Measured:** the list held **{r.captured}** update ops when captured; the graph ends with
{r.update_ops_in_graph} in `UPDATE_OPS`; one training step runs {updates(r.updates_per_step)} of them.
After {r.steps} steps the largest change of any moving statistic is **{r.moving_change:g}** (fixed run:
{r.moving_change_fixed:.3f}): the same silent failure as section 1, harder to see in the code.

![captured early]({name})
"""
    headline = f"{r.captured} update ops captured; moving stats change {r.moving_change:g} in {r.steps} steps"
    return Section("3. Control dependencies taken before the layers exist", name, text, headline)


def section_training_true_at_inference(r: ex.TrainingAtInference, out: Path) -> Section:
    name = "training_true_at_inference.png"
    rows = {}
    for mode in ("training=True", "training=False"):
        for context, images in zip(r.contexts, r.images[mode], strict=True):
            rows[f"{mode}: the same 8 z {context}"] = images
        levels = ex.to_levels(r.images[mode])
        # Shown as an image: the spread, x4 and mapped back to [-1, 1] (black: identical in every batch).
        rows[f"{mode}: max - min over the {len(r.contexts)} batches, x4"] = (
            np.minimum((levels.max(axis=0) - levels.min(axis=0)) * 4, 255) / 127.5 - 1.0
        )
    rows_figure(out / name, rows, "The same 8 z in different batches")
    text = f"""
**What goes wrong.** A sampler built with `training=True` normalizes with the statistics of the batch it
is given, so an image depends on the other z in its batch and on the batch size. It also adds update
ops that would pull the moving averages towards the sampling batches if something ran them.

**The broken code:**

{
        code('''
samples = generator(z, training=True)   # BN on this batch's statistics
''')
    }

**The fix:** sample with `training=False` (`common.gan.build_sampler`), which uses the moving statistics
and is a function of z alone.

**Measured** on the fixed run's final weights (dropout off in both, to isolate batch norm): 8 fixed z,
placed in {len(r.contexts)} batches ({", ".join(r.contexts)}).
The same z gives images that differ by up to **{r.batch_mode_difference[0]:.0f}** 8-bit levels
(mean spread {r.batch_mode_difference[1]:.2f}) with `training=True`, and by
{r.inference_difference[0]:.0f} (mean {r.inference_difference[1]:.2f}) with the project's sampler.

![batch dependence]({name})
"""
    headline = (
        f"same z, different batch: up to {r.batch_mode_difference[0]:.0f} levels apart "
        f"(sampler: {r.inference_difference[0]:.0f})"
    )
    return Section("4. training=True at inference", name, text, headline)


def section_training_false_in_training(r: ex.TrainingFalse, out: Path) -> Section:
    name = "training_false_in_training.png"
    labels = {"fixed": "training=True (fixed)", "training_false_in_training": "training=False"}

    def losses(column, ylabel):
        return loss_panel(r.losses, labels, column, ylabel)

    panels = {"D loss": losses(0, "d_loss"), "G loss": losses(1, "g_loss")}
    for label, images in r.images.items():
        panels[label] = lambda ax, images=images: (
            ax.imshow(_grid(images[:16], 4), cmap="gray", vmin=0, vmax=255),
            ax.axis("off"),
        )
    lines_figure(out / name, panels, f"Towers built with training=False, {r.steps} steps")
    late = {run: v for run, v in r.late_losses.items()}
    rows = [
        [labels[run], f"{v[0]:.3f}", f"{v[1]:.3f}", f"{v[2]:.3f}", f"{v[3]:.3f}"] for run, v in late.items()
    ]
    text = f"""
**What goes wrong.** With `training=False` in the training towers, every batch norm uses its moving
statistics, which start at mean 0 and variance 1, and adds no update ops, so they stay there: batch
norm becomes a fixed per-channel scale and shift (`gamma * x / sqrt(1 + eps) + beta`). The networks train
*without* normalization (and, in the notebook's networks, without dropout, which follows the same flag).

**The broken code:**

{code(source(lab.tower_in_inference_mode))}

**The fix:** build the training towers with `training=True` (`common.gan.build_tower`), the sampler with
`training=False`.

**Measured** over {r.steps} steps: update ops in the graph {r.update_ops_in_graph["fixed"]} fixed,
{r.update_ops_in_graph["training_false_in_training"]} broken; largest change of a moving statistic
{r.moving_change:g}. Means over the last quarter of the steps:

{table(["towers", "d_loss", "g_loss", "D(x)", "D(G(z))"], rows)}

{table(STATS_HEADER, stats_rows(r.stats))}

![training=False]({name})
"""
    broken = r.stats["training=False in training"]
    fixed_stats = r.stats["fixed (training=True), inference"]
    headline = (
        f"0 update ops; late d_loss {late['training_false_in_training'][0]:.3f} vs {late['fixed'][0]:.3f}; "
        f"distance to real {broken.nn_rms:.3f} vs {fixed_stats.nn_rms:.3f}"
    )
    return Section("5. training=False during training", name, text, headline)


def section_sampler_rebuilt(r: ex.SamplerRebuilt, out: Path) -> Section:
    name = "sampler_rebuilt_in_loop.png"
    x = np.arange(len(r.nodes))

    def nodes(ax):
        ax.plot(x, r.nodes, marker=".")
        ax.set_xlabel("samplers rebuilt")
        ax.set_ylabel("ops in the graph")

    def times(ax):
        ax.plot(x[1:], np.array(r.step_seconds) * 1000, marker=".", label="training step")
        ax.plot(
            x[1:], np.array(r.first_sample_seconds) * 1000, marker=".", label="first run of the new sampler"
        )
        ax.plot(x[1:], np.array(r.build_seconds) * 1000, marker=".", label="building the sampler")
        ax.set_xlabel("samplers rebuilt")
        ax.set_ylabel("ms")
        ax.legend(fontsize=7)

    lines_figure(out / name, {"graph size": nodes, "time": times}, "The sampler rebuilt inside the loop")
    per_rebuild = (r.nodes[-1] - r.nodes[0]) / r.rebuilds
    text = f"""
**What goes wrong.** The notebook called `generator(input_z, reuse=True, is_train=False)` inside its
training loop, every 101 steps, to draw samples. Each call adds a whole new generator to the graph: the
graph, and everything that serializes it (checkpoint `.meta` files, TensorBoard's graph), grows without
bound, and each new sampler is a new subgraph the Session must prepare on its first run.

**The broken code:**

{
        code('''
for step in range(steps):
    sess.run(train_step)
    if step % 101 == 0:
        sampler = build_sampler(spec, config)      # a new generator, every time
        images = sess.run(sampler.images, {sampler.noise: z})
''')
    }

**The fix:** build the sampler once, before the loop, and `graph.finalize()` the graph
(`common.train.build_training_graph`); the loop only runs what exists.

**Measured** over {r.rebuilds} rebuilds:

- Ops in the graph: {r.nodes[0]} before, {r.nodes[-1]} after (**+{per_rebuild:.0f} per rebuild**);
  the serialized graph grew from {r.graph_bytes[0] / 1e3:.0f} kB to {r.graph_bytes[-1] / 1e3:.0f} kB.
- Building one more sampler: {r.build_seconds[0] * 1000:.0f} ms (first) to
  {r.build_seconds[-1] * 1000:.0f} ms (last); its first run: {r.first_sample_seconds[0] * 1000:.0f} ms to
  {r.first_sample_seconds[-1] * 1000:.0f} ms; the median training step: {r.step_seconds[0] * 1000:.0f} ms to
  {r.step_seconds[-1] * 1000:.0f} ms.
- After `graph.finalize()`, building one more sampler raises `{r.finalized_error}`.

![rebuilt sampler]({name})
"""
    headline = (
        f"+{per_rebuild:.0f} ops per rebuild; a finalized graph raises {r.finalized_error.split(':')[0]}"
    )
    return Section("6. Rebuilding the sampler inside the training loop", name, text, headline)


def section_unwarmed(r: ex.Warmup, out: Path) -> Section:
    name = "unwarmed_moving_averages.png"
    rows = {}
    for step in r.steps:
        for mode in ("inference", "batch statistics", "recalibrated"):
            rows[f"step {step}: {mode}"] = r.images[step][mode][:10]

    def gaps(ax):
        ax.plot(r.steps, r.gap, marker="o", label="inference vs batch statistics")
        ax.plot(r.steps, r.gap_recalibrated, marker="o", label="after recalibration")
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("mean |difference| (8-bit levels)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)

    rows_figure(out / name, rows, f"Moving averages with momentum {r.momentum}", extra=gaps)
    body = [
        [step, f"{w:.3f}", f"{g:.1f}", f"{gr:.1f}", f"{s.nn_rms:.3f}", f"{b.nn_rms:.3f}"]
        for step, w, g, gr, s, b in zip(
            r.steps,
            r.init_weight,
            r.gap,
            r.gap_recalibrated,
            r.stats["inference"],
            r.stats["batch statistics"],
            strict=True,
        )
    ]
    text = f"""
**What goes wrong.** A moving average with momentum m keeps a share m^t of its initial value after t
updates. With the default m = {r.momentum}, the time constant is {1 / (1 - r.momentum):.0f} steps: samples
drawn early in training (the notebook's first grids, a quick smoke run, a short fine-tune) normalize
with statistics that are mostly the initial 0 and 1, not the network's.

**The broken code:**

{
        code('''
train(steps=10)
samples = sess.run(sampler.images, {sampler.noise: z})   # moving statistics: still mostly 0 and 1
''')
    }

**The fix:** judge samples only after a few time constants (or lower the momentum for short runs), or
recalibrate before sampling: one training-mode pass of G with momentum 0 over a big noise batch sets each
moving statistic to that batch's statistic (`Probe.recalibrate` here; the idea of "precise BN").

**Measured** on the fixed run, the same z, inference mode vs batch-statistics mode:

{
        table(
            [
                "step",
                "initial value's share m^t",
                "gap (levels)",
                "gap after recalibration",
                "inference: distance to real",
                "batch mode: distance to real",
            ],
            body,
        )
    }

![warm-up]({name})
"""
    headline = (
        f"inference vs batch mode {r.gap[0]:.1f} levels at step {r.steps[0]}, {r.gap[-1]:.1f} at step "
        f"{r.steps[-1]}; recalibrated {r.gap_recalibrated[0]:.1f}"
    )
    return Section("7. Sampling before the moving averages have warmed up", name, text, headline)


def section_separate_vs_concat(r: ex.SeparateConcat, out: Path) -> Section:
    name = "separate_vs_concat_d.png"
    labels = {"fixed": "separate (the notebook's)", "concat_d": "concatenated"}

    def column(index, ylabel):
        return loss_panel(r.losses, labels, index, ylabel)

    lines_figure(
        out / name,
        {"D loss": column(0, "d_loss"), "D(G(z))": column(3, "mean D(G(z))")},
        f"Real and fake through D separately vs concatenated, {r.steps} steps",
    )
    rows = [
        [labels["fixed" if k == "separate" else "concat_d"], *(f"{x:.3f}" for x in v)]
        for k, v in r.same_weights.items()
    ]
    late = [[labels[k], *(f"{x:.3f}" for x in v)] for k, v in r.late_losses.items()]
    text = f"""
**What goes wrong.** In training mode D's batch norms normalize with the statistics of the batch they
see. Called separately (the notebook), D normalizes the real batch with real statistics and the fake
batch with fake statistics: whatever shifts a whole batch (its mean brightness, say) is erased before the
next layer, and D's moving averages alternate between real and fake statistics. Concatenated, both are
normalized with the mixed statistics, so D *can* use such batch-level differences. Neither is a bug by
itself, but the choice changes the game, and code that mixes the two (training one way, evaluating the
other) sees a different D.

**The code**, `common.gan.build_tower` with `ArchSpec.d_batches`:

{
        code('''
# separate (the notebook)
d_logits_real = discriminator(real_images, training=True)
d_logits_fake = discriminator(fake_images, training=True, reuse=True)
# concat
logits = discriminator(tf.concat([real_images, fake_images], 0), training=True)
d_logits_real, d_logits_fake = tf.split(logits, [n_real, n_fake])
''')
    }

**Measured.** The same weights (the fixed run after its last step) and the same real and fake batches,
D called both ways:

{table(["D called", "d_loss", "D(x)", "D(G(z))"], rows)}

Mean over D's first batch-norm channels of |mean(real) - mean(fake)| after normalization:
{r.feature_gap["separate"]:.2g} separate (erased by construction) vs {r.feature_gap["concat"]:.3f}
concatenated (in units of the channel's standard deviation).

Trained each way from the same start for {r.steps} steps, means over the last quarter:

{table(["D called", "d_loss", "g_loss", "D(x)", "D(G(z))"], late)}

![separate vs concat]({name})

The fix is a choice, made on purpose and kept the same in training and evaluation: `ArchSpec.d_batches`.
"""
    headline = (
        f"same weights, same images: d_loss {r.same_weights['separate'][0]:.3f} separate vs "
        f"{r.same_weights['concat'][0]:.3f} concatenated"
    )
    return Section("8. Real and fake through D separately vs concatenated", name, text, headline)


def section_dropout_at_inference(r: ex.DropoutAtInference, out: Path) -> Section:
    name = "dropout_at_inference.png"
    grids_figure(out / name, r.images, "The same z, dropout at sampling time on and off")
    text = f"""
**What goes wrong.** The notebook applied dropout unconditionally, so its sampler dropped
{1 - r.keep_prob:.0%} of G's activations at random: the same z gives a different image on every call, so
a grid cannot be reproduced and two checkpoints cannot be compared on the same z.

**The broken code:**

{
        code('''
layer = tf.nn.dropout(layer, keep_prob=0.8)          # no training flag: on when sampling too
''')
    }

**The fix:** `dropout(x, keep_prob, seeds, active=training)` (`common/layers.py`): the identity when
`training=False`.

**Measured** on the fixed run's final weights: the same z and the same batch with two dropout seeds differ
by up to **{r.seed_difference[0]:.0f}** 8-bit levels (mean {r.seed_difference[1]:.2f}).

{table(STATS_HEADER, stats_rows(r.stats))}

![dropout at inference]({name})
"""
    headline = f"same z, two dropout seeds: up to {r.seed_difference[0]:.0f} levels apart"
    return Section("9. Dropout left on at inference", name, text, headline)


def section_trainable_only_saver(r: ex.TrainableOnlySaver, out: Path) -> Section:
    name = "trainable_only_saver.png"
    grids_figure(out / name, r.images, "The same weights, saved two ways and sampled in a fresh graph")
    rows = [
        [k, r.variables_saved[k], r.moving_saved[k], f"{r.restored_moving_change[k]:.3f}"]
        for k in r.variables_saved
    ]
    trainable = "Saver(var_list=trainable_variables())"
    text = f"""
**What goes wrong.** The moving statistics are variables with `trainable=False`. A checkpoint written by
`Saver(var_list=tf.trainable_variables())` (a common way to "save only the model") leaves them out; a
sampling program that restores it keeps their initial values, 0 and 1: section 1's garbage, one step
removed.

**The broken code:**

{
        code('''
saver = tf.train.Saver(var_list=tf.trainable_variables())   # moving_mean / moving_variance left out
''')
    }

**The fix:** save the global variables (`tf.train.Saver()`, as `common.train` does); to save only G,
take `GLOBAL_VARIABLES` under `generator/`, as `common.sampling.Generator` restores them.

**Measured** on the fixed run's final weights, each checkpoint restored into a fresh sampler graph:

{table(["saver", "variables saved", "moving statistics saved", "largest restored change from init"], rows)}

{table(STATS_HEADER, stats_rows(r.stats))}

![savers]({name})
"""
    headline = f"{r.moving_saved[trainable]} moving statistics in a trainable-only checkpoint"
    return Section("10. A checkpoint of the trainable variables only", name, text, headline)


# ------------------------------------------------------------------------------------ the report
def write_report(out: Path, results: Mapping[str, Any], about: Mapping[str, Any]) -> Path:
    """Write out/report.md and one figure per pitfall; return the report's path."""
    builders = [
        (section_no_update_deps, "no_update_deps"),
        (section_one_update_collection, "one_update_collection"),
        (section_captured_before_layers, "captured_before_layers"),
        (section_training_true_at_inference, "training_true_at_inference"),
        (section_training_false_in_training, "training_false_in_training"),
        (section_sampler_rebuilt, "sampler_rebuilt"),
        (section_unwarmed, "unwarmed_moving_averages"),
        (section_separate_vs_concat, "separate_vs_concat"),
        (section_dropout_at_inference, "dropout_at_inference"),
        (section_trainable_only_saver, "trainable_only_saver"),
    ]
    sections = [build(results[key], out) for build, key in builders]
    size: ex.LabSize = about["size"]
    summary = table(
        ["pitfall", "measured signature"],
        [[f"[{s.title}](#{anchor(s.title)})", s.headline] for s in sections],
    )
    header = f"""# Graph-mode batch-norm pitfalls, reproduced and measured

Batch norm in TensorFlow 1.x graph style is two programs in one graph: the training towers normalize
with each batch's statistics and *add* moving-average updates to `UPDATE_OPS`; the sampler normalizes
with the moving averages. Nothing forces the two to agree, so the mistakes are silent: the losses look
right and the samples do not. Each section below breaks one thing on purpose, on the notebook's DCGAN
and real MNIST, measures it against the project's fixed code, and shows the fix.

Produced by `{about["command"]}` in {about["seconds"] / 60:.1f} minutes on {about["device"]}
(TensorFlow {about["tensorflow"]}). Data: MNIST training images ({size.train_images} used) from
`{about["data_source"]}`; reference for distances: {size.reference_images} MNIST test images. Runs:
batch {size.batch_size}, {size.steps} steps (sections 1, 4, 7, 9, 10), {size.half_steps} (2, 5 and 8),
{size.short_steps} (3); every variant starts from the same initial weights and sees the same batches and
noise, so two runs differ only by the line that differs. Every number here is formatted from that run;
the code shown is the code that ran (`common/pitfalls/lab.py`, `common/gan.py`).

{summary}
"""
    body = "\n".join(f"## {s.title}\n{s.text}" for s in sections)
    path = out / "report.md"
    atomic_write_bytes(path, (header + "\n" + body).encode())
    return path


def anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")
