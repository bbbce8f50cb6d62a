"""The hand-written layers: shapes, initializers, and batch norm's UPDATE_OPS mechanism."""

import numpy as np
import pytest
import tensorflow as tf

from common.layers import (
    UPDATE_OPS,
    LayerImpl,
    SeedStream,
    batch_norm,
    conv2d,
    conv2d_transpose,
    dense,
    dropout,
    image_patches,
    lrelu,
    transposed_output_size,
)

v1 = tf.compat.v1


def run(graph: tf.Graph, fetches, feed=None, init=True):
    with v1.Session(graph=graph) as sess:
        if init:
            sess.run(v1.global_variables_initializer())
        return sess.run(fetches, feed)


def test_dense_and_conv_shapes_and_initializers():
    graph = tf.Graph()
    with graph.as_default():
        x = tf.ones([2, 8, 8, 3])
        y = conv2d(x, 16, 3, strides=2, padding="same", name="conv")
        z = conv2d_transpose(y, 5, 4, strides=1, padding="valid", name="deconv")
        w = conv2d_transpose(y, 7, 3, strides=2, padding="same", name="deconv2")
        d = dense(tf.reshape(y, [2, -1]), 10, "dense")
        with v1.variable_scope("dense", reuse=True):
            kernel, bias = v1.get_variable("kernel"), v1.get_variable("bias")
    assert y.shape.as_list() == [2, 4, 4, 16]
    assert z.shape.as_list() == [2, 7, 7, 5]  # the notebook's 4x4 -> 7x7 step
    assert w.shape.as_list() == [2, 8, 8, 7]
    assert d.shape.as_list() == [2, 10]
    k, b = run(graph, [kernel, bias])
    limit = np.sqrt(6.0 / (256 + 10))  # Glorot uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out))
    assert np.abs(k).max() <= limit and np.abs(k).max() > 0.8 * limit
    assert not b.any()


@pytest.mark.parametrize(
    "size, kernel, strides, padding, expected",
    [
        (4, 4, 1, "valid", 7),
        (7, 3, 2, "same", 14),
        (14, 3, 2, "same", 28),
        (3, 3, 2, "valid", 7),
        (7, 2, 2, "valid", 14),
    ],
)
def test_transposed_output_size(size, kernel, strides, padding, expected):
    assert transposed_output_size(size, kernel, strides, padding) == expected


def test_transposed_output_size_matches_tensorflow():
    graph = tf.Graph()
    with graph.as_default():
        x = tf.ones([1, 3, 3, 2])
        y = conv2d_transpose(x, 4, 3, strides=2, padding="valid", name="t")
    assert run(graph, y).shape == (1, 7, 7, 4)


def _bn_graph(training, momentum=0.9):
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 2, 2, 3])
        y = batch_norm(x, training, "bn", momentum=momentum, epsilon=1e-3)
        with v1.variable_scope("bn", reuse=True):
            mean = v1.get_variable("moving_mean")
            variance = v1.get_variable("moving_variance")
    return graph, x, y, mean, variance


def test_batch_norm_moves_statistics_only_through_update_ops():
    graph, x, y, mean, variance = _bn_graph(True)
    updates = graph.get_collection(UPDATE_OPS)
    assert len(updates) == 2  # moving_mean and moving_variance
    data = np.random.default_rng(0).normal(3.0, 2.0, (8, 2, 2, 3)).astype(np.float32)
    with v1.Session(graph=graph) as sess:
        sess.run(v1.global_variables_initializer())
        out = sess.run(y, {x: data})
        # Running the layer alone leaves the moving statistics at their initial values.
        np.testing.assert_array_equal(sess.run(mean), 0.0)
        np.testing.assert_array_equal(sess.run(variance), 1.0)
        sess.run(updates, {x: data})
        batch_mean = data.mean(axis=(0, 1, 2))
        batch_var = data.var(axis=(0, 1, 2))  # biased, as tf.layers' moving average used
        np.testing.assert_allclose(sess.run(mean), 0.1 * batch_mean, rtol=1e-5)
        np.testing.assert_allclose(sess.run(variance), 0.9 + 0.1 * batch_var, rtol=1e-5)
    # Training mode normalizes with the batch's own statistics.
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), np.sqrt(batch_var / (batch_var + 1e-3)), rtol=1e-4)


def test_batch_norm_inference_uses_moving_statistics_and_adds_no_updates():
    graph, x, y, mean, variance = _bn_graph(False)
    assert graph.get_collection(UPDATE_OPS) == []
    data = np.random.default_rng(1).normal(5.0, 3.0, (4, 2, 2, 3)).astype(np.float32)
    with v1.Session(graph=graph) as sess:
        sess.run(v1.global_variables_initializer())
        sess.run([mean.assign([1.0, 2.0, 3.0]), variance.assign([4.0, 1.0, 0.25])])
        out = sess.run(y, {x: data})
    expected = (data - np.array([1.0, 2.0, 3.0])) / np.sqrt(np.array([4.0, 1.0, 0.25]) + 1e-3)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    # Inference output of one image does not depend on the rest of the batch.
    with v1.Session(graph=graph) as sess:
        sess.run(v1.global_variables_initializer())
        np.testing.assert_allclose(sess.run(y, {x: data[:1]}), sess.run(y, {x: data})[:1], rtol=1e-6)


def test_batch_norm_with_a_training_tensor():
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 3])
        training = v1.placeholder(tf.bool, [])
        y = batch_norm(x, training, "bn", momentum=0.5)
        mean = [v for v in v1.global_variables() if "moving_mean" in v.name][0]
        updates = graph.get_collection(UPDATE_OPS)
    data = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]], np.float32)
    with v1.Session(graph=graph) as sess:
        sess.run(v1.global_variables_initializer())
        sess.run([y, updates], {x: data, training: False})
        np.testing.assert_array_equal(sess.run(mean), 0.0)  # inference: the updates are no-ops
        sess.run([y, updates], {x: data, training: True})
        np.testing.assert_allclose(sess.run(mean), [1.0, 1.5, 2.0])


@pytest.mark.parametrize(
    "bits16, mask",
    [(False, False), (True, False), (True, True)],
    ids=["float32 uniforms", "16-bit draws", "16-bit mask"],
)
@pytest.mark.parametrize("keep_prob", [0.8, 0.3])
def test_dropout_is_seeded_and_inactive_at_inference(bits16, mask, keep_prob):
    graph = tf.Graph()
    impl = LayerImpl(dropout_bits16=bits16, mask_dropout=mask)
    with graph.as_default():
        x = tf.ones([1000, 101])  # an odd number of elements: the 16-bit draws come in pairs
        seed = v1.placeholder(tf.int64, [2])
        a = dropout(x, keep_prob, SeedStream(seed), impl=impl)
        gradient = tf.gradients(tf.reduce_sum(a * 3.0), x)[0]
        off = dropout(x, keep_prob, None, active=False)
        assert a.shape.as_list() == [1000, 101]
    with v1.Session(graph=graph) as sess:
        first, first_gradient = sess.run([a, gradient], {seed: [1, 2]})
        again = sess.run(a, {seed: [1, 2]})
        other = sess.run(a, {seed: [1, 3]})
        np.testing.assert_array_equal(first, again)
        assert (first != other).any()
        assert abs((first > 0).mean() - keep_prob) < 0.01
        np.testing.assert_allclose(first[first > 0], 1 / keep_prob)  # inverted dropout keeps the mean
        np.testing.assert_allclose(first_gradient, 3.0 * first)  # through the kept units only, scaled
        np.testing.assert_array_equal(sess.run(off), 1.0)
        # Neighbouring draws (the two halves of one 32-bit word) are independent.
        kept = (first > 0).reshape(-1)[: 1000 * 100].reshape(-1, 2)
        assert abs((kept[:, 0] & kept[:, 1]).mean() - keep_prob**2) < 0.01


def test_lrelu():
    graph = tf.Graph()
    with graph.as_default():
        y = lrelu(tf.constant([-2.0, 0.0, 3.0]), 0.01)
    np.testing.assert_allclose(run(graph, y, init=False), [-0.02, 0.0, 3.0])


def test_16_bit_dropout_as_a_mask_gives_the_selects_values_and_gradients():
    graph = tf.Graph()
    with graph.as_default():
        x = tf.random.stateless_normal([64, 7, 7, 32], seed=[3, 4])
        seed = tf.constant([5, 6], tf.int64)
        outputs = []
        for mask in (False, True):
            y = dropout(x, 0.8, SeedStream(seed), impl=LayerImpl(dropout_bits16=True, mask_dropout=mask))
            outputs += [y, tf.gradients(tf.reduce_sum(y * x), x)[0]]
    select, select_grad, masked, masked_grad = run(graph, outputs, init=False)
    np.testing.assert_array_equal(masked, select)  # equal as numbers: a dropped negative is -0.0 here
    np.testing.assert_array_equal(masked_grad, select_grad)


def test_leaky_relu_gradient_from_its_output_equals_the_gradient_from_its_input():
    # The same values, to the bit, in float32; and the gradient no longer reads the BiasAdd, which is
    # what lets grappler fuse a convolution, its bias and the leaky ReLU (D's first layer).
    graph = tf.Graph()
    with graph.as_default():
        x = tf.random.stateless_normal([16, 8, 8, 3], seed=[1, 2])
        values = []
        for from_output in (False, True):
            with v1.variable_scope("net", reuse=from_output):  # the same kernel both times
                pre = conv2d(x, 8, 3, strides=2, padding="same", name="conv")
                y = lrelu(pre, 0.2, LayerImpl(lrelu_grad_from_output=from_output))
            (kernel,) = [v for v in v1.trainable_variables() if v.name == "net/conv/kernel:0"]
            values.append([y, *tf.gradients(tf.reduce_sum(y * y), [x, kernel])])
        assert pre.op.type == "BiasAdd" and y.op.type == "LeakyRelu"
        readers = {op.type for op in graph.get_operations() if pre in op.inputs}
    assert readers == {"LeakyRelu"}  # only the ReLU reads the BiasAdd: nothing blocks the fusion
    from_input, from_output = run(graph, values)
    for a, b in zip(from_input, from_output, strict=True):
        np.testing.assert_array_equal(a, b)


def test_two_calls_in_one_pass_update_the_moving_mean_in_call_order():
    # D runs on real, then on fake: both calls add updates of the same moving mean. Unordered they race;
    # chained, the result is always "real's update, then fake's".
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 1, 1, 1])
        with tf.name_scope("step"):
            with v1.variable_scope("d"):
                batch_norm(x, True, "bn", momentum=0.5)
            with v1.variable_scope("d", reuse=True):
                batch_norm(x * 3.0 + 10.0, True, "bn", momentum=0.5)
            with v1.variable_scope("d", reuse=True):
                mean = v1.get_variable("bn/moving_mean")
        updates = graph.get_collection(UPDATE_OPS)
    data = np.array([[[[1.0]]], [[[3.0]]]], np.float32)  # batch mean 2; the second call sees mean 16
    expected = 0.0
    with v1.Session(graph=graph) as sess:
        sess.run(v1.global_variables_initializer())
        for _ in range(20):
            sess.run(updates, {x: data})
            expected = expected + (2.0 - expected) * 0.5
            expected = expected + (16.0 - expected) * 0.5
            assert sess.run(mean)[0] == pytest.approx(expected, rel=1e-6)


PATCH_CASES = [
    ((2, 7, 7, 3), 3, 2, "SAME"),  # odd size, stride 2: the discriminator's last layer
    ((2, 14, 14, 5), 3, 2, "SAME"),
    ((2, 28, 28, 1), 3, 2, "SAME"),
    ((2, 8, 8, 3), 4, 2, "SAME"),
    ((2, 7, 7, 4), 4, 1, "VALID"),  # the MNIST generator's 4x4 -> 7x7 layer, seen from its output
    ((2, 9, 9, 2), 5, 2, "VALID"),
    ((2, 10, 8, 2), 3, 2, "VALID"),  # rows and columns no window reads
    ((1, 5, 6, 2), 3, 1, "SAME"),  # not square
    ((1, 6, 6, 2), 2, 3, "VALID"),  # windows smaller than the stride
]


@pytest.mark.parametrize("shape, kernel, strides, padding", PATCH_CASES)
def test_image_patches_are_extract_patches(shape, kernel, strides, padding):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    expected = tf.image.extract_patches(
        x, [1, kernel, kernel, 1], [1, strides, strides, 1], [1, 1, 1, 1], padding
    )
    graph = tf.Graph()
    with graph.as_default():
        patches = image_patches(tf.constant(x), kernel, strides, padding)
    np.testing.assert_array_equal(run(graph, patches, init=False), expected.numpy())


def _conv_stack(impl: LayerImpl) -> list[np.ndarray]:
    """The generators' and discriminator's kinds of convolution: values, input and kernel gradients."""
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(3)
        x = tf.constant(np.random.default_rng(0).standard_normal((4, 4, 4, 16)).astype(np.float32))
        h = conv2d_transpose(x, 12, 4, 1, "valid", "conv_transpose2", impl=impl)  # 7 x 7: MNIST's
        h = conv2d_transpose(h, 8, 3, 2, "same", "conv_transpose3", impl=impl)  # 14 x 14
        h = conv2d(h, 8, 3, 2, "same", "conv2", impl=impl)  # 7 x 7
        h = conv2d(h, 16, 3, 2, "same", "conv3", impl=impl)  # 4 x 4
        h = conv2d_transpose(h, 6, 4, 2, "same", "cifar_conv_transpose2", impl=impl)  # 8 x 8: CIFAR's
        loss = tf.reduce_sum(tf.sin(h))
        return run(graph, [h, *tf.gradients(loss, [x, *v1.trainable_variables()])])


def test_matmul_filter_gradients_equal_conv2d_backprop_filter():
    native = _conv_stack(LayerImpl(matmul_filter_grad=False))
    matmul = _conv_stack(LayerImpl(matmul_filter_grad=True))
    assert len(native) == 12  # output, input gradient, 5 kernels and 5 biases
    for a, b in zip(native, matmul, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())
    assert np.abs(native[1]).max() > 0 and np.abs(native[2]).max() > 0  # gradients that are not zero


def test_matmul_filter_gradients_follow_the_precision():
    assert LayerImpl().for_precision("bfloat16").matmul_filter_grad is True
    assert LayerImpl().for_precision("float32").matmul_filter_grad is False
    assert LayerImpl(matmul_filter_grad=False).for_precision("bfloat16").matmul_filter_grad is False
    assert LayerImpl().for_precision("bfloat16").dropout_bits16 is True
    assert LayerImpl().for_precision("float32").dropout_bits16 is False
    graph = tf.Graph()
    impl = LayerImpl(matmul_filter_grad=True)
    with graph.as_default():
        x = tf.zeros([2, 8, 8, 3])
        y = conv2d(x, 4, 3, 2, "same", "conv", impl=impl)
        y = conv2d_transpose(y, 3, 3, 2, "same", "conv_transpose", impl=impl)
        tf.gradients(tf.reduce_sum(y), [x, *v1.trainable_variables()])
    types = {op.type for op in graph.get_operations()}
    assert "MatMul" in types and "Conv2D" in types and "Conv2DBackpropInput" in types
    assert "Conv2DBackpropFilter" not in types
