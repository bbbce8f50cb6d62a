"""Shared parts of dcgan-tf1: layers, the GAN graph, the training loop, data, run directories."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) hides the progress bar; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow runs its CPU ops on oneDNN's kernels only where the CPU has AVX512_VNNI, AVX512_BF16 or AMX;
# elsewhere (an AMD EPYC Zen 3: AVX2 and FMA only) it falls back to its own, with which the notebook's
# step ran at half the speed (2.1x: docs/benchmarks.md, "AVX2 only"). The same float32 math either way; it
# is read when TensorFlow loads, so it is set here, before any module of the project imports it.
# TF_ENABLE_ONEDNN_OPTS=0 keeps TensorFlow's own kernels; config.json's "session" says which ran.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
