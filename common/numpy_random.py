"""numpy's `np.random.default_rng([seed, stream])` as TensorFlow ops, bit for bit: what lets a SavedModel
(common/export.py) draw the very noise `sample` draws, without numpy and without this project.

numpy's default generator is PCG64 seeded through a SeedSequence; both are integer arithmetic, so they
can be written in TensorFlow's uint64 ops and give the same bits on any machine:

- SeedSequence: the entropy words (the seed's 32-bit words, then the stream's) hashed into a pool of four
  32-bit words, then eight 32-bit words drawn from the pool (numpy's bit_generator.pyx: hashmix, mix).
- PCG64: a 128-bit LCG (state * MULTIPLIER + increment, mod 2^128) with the XSL-RR output (high ^ low
  64 bits, rotated right by the state's top 6 bits). The 128-bit numbers are (high, low) pairs of uint64
  tensors. Draw k needs the state after k + 1 steps: instead of k sequential steps, the states are made
  in parallel by doubling (states [0, L) -> [L, 2L) by one jump of L steps: x -> A^L x + inc G_L, where
  A^L and G_L = 1 + A + ... + A^(L-1) are constants of the multiplier).
- `uniform(low, high)` in float64: `low + (high - low) * ((u64 >> 11) * 2^-53)`, exactly as numpy
  (an exact integer-to-double conversion and two correctly rounded operations; the cast to float32 rounds
  to nearest, as numpy's astype).
- `integers(0, K, n)`: Lemire's bounded method on 32-bit draws, which numpy takes as the low then the high
  half of each 64-bit draw. A draw is rejected when its product's low word is below (2^32 - K) mod K
  (probability below K / 2^32); the ops draw 32 spare words for that and raise InvalidArgumentError in
  the astronomically unlikely case that more were rejected, rather than give other numbers.

Only numpy's uniform noise and integer codes are written here: numpy's normal draws use a ziggurat with
floating-point tables and libm's exp and log1p, which no TensorFlow op reproduces bit for bit.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

MASK32 = 0xFFFFFFFF
MASK64 = (1 << 64) - 1
MASK128 = (1 << 128) - 1
# numpy's SeedSequence constants (numpy/random/bit_generator.pyx)
INIT_A, MULT_A, INIT_B, MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
MIX_MULT_L, MIX_MULT_R, XSHIFT, POOL_SIZE = 0xCA01F9DD, 0x4973F715, 16, 4
# PCG64's multiplier (PCG_DEFAULT_MULTIPLIER_128)
MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645
MAX_DOUBLINGS = 48  # draws per call below 2^48
SPARE_CODE_WORDS = 32  # 32-bit draws beyond one per code, for Lemire's rejections


def _u64(value: int) -> tf.Tensor:
    return tf.constant(value, tf.uint64)


# ------------------------------------------------------------------------- 32-bit words (SeedSequence)
def _mul32(a: tf.Tensor, b: tf.Tensor | int) -> tf.Tensor:
    """(a * b) mod 2^32 of values below 2^32 held in uint64 (their product fits)."""
    return tf.bitwise.bitwise_and(a * (_u64(b) if isinstance(b, int) else b), _u64(MASK32))


def _xorshift(value: tf.Tensor) -> tf.Tensor:
    return tf.bitwise.bitwise_xor(value, tf.bitwise.right_shift(value, _u64(XSHIFT)))


class _HashConst:
    """SeedSequence's running hash constant, a Python int: it depends on no input."""

    def __init__(self, value: int) -> None:
        self.value = value

    def hashmix(self, value: tf.Tensor) -> tf.Tensor:
        value = tf.bitwise.bitwise_xor(value, _u64(self.value))
        self.value = (self.value * MULT_A) & MASK32
        return _xorshift(_mul32(value, self.value))


def _mix(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    # (MIX_MULT_L * x - MIX_MULT_R * y) mod 2^32; + 2^32 keeps the uint64 difference non-negative
    difference = _mul32(x, MIX_MULT_L) + _u64(1 << 32) - _mul32(y, MIX_MULT_R)
    return _xorshift(tf.bitwise.bitwise_and(difference, _u64(MASK32)))


def seed_sequence_words(entropy: list[tf.Tensor], n_words: int) -> list[tf.Tensor]:
    """numpy's SeedSequence(entropy).generate_state(n_words, uint32), entropy a list of 32-bit words
    (uint64 scalars below 2^32; its length is static)."""
    hash_const = _HashConst(INIT_A)
    zero = _u64(0)
    pool = [hash_const.hashmix(entropy[i] if i < len(entropy) else zero) for i in range(POOL_SIZE)]
    for i_src in range(POOL_SIZE):
        for i_dst in range(POOL_SIZE):
            if i_src != i_dst:
                pool[i_dst] = _mix(pool[i_dst], hash_const.hashmix(pool[i_src]))
    for i_src in range(POOL_SIZE, len(entropy)):
        for i_dst in range(POOL_SIZE):
            pool[i_dst] = _mix(pool[i_dst], hash_const.hashmix(entropy[i_src]))
    words, constant = [], INIT_B
    for i in range(n_words):
        value = tf.bitwise.bitwise_xor(pool[i % POOL_SIZE], _u64(constant))
        constant = (constant * MULT_B) & MASK32
        words.append(_xorshift(_mul32(value, constant)))
    return words


def seed_words(seed: tf.Tensor) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
    """A non-negative int64 seed as numpy's entropy words: [low] below 2^32, else [low, high]."""
    seed = tf.cast(seed, tf.uint64)
    return [tf.bitwise.bitwise_and(seed, _u64(MASK32))], [
        tf.bitwise.bitwise_and(seed, _u64(MASK32)),
        tf.bitwise.right_shift(seed, _u64(32)),
    ]


# ------------------------------------------------------------------------------- 128-bit arithmetic
U128 = tuple[tf.Tensor, tf.Tensor]  # (high, low) uint64 halves


def _split(value: int) -> U128:
    return _u64(value >> 64), _u64(value & MASK64)


def _mul128(a: U128, b: U128) -> U128:
    """a * b mod 2^128."""
    (a_hi, a_lo), (b_hi, b_lo) = a, b
    mask, shift = _u64(MASK32), _u64(32)
    a0, a1 = tf.bitwise.bitwise_and(a_lo, mask), tf.bitwise.right_shift(a_lo, shift)
    b0, b1 = tf.bitwise.bitwise_and(b_lo, mask), tf.bitwise.right_shift(b_lo, shift)
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    middle = (
        tf.bitwise.right_shift(p00, shift)
        + tf.bitwise.bitwise_and(p01, mask)
        + tf.bitwise.bitwise_and(p10, mask)
    )
    high = (
        p11
        + tf.bitwise.right_shift(p01, shift)
        + tf.bitwise.right_shift(p10, shift)
        + tf.bitwise.right_shift(middle, shift)
    )
    return high + a_hi * b_lo + a_lo * b_hi, a_lo * b_lo


def _add128(a: U128, b: U128) -> U128:
    low = a[1] + b[1]
    carry = tf.cast(low < a[1], tf.uint64)
    return a[0] + b[0] + carry, low


def _jump_constants() -> tuple[list[int], list[int]]:
    """MULTIPLIER^(2^b) and 1 + MULTIPLIER + ... + MULTIPLIER^(2^b - 1), mod 2^128, b < MAX_DOUBLINGS."""
    powers, sums = [MULTIPLIER], [1]
    for _ in range(MAX_DOUBLINGS - 1):
        powers.append(powers[-1] * powers[-1] & MASK128)
        sums.append((sums[-1] * (1 + powers[-2])) & MASK128)
    return powers, sums


def _table(values: list[int]) -> tuple[tf.Tensor, tf.Tensor]:
    # through numpy's uint64: a list of Python ints above 2^63 would otherwise pass through float64
    return tuple(
        tf.constant(np.array(part, dtype=np.uint64))
        for part in ([v >> 64 for v in values], [v & MASK64 for v in values])
    )


# ------------------------------------------------------------------------------------------- PCG64
def pcg64_seed(words: list[tf.Tensor]) -> tuple[U128, U128]:
    """PCG64's (state, increment) seeded with eight SeedSequence words, as numpy seeds it: initstate =
    words 0-3 and initseq = words 4-7, each as two uint64 (the first the high half); increment =
    2 initseq + 1; state = (increment + initstate) * MULTIPLIER + increment (one step from 0, the
    initstate added, one more step)."""
    w64 = [
        tf.bitwise.bitwise_or(words[2 * i], tf.bitwise.left_shift(words[2 * i + 1], _u64(32)))
        for i in range(4)
    ]
    init_state, init_seq = (w64[0], w64[1]), (w64[2], w64[3])
    increment = (
        tf.bitwise.bitwise_or(
            tf.bitwise.left_shift(init_seq[0], _u64(1)), tf.bitwise.right_shift(init_seq[1], _u64(63))
        ),
        tf.bitwise.bitwise_or(tf.bitwise.left_shift(init_seq[1], _u64(1)), _u64(1)),
    )
    multiplier = _split(MULTIPLIER)
    state = increment  # 0 * MULTIPLIER + inc
    state = _add128(state, init_state)
    state = _add128(_mul128(state, multiplier), increment)
    return state, increment


def _output(state: U128) -> tf.Tensor:
    """XSL-RR: (high ^ low) rotated right by the top 6 bits of the state."""
    value = tf.bitwise.bitwise_xor(state[0], state[1])
    rotation = tf.bitwise.right_shift(state[0], _u64(58))
    left = tf.bitwise.bitwise_and(_u64(64) - rotation, _u64(63))
    return tf.bitwise.bitwise_or(tf.bitwise.right_shift(value, rotation), tf.bitwise.left_shift(value, left))


def pcg64_raw(state: U128, increment: U128, count: tf.Tensor) -> tf.Tensor:
    """The first `count` 64-bit draws from a seeded state (numpy's bit_generator.random_raw): uint64."""
    powers, sums = _jump_constants()
    power_hi, power_lo = _table(powers)
    sum_hi, sum_lo = _table(sums)
    count = tf.cast(count, tf.int64)
    first = _add128(_mul128(state, _split(MULTIPLIER)), increment)  # the state of draw 0
    states = (tf.reshape(first[0], [1]), tf.reshape(first[1], [1]))

    def double(b: tf.Tensor, high: tf.Tensor, low: tf.Tensor):
        # states [0, 2^b) -> [0, 2^(b+1)): each jumped 2^b steps ahead, x -> A x + inc G
        jump = (power_hi[b], power_lo[b])
        offset = _mul128(increment, (sum_hi[b], sum_lo[b]))
        ahead = _add128(_mul128((high, low), jump), offset)
        return b + 1, tf.concat([high, ahead[0]], 0), tf.concat([low, ahead[1]], 0)

    _, high, low = tf.while_loop(
        lambda b, high, low: tf.shape(high, out_type=tf.int64)[0] < count,
        double,
        (tf.constant(0), *states),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None]), tf.TensorShape([None])),
        maximum_iterations=MAX_DOUBLINGS,
    )
    return _output((high[:count], low[:count]))


def default_rng_raw(seed: tf.Tensor, stream: int, count: tf.Tensor) -> tf.Tensor:
    """`np.random.default_rng([seed, stream]).bit_generator.random_raw(count)` for an int64 seed >= 0."""
    short, long = seed_words(seed)
    stream_word = _u64(stream)
    states = [pcg64_seed(seed_sequence_words([*words, stream_word], 8)) for words in (short, long)]
    below = tf.equal(long[1], _u64(0))  # numpy gives a seed below 2^32 one word, a larger one two
    state = tuple(tf.where(below, a, b) for a, b in zip(states[0][0], states[1][0], strict=True))
    increment = tuple(tf.where(below, a, b) for a, b in zip(states[0][1], states[1][1], strict=True))
    return pcg64_raw(state, increment, count)


# ----------------------------------------------------------------------------------- distributions
def uniform_doubles(raw: tf.Tensor, low: float, high: float) -> tf.Tensor:
    """numpy's Generator.uniform(low, high) of 64-bit draws: float64."""
    unit = tf.cast(tf.bitwise.right_shift(raw, _u64(11)), tf.float64) * (1.0 / 9007199254740992.0)
    return tf.constant(low, tf.float64) + tf.constant(high - low, tf.float64) * unit


def bounded_integers(raw: tf.Tensor, bound: int, n: tf.Tensor) -> tf.Tensor:
    """numpy's Generator.integers(0, bound, n) (bound < 2^32) from the 64-bit draws `raw` that follow
    the draws before it: each split into its low and high 32-bit halves, Lemire's method on them. int64
    [n]; InvalidArgumentError if `raw` holds too few accepted draws."""
    halves = tf.stack([tf.bitwise.bitwise_and(raw, _u64(MASK32)), tf.bitwise.right_shift(raw, _u64(32))], 1)
    products = tf.reshape(halves, [-1]) * _u64(bound)
    threshold = ((1 << 32) - bound) % bound
    accepted = tf.bitwise.bitwise_and(products, _u64(MASK32)) >= _u64(threshold)
    values = tf.boolean_mask(tf.bitwise.right_shift(products, _u64(32)), accepted)
    n = tf.cast(n, tf.int64)
    check = tf.debugging.assert_greater_equal(
        tf.shape(values, out_type=tf.int64)[0], n, message="too many rejected draws for the codes"
    )
    with tf.control_dependencies([check]):
        return tf.cast(values[:n], tf.int64)


def code_words(n: tf.Tensor) -> tf.Tensor:
    """How many 64-bit draws `bounded_integers` needs for n codes: one 32-bit half per code and spares."""
    return (tf.cast(n, tf.int64) + SPARE_CODE_WORDS + 1) // 2
