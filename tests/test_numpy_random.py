"""numpy's default_rng([seed, stream]) as TensorFlow ops (common.numpy_random): the very bits of numpy's
PCG64, its uniform doubles and its bounded integers; and `sample`'s noise drawn with them
(common.streams.latent_noise), which an exported SavedModel draws too."""

import numpy as np
import pytest
import tensorflow as tf

from common import numpy_random
from common.config import Config
from common.streams import SAMPLE_STREAM, latent_noise, sample_noise

v1 = tf.compat.v1


@pytest.fixture(scope="module")
def session():
    graph = tf.Graph()
    with graph.as_default():
        seed = v1.placeholder(tf.int64, [])
        count = v1.placeholder(tf.int64, [])
        n = v1.placeholder(tf.int64, [])
        raw = numpy_random.default_rng_raw(seed, SAMPLE_STREAM, count)
        ops = {
            "raw": raw,
            "uniform": tf.cast(numpy_random.uniform_doubles(raw, -1.0, 1.0), tf.float32),
            # a bound whose rejection zone is 30% of the 32-bit draws: the rejections are exercised
            "integers": numpy_random.bounded_integers(raw, 3_000_000_001, n),
            "integers10": numpy_random.bounded_integers(raw, 10, n),
        }
    with v1.Session(graph=graph) as sess:
        yield lambda name, **feeds: sess.run(
            ops[name], {seed: feeds["seed"], count: feeds["count"], n: feeds.get("n", 0)}
        )


SEEDS = [0, 1, 7, 2**31 - 1, 2**32 - 1, 2**32, 2**40 + 3, 2**63 - 1]  # one entropy word, and two


@pytest.mark.parametrize("seed", SEEDS)
def test_raw_draws_are_numpys(session, seed):
    for count in (1, 2, 3, 1000, 1025):
        expected = np.random.default_rng([seed, SAMPLE_STREAM]).bit_generator.random_raw(count)
        np.testing.assert_array_equal(session("raw", seed=seed, count=count), expected)
    assert session("raw", seed=seed, count=0).shape == (0,)


@pytest.mark.parametrize("seed", [0, 3, 2**33])
def test_uniform_noise_is_numpys_bit_for_bit(session, seed):
    expected = np.random.default_rng([seed, SAMPLE_STREAM]).uniform(-1.0, 1.0, 6400).astype(np.float32)
    np.testing.assert_array_equal(session("uniform", seed=seed, count=6400), expected)


@pytest.mark.parametrize("seed", [0, 5, 11])
def test_bounded_integers_are_numpys_rejections_included(session, seed):
    rng = np.random.default_rng([seed, SAMPLE_STREAM])
    expected = rng.integers(0, 3_000_000_001, 20)
    words = (20 + numpy_random.SPARE_CODE_WORDS + 1) // 2  # what latent_noise draws for 20 codes
    got = session("integers", seed=seed, count=words, n=20)
    np.testing.assert_array_equal(got, expected)
    expected10 = np.random.default_rng([seed, SAMPLE_STREAM]).integers(0, 10, 50)
    np.testing.assert_array_equal(session("integers10", seed=seed, count=41, n=50), expected10)


def test_too_many_rejections_raise_rather_than_give_other_numbers(session):
    with pytest.raises(tf.errors.InvalidArgumentError, match="too many rejected"):
        session("integers", seed=0, count=12, n=20)  # 24 halves, ~30% rejected: fewer than 20 accepted


@pytest.mark.parametrize(
    "config",
    [Config(), Config(info_codes=10), Config(noise_dim=3, info_codes=7)],
    ids=["uniform", "uniform+codes", "small+codes"],
)
def test_sample_noise_in_the_graph_is_numpys(config):
    """`sample` draws its noise in the graph: for uniform noise, sample_noise's numbers exactly."""
    graph = tf.Graph()
    with graph.as_default():
        n, seed = v1.placeholder(tf.int32, []), v1.placeholder(tf.int64, [])
        z = latent_noise(config, n, seed)
    with v1.Session(graph=graph) as sess:
        for rows, s in ((1, 0), (64, 7), (333, 2**35)):
            np.testing.assert_array_equal(sess.run(z, {n: rows, seed: s}), sample_noise(config, rows, s))
        with pytest.raises(tf.errors.InvalidArgumentError, match="non-negative"):
            sess.run(z, {n: 2, seed: -1})


def test_normal_noise_in_the_graph_is_tensorflows_stateless_normal():
    config = Config(noise="normal", info_codes=4)
    graph = tf.Graph()
    with graph.as_default():
        z = latent_noise(config, tf.constant(2000), tf.constant(3, tf.int64))
        again = latent_noise(config, tf.constant(2000), tf.constant(3, tf.int64))
        other = latent_noise(config, tf.constant(2000), tf.constant(4, tf.int64))
    with v1.Session(graph=graph) as sess:
        z, again, other = sess.run([z, again, other])
    np.testing.assert_array_equal(z, again)
    assert not np.array_equal(z, other)
    noise, codes = z[:, :100], z[:, 100:]
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 1) < 0.01
    assert set(codes.sum(axis=1)) == {1.0} and codes.argmax(axis=1).min() == 0
