"""Shared parts of dcgan-tf1: layers, the GAN graph, the training loop, data, run directories."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) hides the progress bar; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
