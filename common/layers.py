"""The few layers the DCGANs need, written on `tf.compat.v1.get_variable` and `tf.nn`.

TensorFlow 2.16+ ships Keras 3, with which `tf.compat.v1.layers` raises. These functions replace
`tf.layers.dense`, `conv2d`, `conv2d_transpose`, `batch_normalization` and `dropout` with the same
defaults (Glorot-uniform kernels, zero biases, BN momentum 0.99 and epsilon 1e-3) and, for batch norm,
the same mechanism: the moving-average updates are *ops added to* `tf.compat.v1.GraphKeys.UPDATE_OPS`,
which nothing runs unless a train op is built under a control dependency on them.

Every layer opens its own `variable_scope(name)`, so calling a network a second time under
`variable_scope(..., reuse=True)` shares its variables.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

v1 = tf.compat.v1

UPDATE_OPS = v1.GraphKeys.UPDATE_OPS
# Graph collections "spectral_norm/<tower>/<kernel>/<training|inference>" hold the spectrally normalized
# kernel built there, so that D called twice in one tower (real, fake) reads its power-iteration vector
# once: see spectral_normalize. (A collection of tensors, so that the saver's meta graph can write it.)
SPECTRAL_NORM_KERNELS = "spectral_norm"
Training = bool | tf.Tensor  # a Python bool, or a scalar bool tensor decided at run time


@dataclasses.dataclass(frozen=True)
class LayerImpl:
    """Which implementation the layers build: a value handed to every layer call, never a global.

    A run resolves it once, with its session settings (common.speed.SpeedSettings.layer_impl, from the
    run's precision); docs/benchmarks.md measures each choice and benchmarks.levers flips them.

    fused_batch_norm (on): batch norm in training mode (a Python True, 4-D input) is one fused kernel
    rather than tf.nn.moments + batch_normalization (equal to float tolerance; ~8% faster steps).
    mask_dropout (off: no measurable gain on the CPU it was tried on): dropout multiplies by a
    precomputed {0, 1/keep_prob} mask, the same values as stateless_dropout's select with fewer ops.
    fused_leaky_relu (on): tf.nn.leaky_relu, one op, the same values and gradients as max(alpha * x, x).
    matmul_filter_grad (None: on in bf16, off in float32): a convolution's kernel gradient as one matrix
    product of image patches (`filter_gradient`) instead of Conv2DBackpropFilter, which oneDNN runs
    5-7x slower than the forward convolution for these small images and many channels. In bf16 the
    step gets ~1.3x faster; in float32 it gains nothing and would change the last bits, so float32
    keeps TensorFlow's kernel.
    dropout_bits16 (None: on in bf16, off in float32): each dropout decision from 16 random bits
    instead of a float32 uniform (32 bits), so Philox draws half as many numbers: the random numbers
    were the largest cost of a bf16 step after the matrix work. Other masks, the same keep probability
    to 2^-16; bf16 already changes the numbers, and its sample quality is measured with this on.
    lrelu_grad_from_output (None: on in bf16, off in float32): the fused leaky ReLU's gradient reads its
    output rather than its input (the same values: y > 0 exactly where x > 0), so nothing but the ReLU
    reads a convolution's BiasAdd and grappler fuses convolution, bias and leaky ReLU into one kernel
    (D's first layer, which has no batch norm); without it that layer runs max(alpha * x, x).
    """

    fused_batch_norm: bool = True
    mask_dropout: bool = False
    fused_leaky_relu: bool = True
    matmul_filter_grad: bool | None = None
    dropout_bits16: bool | None = None
    lrelu_grad_from_output: bool | None = False

    def for_precision(self, precision: str) -> LayerImpl:
        """These choices with the precision-dependent ones made (precision: float32 or bfloat16)."""
        bf16 = precision == "bfloat16"
        return dataclasses.replace(
            self,
            matmul_filter_grad=bf16 if self.matmul_filter_grad is None else self.matmul_filter_grad,
            dropout_bits16=bf16 if self.dropout_bits16 is None else self.dropout_bits16,
            lrelu_grad_from_output=bf16
            if self.lrelu_grad_from_output is None
            else self.lrelu_grad_from_output,
        )


# TensorFlow's own kernels throughout: the float32 choice, and what a layer called without one builds.
FLOAT32_IMPL = LayerImpl().for_precision("float32")


def layer_kernel(shape: list[int], spectral_norm: bool | None) -> tf.Tensor:
    """The layer's Glorot-uniform `kernel` variable, spectrally normalized (spectral_normalize) in
    training mode (True) or not (False), or as it is (None)."""
    kernel = v1.get_variable("kernel", shape, initializer=v1.glorot_uniform_initializer())
    return kernel if spectral_norm is None else spectral_normalize(kernel, spectral_norm)


def tower_name() -> str:
    """The top-level name scope being built in: one tower of the step (model_loss's `scope`)."""
    return v1.get_default_graph().get_name_scope().split("/")[0]


def dense(
    x: tf.Tensor, units: int, name: str, use_bias: bool = True, spectral_norm: bool | None = None
) -> tf.Tensor:
    """`x @ kernel + bias` on a 2-D input. spectral_norm True/False: the kernel spectrally normalized
    (spectral_normalize) in training mode or not; None: as it is."""
    with v1.variable_scope(name):
        kernel = layer_kernel([int(x.shape[-1]), units], spectral_norm)
        y = tf.matmul(x, kernel)
        if use_bias:
            y = tf.nn.bias_add(y, v1.get_variable("bias", [units], initializer=v1.zeros_initializer()))
        return y


def conv2d(
    x: tf.Tensor,
    filters: int,
    kernel_size: int,
    strides: int,
    padding: str,
    name: str,
    use_bias: bool = True,
    impl: LayerImpl = FLOAT32_IMPL,
    spectral_norm: bool | None = None,
) -> tf.Tensor:
    """NHWC convolution, `tf.layers.conv2d` style; spectral_norm as for `dense`."""
    with v1.variable_scope(name):
        kernel = layer_kernel([kernel_size, kernel_size, int(x.shape[-1]), filters], spectral_norm)
        if impl.matmul_filter_grad:
            y = _conv2d_matmul_filter_grad(x, kernel, strides, padding.upper())
        else:
            y = tf.nn.conv2d(x, kernel, strides=[1, strides, strides, 1], padding=padding.upper())
        if use_bias:
            y = tf.nn.bias_add(y, v1.get_variable("bias", [filters], initializer=v1.zeros_initializer()))
        return y


def transposed_output_size(size: int, kernel_size: int, strides: int, padding: str) -> int:
    """Spatial size after a transposed convolution (what `tf.layers.conv2d_transpose` computes)."""
    if padding.upper() == "SAME":
        return size * strides
    return (size - 1) * strides + max(kernel_size - strides, 0) + strides


def conv2d_transpose(
    x: tf.Tensor,
    filters: int,
    kernel_size: int,
    strides: int,
    padding: str,
    name: str,
    use_bias: bool = True,
    impl: LayerImpl = FLOAT32_IMPL,
    spectral_norm: bool | None = None,
) -> tf.Tensor:
    """NHWC transposed convolution; the kernel is [k, k, out, in] as `tf.nn.conv2d_transpose` wants.
    spectral_norm as for `dense` (the matrix is then [k k out, in])."""
    with v1.variable_scope(name):
        height, width, channels = (int(d) for d in x.shape[1:])
        kernel = layer_kernel([kernel_size, kernel_size, filters, channels], spectral_norm)
        out_h = transposed_output_size(height, kernel_size, strides, padding)
        out_w = transposed_output_size(width, kernel_size, strides, padding)
        output_shape = tf.stack([tf.shape(x)[0], out_h, out_w, filters])
        if impl.matmul_filter_grad:
            y = _conv2d_transpose_matmul_filter_grad(x, kernel, output_shape, strides, padding.upper())
        else:
            y = tf.nn.conv2d_transpose(
                x, kernel, output_shape, strides=[1, strides, strides, 1], padding=padding.upper()
            )
        y = tf.reshape(y, [-1, out_h, out_w, filters])  # restores the static shape
        if use_bias:
            y = tf.nn.bias_add(y, v1.get_variable("bias", [filters], initializer=v1.zeros_initializer()))
        return y


def spectral_normalize(kernel: tf.Variable, training: bool) -> tf.Tensor:
    """kernel / sigma, sigma its largest singular value as a [fan_in, fan_out] matrix W (Miyato et al.
    2018): every layer of D is then at most 1-Lipschitz in its input, whatever the optimizer does.

    sigma is estimated by one power iteration per step from a persistent unit vector `u` [fan_out]
    (a non-trainable variable beside the kernel, so checkpoints carry it):
        v = W u / |W u|,  u' = W^T v / |W^T v|,  sigma = u' . W^T v,
    with u' and v held constant for the gradient (it flows through sigma). In training mode the update
    u <- u' is an op *added to* UPDATE_OPS, exactly like batch norm's moving averages: it runs only
    where a train op waits for it (D's); training=False reads u and adds nothing.
    The products are elementwise sums, not MatMuls, so that bf16's rewrite leaves sigma in float32.
    A kernel normalized a second time in the same tower (D on real, then on fake) returns the first
    result: one read of u and one update per tower, so the order of the two never races.
    """
    mode = "training" if training else "inference"
    collection = f"{SPECTRAL_NORM_KERNELS}/{tower_name()}/{kernel.op.name}/{mode}"
    built = v1.get_collection(collection)
    if built:
        return built[0]
    with v1.variable_scope("spectral_norm"):
        fan_out = int(kernel.shape[-1])
        matrix = tf.reshape(kernel, [-1, fan_out])
        u = v1.get_variable("u", [fan_out], initializer=v1.random_normal_initializer(), trainable=False)
        u_value = tf.math.l2_normalize(u.read_value())
        v = tf.stop_gradient(tf.math.l2_normalize(tf.reduce_sum(matrix * u_value, axis=1)))
        w_t_v = tf.reduce_sum(matrix * v[:, None], axis=0)
        u_next = tf.stop_gradient(tf.math.l2_normalize(w_t_v))
        sigma = tf.reduce_sum(u_next * w_t_v, name="sigma")
        if training:
            v1.add_to_collection(UPDATE_OPS, v1.assign(u, u_next, name="update_u"))
        normalized = tf.identity(kernel / sigma, name="normalized_kernel")
    v1.add_to_collection(collection, normalized)
    return normalized


def image_patches(x: tf.Tensor, kernel_size: int, strides: int, padding: str) -> tf.Tensor:
    """im2col: [N, H, W, C] -> [N, H_out, W_out, k * k * C], each window in (row, column, channel) order.

    The values of tf.image.extract_patches, made of ops that oneDNN's bf16 rewrite keeps in bf16 (it
    leaves ExtractImagePatches in float32, between casts): the padded image is reshaped so that the
    stride becomes its own axis, [N, H / s, s, W / s, s, C], and each of the k * k windows is then a
    unit-stride slice of it (strided slices are several times slower).
    """
    k, s = kernel_size, strides
    height, width = int(x.shape[1]), int(x.shape[2])
    if padding == "SAME":
        out_h, out_w = -(-height // s), -(-width // s)
        top = max((out_h - 1) * s + k - height, 0) // 2
        left = max((out_w - 1) * s + k - width, 0) // 2
    else:
        out_h, out_w = (height - k) // s + 1, (width - k) // s + 1
        top = left = 0
    # Rows (columns) read: top padding + the image + bottom padding, rounded up to a multiple of s.
    rows = -(-((out_h - 1) * s + k) // s) * s
    columns = -(-((out_w - 1) * s + k) // s) * s
    bottom, right = max(rows - height - top, 0), max(columns - width - left, 0)
    x = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])[:, :rows, :columns, :]
    grid = tf.reshape(x, [-1, rows // s, s, columns // s, s, int(x.shape[-1])])
    windows = [
        grid[:, i // s : i // s + out_h, i % s, j // s : j // s + out_w, j % s, :]
        for i in range(k)
        for j in range(k)
    ]
    return tf.concat(windows, axis=-1)


def filter_gradient(patch_source: tf.Tensor, other: tf.Tensor, kernel: tf.Tensor, strides: int, padding: str):
    """The kernel gradient of a convolution as one matrix product: patches^T @ other.

    For y = conv2d(x, kernel): patch_source = x, other = dy. For y = conv2d_transpose(x, kernel), the
    adjoint of conv2d(., kernel): patch_source = dy, other = x. One large matrix product is what AMX
    runs best.
    """
    k = int(kernel.shape[0])
    patches = image_patches(patch_source, k, strides, padding)
    rows = tf.reshape(patches, [-1, int(patches.shape[-1])])
    columns = tf.reshape(other, [-1, int(other.shape[-1])])
    return tf.reshape(tf.matmul(rows, columns, transpose_a=True), tf.shape(kernel))


def _conv2d_matmul_filter_grad(x: tf.Tensor, kernel: tf.Tensor, strides: int, padding: str) -> tf.Tensor:
    """tf.nn.conv2d with its kernel gradient as a matrix product (filter_gradient)."""
    stride = [1, strides, strides, 1]

    @tf.custom_gradient
    def conv(x, kernel):
        def grad(dy):
            dx = tf.nn.conv2d_transpose(dy, kernel, tf.shape(x), stride, padding)
            return dx, filter_gradient(x, dy, kernel, strides, padding)

        return tf.nn.conv2d(x, kernel, stride, padding), grad

    return conv(x, kernel)


def _conv2d_transpose_matmul_filter_grad(
    x: tf.Tensor, kernel: tf.Tensor, output_shape: tf.Tensor, strides: int, padding: str
) -> tf.Tensor:
    """tf.nn.conv2d_transpose with its kernel gradient as a matrix product (filter_gradient)."""
    stride = [1, strides, strides, 1]

    @tf.custom_gradient
    def conv_transpose(x, kernel):
        def grad(dy):
            dx = tf.nn.conv2d(dy, kernel, stride, padding)
            return dx, filter_gradient(dy, x, kernel, strides, padding)

        return tf.nn.conv2d_transpose(x, kernel, output_shape, stride, padding), grad

    return conv_transpose(x, kernel)


def batch_norm(
    x: tf.Tensor,
    training: Training,
    name: str,
    momentum: float = 0.99,
    epsilon: float = 1e-3,
    impl: LayerImpl = FLOAT32_IMPL,
) -> tf.Tensor:
    """Batch normalization over every axis but the last, like `tf.layers.batch_normalization`.

    training=True normalizes with the batch's own statistics and *adds* two assign ops to
    UPDATE_OPS that move `moving_mean` / `moving_variance` towards them:
        moving <- moving * momentum + batch * (1 - momentum)
    training=False normalizes with the moving statistics and adds nothing. A bool tensor picks at run
    time; the update ops it adds are then no-ops when it is False.
    """
    with v1.variable_scope(name):
        channels = int(x.shape[-1])
        gamma = v1.get_variable("gamma", [channels], initializer=v1.ones_initializer())
        beta = v1.get_variable("beta", [channels], initializer=v1.zeros_initializer())
        moving_mean = v1.get_variable(
            "moving_mean", [channels], initializer=v1.zeros_initializer(), trainable=False
        )
        moving_variance = v1.get_variable(
            "moving_variance", [channels], initializer=v1.ones_initializer(), trainable=False
        )
        if training is False:
            return tf.nn.batch_normalization(x, moving_mean, moving_variance, beta, gamma, epsilon)

        if training is True and len(x.shape) == 4 and impl.fused_batch_norm:
            # One fused kernel normalizes with the batch statistics: far cheaper than moments + normalize.
            y, batch_mean, unbiased_variance = v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=epsilon, is_training=True
            )
            # It returns the Bessel-corrected variance; tf.layers undid the factor for the moving average.
            count = tf.cast(tf.size(x, out_type=tf.int64) // channels, unbiased_variance.dtype)
            batch_variance = unbiased_variance * ((count - 1.0) / tf.maximum(count, 1.0))
            _add_moving_average_updates(
                moving_mean, moving_variance, batch_mean, batch_variance, 1.0 - momentum
            )
            return y

        axes = list(range(len(x.shape) - 1))
        # The biased variance, as tf.layers used for its moving average (it undid fused BN's Bessel factor).
        batch_mean, batch_variance = tf.nn.moments(x, axes)
        if training is True:
            mean, variance = batch_mean, batch_variance
            decay = 1.0 - momentum
        else:
            mean, variance = tf.cond(
                training, lambda: (batch_mean, batch_variance), lambda: (moving_mean, moving_variance)
            )
            decay = tf.where(training, 1.0 - momentum, 0.0)
        _add_moving_average_updates(moving_mean, moving_variance, batch_mean, batch_variance, decay)
        return tf.nn.batch_normalization(x, mean, variance, beta, gamma, epsilon)


def _add_moving_average_updates(
    moving_mean: tf.Variable,
    moving_variance: tf.Variable,
    batch_mean: tf.Tensor,
    batch_variance: tf.Tensor,
    decay: float | tf.Tensor,
) -> None:
    """moving <- moving - (moving - batch) * decay (decay = 1 - momentum), two ops added to UPDATE_OPS.

    A layer called twice in one forward pass (D on real, then on fake) adds two updates of the same
    moving averages. Unordered, they race: the result depends on which runs first, so two identical
    runs drift apart. The updates of the same top-level name scope (one tower) are chained in call order.
    """
    tower = tower_name()
    variables = {moving_mean.handle.op.name, moving_variance.handle.op.name}
    earlier = [
        update.op  # (assign_sub on a resource variable returns the variable; .op is the assignment)
        for update in v1.get_collection(UPDATE_OPS)
        if update.op.name.startswith(f"{tower}/") and update.op.inputs[0].op.name in variables
    ]
    with tf.control_dependencies(earlier):
        mean_update = v1.assign_sub(
            moving_mean, (moving_mean - batch_mean) * decay, name="update_moving_mean"
        )
        variance_update = v1.assign_sub(
            moving_variance, (moving_variance - batch_variance) * decay, name="update_moving_variance"
        )
    v1.add_to_collection(UPDATE_OPS, mean_update)
    v1.add_to_collection(UPDATE_OPS, variance_update)


def lrelu(x: tf.Tensor, alpha: float, impl: LayerImpl = FLOAT32_IMPL) -> tf.Tensor:
    """Leaky ReLU as the notebook wrote it: max(alpha * x, x) (for 0 <= alpha <= 1)."""
    # Not straight after a BiasAdd: grappler's remapper would fuse Conv2D + BiasAdd + LeakyRelu, find the
    # gradient still reading the BiasAdd, log "remapper failed" and drop all its fusions (TF 2.21).
    with tf.name_scope("lrelu"):  # a scope of its own, so that benchmarks.profile can name its time
        if impl.fused_leaky_relu and 0.0 <= alpha <= 1.0 and impl.lrelu_grad_from_output:
            graph = v1.get_default_graph()
            with graph.gradient_override_map({"LeakyRelu": LEAKY_RELU_GRAD_FROM_OUTPUT}):
                return tf.nn.leaky_relu(x, alpha)
        if impl.fused_leaky_relu and 0.0 <= alpha <= 1.0 and x.op.type != "BiasAdd":
            return tf.nn.leaky_relu(x, alpha)  # one op; equal values and gradients, also at x = 0
        return tf.maximum(alpha * x, x)


LEAKY_RELU_GRAD_FROM_OUTPUT = "LeakyReluGradFromOutput"


@tf.RegisterGradient(LEAKY_RELU_GRAD_FROM_OUTPUT)
def _leaky_relu_grad_from_output(op: tf.Operation, grad: tf.Tensor) -> tf.Tensor:
    # LeakyReluGrad passes grad where its `features` are > 0, else alpha * grad. For 0 <= alpha <= 1 the
    # output is > 0 exactly where the input is, so the output serves as `features`, value for value.
    return tf.raw_ops.LeakyReluGrad(gradients=grad, features=op.outputs[0], alpha=op.get_attr("alpha"))


class SeedStream:
    """Fresh stateless seeds, each a pure function of a base seed and a counter.

    The base is a shape-[2] int64 tensor such as (run seed, step), so every dropout mask is reproducible
    from the checkpointed step: that is what makes resume exact.
    """

    def __init__(self, base: tf.Tensor) -> None:
        self.base = base
        self.count = 0

    def __call__(self) -> tf.Tensor:
        self.count += 1
        return tf.random.experimental.stateless_fold_in(self.base, self.count)


def dropout(
    x: tf.Tensor,
    keep_prob: float,
    seeds: SeedStream | None,
    active: Training = True,
    impl: LayerImpl = FLOAT32_IMPL,
) -> tf.Tensor:
    """Dropout whose mask comes from `seeds`; active=False (inference) or keep_prob >= 1 is the identity."""
    with tf.name_scope("dropout"):  # a scope of its own, so that benchmarks.profile can name its time
        if active is False or keep_prob >= 1.0:
            return x
        if seeds is None:
            raise ValueError("active dropout needs a SeedStream")
        rate = 1.0 - keep_prob
        if impl.dropout_bits16:
            # Two 16-bit draws from each uint32 Philox output; keep where the draw is >= rate * 2^16.
            size = tf.size(x)
            words = tf.random.stateless_uniform(
                [(size + 1) // 2], seed=seeds(), minval=None, maxval=None, dtype=tf.uint32
            )
            draws = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:size]
            threshold = tf.constant(round(rate * 2**16), tf.uint16)
            keep = tf.reshape(draws, tf.shape(x)) >= threshold
            if impl.mask_dropout:  # one multiply forward and one backward (values as below, -0.0 aside)
                mask = tf.where(keep, tf.constant(1.0 / keep_prob, x.dtype), tf.constant(0.0, x.dtype))
                dropped = x * mask
            else:
                dropped = tf.where(keep, x * tf.constant(1.0 / keep_prob, x.dtype), tf.zeros_like(x))
            dropped.set_shape(x.shape)
        elif impl.mask_dropout:
            # stateless_dropout's uniforms and threshold, as a {0, 1/keep_prob} mask: one multiply forward and
            # one backward instead of a scale, a select and their gradients. The same values for finite x.
            uniform = tf.random.stateless_uniform(tf.shape(x), seed=seeds(), dtype=x.dtype)
            mask = tf.cast(uniform >= rate, x.dtype) * tf.constant(1.0 / (1.0 - rate), x.dtype)
            dropped = x * mask
            dropped.set_shape(x.shape)  # a mask of dynamic shape would blur size-1 dimensions
        else:
            dropped = tf.nn.experimental.stateless_dropout(x, rate=rate, seed=seeds())
        if active is True:
            return dropped
        return tf.cond(active, lambda: dropped, lambda: x)


class Layers:
    """The layer functions bound to one LayerImpl and one SeedStream: what a network calls.

    A network reads like the notebook's `tf.layers.conv2d(...)` calls (`layers.conv2d(...)`), while the
    implementation choice and the dropout seeds arrive as this one explicit argument.
    """

    def __init__(
        self,
        impl: LayerImpl = FLOAT32_IMPL,
        seeds: SeedStream | None = None,
        spectral_norm: bool | None = None,
    ) -> None:
        self.impl = impl
        self.seeds = seeds
        self.spectral_norm = spectral_norm  # None: kernels as they are; True/False: spectral_normalize

    def with_spectral_norm(self, training: Training) -> Layers:
        """These layers with every kernel spectrally normalized, in training mode or not (a Python bool:
        u's update is added at build time, like batch norm's)."""
        if not isinstance(training, bool):
            raise TypeError("spectral normalization needs training as a Python bool")
        return type(self)(self.impl, self.seeds, training)

    def dense(self, x: tf.Tensor, units: int, name: str, use_bias: bool = True) -> tf.Tensor:
        return dense(x, units, name, use_bias, self.spectral_norm)

    def conv2d(
        self, x: tf.Tensor, filters: int, kernel_size: int, strides: int, padding: str, name: str,
        use_bias: bool = True,
    ) -> tf.Tensor:  # fmt: skip
        return conv2d(
            x, filters, kernel_size, strides, padding, name, use_bias, self.impl, self.spectral_norm
        )

    def conv2d_transpose(
        self, x: tf.Tensor, filters: int, kernel_size: int, strides: int, padding: str, name: str,
        use_bias: bool = True,
    ) -> tf.Tensor:  # fmt: skip
        return conv2d_transpose(
            x, filters, kernel_size, strides, padding, name, use_bias, self.impl, self.spectral_norm
        )

    def batch_norm(
        self, x: tf.Tensor, training: Training, name: str, momentum: float = 0.99, epsilon: float = 1e-3
    ) -> tf.Tensor:
        return batch_norm(x, training, name, momentum, epsilon, self.impl)

    def lrelu(self, x: tf.Tensor, alpha: float) -> tf.Tensor:
        return lrelu(x, alpha, self.impl)

    def dropout(self, x: tf.Tensor, keep_prob: float, active: Training = True) -> tf.Tensor:
        return dropout(x, keep_prob, self.seeds, active, self.impl)
