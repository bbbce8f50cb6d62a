"""Pitfall: Keras layers in a tf.compat.v1 graph (Keras 3, the TensorFlow installed here).

`tf.keras.layers.BatchNormalization` builds in a v1 graph, but under Keras 3 it adds nothing to
UPDATE_OPS: its moving-average assignments are ops that nothing reaches. Its variables are named by the
name scope, not the variable scope, so a scope-filtered var_list misses its gamma and beta too.
`tf.compat.v1.layers.batch_normalization`, which had the UPDATE_OPS mechanism, raises under Keras 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec, Network
from common.config import Config
from common.layers import UPDATE_OPS, Layers, Training
from common.pitfalls.harness import Runs, TrainGraph, executed_ops, lab_config
from common.pitfalls.notebook_step import model_inputs, model_opt, with_networks
from common.pitfalls.sections import Section, code, lines_figure, source
from common.step import Inputs
from common.train import session_config

v1 = tf.compat.v1

# How long the fixed run must be for this section (a LabSize field): `--only` trains no more.
FIXED_STEPS = "short_steps"
FIGURE = "keras_layers_in_v1_graph.png"
VARIANTS = ()  # trains its own small graph (its variables are not the project's names)
ASSIGN_OPS = ("AssignVariableOp", "AssignSubVariableOp", "AssignAddVariableOp")


class KerasBatchNormLayers(Layers):
    """The project's layers with `tf.keras.layers.BatchNormalization` for batch norm, one Keras layer per
    variable scope (kept in `keras`), so a second tower reuses the first tower's layer and variables."""

    def __init__(self, layers: Layers, keras: dict[str, Any]) -> None:
        super().__init__(layers.impl, layers.seeds)
        self.keras = keras

    def batch_norm(
        self, x: tf.Tensor, training: Training, name: str, momentum: float = 0.99, epsilon: float = 1e-3
    ) -> tf.Tensor:
        key = f"{v1.get_variable_scope().name}/{name}"
        if key not in self.keras:
            self.keras[key] = tf.keras.layers.BatchNormalization(
                momentum=momentum, epsilon=epsilon, name=name
            )
        return self.keras[key](x, training=training)


def keras_generator_step(spec: ArchSpec, config: Config, inputs: Inputs, keras: dict[str, Any]) -> TrainGraph:
    """The project's step with G's batch norms from Keras (D keeps the project's)."""

    def with_keras(network: Network) -> Network:
        return lambda x, training, config, layers: network(
            x, training, config, KerasBatchNormLayers(layers, keras)
        )

    return model_opt(with_networks(spec, generator=with_keras(spec.generator)), config, inputs, total_steps=1)


def tf_layers_batch_norm(x: tf.Tensor) -> tf.Tensor:
    """What the notebook called, and what raises under Keras 3."""
    return v1.layers.batch_normalization(x, training=True)


class KerasInV1(NamedTuple):
    steps: int
    keras_layers: int
    keras_variables: int
    keras_in_update_ops: int  # Keras's updates found in UPDATE_OPS (the project's D adds its own)
    update_ops_in_graph: int
    orphan_assigns: int  # Keras's moving-average assignments in the graph
    orphan_assigns_run: int  # ... of them that one training step runs
    g_var_list: int  # variables the G train op trains
    keras_in_var_list: int  # Keras gamma/beta among them
    keras_trainable: int  # Keras gamma/beta in TRAINABLE_VARIABLES
    moving_change: float  # largest change of a Keras moving statistic over the steps
    gamma_change: float  # largest change of a Keras gamma over the steps
    kernel_change: float  # largest change of G's first dense kernel (trained as usual)
    frozen_difference: float  # trainable=False Keras BN called with training=True vs training=False
    tf_layers_error: str
    variable_names: list[str]


def measure(runs: Runs) -> KerasInV1:
    steps = max(runs.size.short_steps // 5, 1)
    config = lab_config(runs.size, runs.config.seed)
    keras: dict[str, Any] = {}
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(config.seed)
        inputs = model_inputs(runs.spec.image_shape, len(runs.train_images), config)
        _, _, train = keras_generator_step(runs.spec, config, inputs, keras)
        # Keras names its variables by the name scope it is first called in: the first tower's, "step/".
        keras_vars = {v.op.name: v for v in v1.global_variables() if v.op.name.startswith("step/")}
        assigns = [
            op
            for op in graph.get_operations()
            if op.type in ASSIGN_OPS
            and not op.name.endswith("/Assign")
            and op.inputs[0].op.name in keras_vars
        ]
        g_vars = v1.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES, scope="generator/")
        trainable = v1.trainable_variables()
        kernel = next(v for v in g_vars if v.op.name.endswith("dense/kernel"))
        update_ops = v1.get_collection(UPDATE_OPS)
        # trainable=False on a Keras BN: Keras then normalizes with the moving statistics even in training.
        probe = v1.placeholder(tf.float32, [None, 4, 4, 8])
        frozen = tf.keras.layers.BatchNormalization(name="frozen_bn")
        frozen.trainable = False
        frozen_outputs = (frozen(probe, training=True), frozen(probe, training=False))
        init_all = v1.global_variables_initializer()
        try:
            tf_layers_batch_norm(probe)
            tf_layers_error = "none: it built"
        except Exception as err:  # noqa: BLE001 - the message is the measurement
            tf_layers_error = f"{type(err).__name__}: {err}"
    graph.finalize()
    executed = executed_ops(train.step)
    moving = {n: v for n, v in keras_vars.items() if "moving_" in n}
    gammas = {n: v for n, v in keras_vars.items() if "gamma" in n}
    with v1.Session(graph=graph, config=session_config()) as sess:
        sess.run(init_all)
        sess.run(inputs.load_dataset, {inputs.dataset_feed: runs.train_images})
        sess.run(inputs.shuffle)
        before = sess.run([moving, gammas, kernel])
        for _ in range(steps):
            sess.run(train.step)
        after = sess.run([moving, gammas, kernel])
        batch = np.random.default_rng(0).normal(2.0, 3.0, (16, 4, 4, 8)).astype(np.float32)
        trained_mode, inference_mode = sess.run(frozen_outputs, {probe: batch})

    def largest(first: dict, second: dict) -> float:
        return max(float(np.abs(second[k] - first[k]).max()) for k in first)

    keras_names = set(keras_vars)
    return KerasInV1(
        steps,
        len(keras),
        len(keras_vars),
        sum(1 for u in update_ops if u.op.inputs[0].op.name in keras_names),
        len(update_ops),
        len(assigns),
        sum(op in executed for op in assigns),
        len(g_vars),
        sum(v.op.name in keras_names for v in g_vars),
        sum(v.op.name in keras_names for v in trainable),
        largest(before[0], after[0]),
        largest(before[1], after[1]),
        float(np.abs(after[2] - before[2]).max()),
        float(np.abs(trained_mode - inference_mode).max()),
        tf_layers_error,
        sorted(keras_names)[:4],
    )


SNIPPET = """
v1 = tf.compat.v1  # batch norm on v1 variables: its moving-average updates go into UPDATE_OPS
mean, variance = tf.nn.moments(h, axes=[0, 1, 2])
moving_mean = v1.get_variable("moving_mean", mean.shape, initializer=v1.zeros_initializer(), trainable=False)
v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, v1.assign_sub(moving_mean, (moving_mean - mean) * 0.01))
h = tf.nn.batch_normalization(h, mean, variance, offset=None, scale=None, variance_epsilon=1e-3)
with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
    train_op = optimizer.minimize(loss)
"""


def section(result: KerasInV1, out: Path) -> Section:
    def counts(ax) -> None:
        names = [
            "Keras updates in UPDATE_OPS",
            "Keras assignments in the graph",
            "... run by a step",
            "Keras gamma/beta trainable",
            "... in G's var_list",
        ]
        values = [
            result.keras_in_update_ops,
            result.orphan_assigns,
            result.orphan_assigns_run,
            result.keras_trainable,
            result.keras_in_var_list,
        ]
        bars = ax.barh(np.arange(len(names)), values)
        ax.bar_label(bars, fontsize=8)
        ax.set_yticks(np.arange(len(names)), names, fontsize=8)
        ax.set_xlabel("ops / variables")

    def changes(ax) -> None:
        names = ["Keras\nmoving stats", "Keras\ngamma", "G dense\nkernel"]  # two lines: no overlap
        bars = ax.bar(names, [result.moving_change, result.gamma_change, result.kernel_change])
        ax.bar_label(bars, fmt="%.3g", fontsize=8)  # the zeros are bars of no height: say them
        ax.tick_params(axis="x", labelsize=8)
        ax.set_ylabel(f"largest change in {result.steps} steps")

    lines_figure(
        out / FIGURE,
        {"what the graph holds": counts, "what training changed": changes},
        "tf.keras.layers.BatchNormalization in a tf.compat.v1 graph (Keras 3)",
    )
    text = f"""
**Symptom.** A v1-graph GAN whose batch norms come from `tf.keras.layers` trains, its losses move, and
its sampler normalizes with 0 and 1 for ever, although the code has the textbook
`tf.control_dependencies(tf.get_collection(UPDATE_OPS))`.

**Cause.** Measured on the installed TensorFlow {tf.__version__} with Keras
{tf.keras.__version__ if hasattr(tf.keras, "__version__") else "3"}:
the layer builds in a `tf.compat.v1` graph and its variables are v1 variables, but its
moving-average assignments are two `AssignVariableOp`s per call that no collection holds and nothing
depends on; `UPDATE_OPS` gets none of them. Its variables are named by the *name scope*
({", ".join(f"`{n}`" for n in result.variable_names)}), so `get_collection(TRAINABLE_VARIABLES,
scope="generator/")` does not see its gamma and beta either. And `tf.compat.v1.layers.batch_normalization`,
which had the UPDATE_OPS mechanism, raises: `{result.tf_layers_error}`.

**The code that ran** (G's batch norms from Keras, D's the project's, the project's step):

{code(source(KerasBatchNormLayers, keras_generator_step))}

**Measured** ({result.steps} training steps from the initial weights):

- {result.keras_layers} Keras layers ({result.keras_variables} variables), shared by both towers. Keras
  updates in `UPDATE_OPS`: **{result.keras_in_update_ops}** (of {result.update_ops_in_graph}: all D's).
  Keras moving-average assignments in the graph: {result.orphan_assigns}; run by a training step:
  **{result.orphan_assigns_run}**.
- Largest change of a Keras moving statistic: **{result.moving_change:g}**; of a Keras gamma:
  **{result.gamma_change:g}** (its gamma and beta are trainable, {result.keras_trainable} in
  `TRAINABLE_VARIABLES`, but {result.keras_in_var_list} of the G train op's {result.g_var_list}
  variables); G's dense kernel moved by {result.kernel_change:.3g}: the rest of G trains.
- The moving statistics therefore stay at 0 and 1: the state of the missing-dependency section, whose
  evaluator numbers show what such a sampler produces.
- `trainable = False` on a Keras batch norm makes it normalize with its moving statistics even when
  called with `training=True` (largest difference between the two calls: {result.frozen_difference:g}):
  Keras's meaning of "frozen", unlike `tf.layers`, where `trainable=False` only leaves the variables out
  of the optimizer (see the freezing section).

![keras in v1]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste: a batch norm of v1 variables instead of the Keras layer;
the moving variance is kept the same way):

{code(SNIPPET)}

**The project code that runs the same thing:**
in a `tf.compat.v1` graph use batch norm whose updates go into `UPDATE_OPS`, as
`common/layers.py` writes it, and take the optimizer's variables from the collection by scope:

{code(source(Layers.batch_norm))}

(or write the model in Keras end to end, where `model.fit` / a `tf.function` step runs the updates).
"""
    headline = (
        f"Keras updates in UPDATE_OPS {result.keras_in_update_ops}, run per step "
        f"{result.orphan_assigns_run} of "
        f"{result.orphan_assigns}; moving stats change {result.moving_change:g} in {result.steps} steps; "
        f"tf.compat.v1.layers raises"
    )
    return Section("Keras layers in a tf.compat.v1 graph", FIGURE, text, headline)
