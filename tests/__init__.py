# common's package start sets TensorFlow's oneDNN switch before TensorFlow loads, as every command does
# (common/__init__.py); test modules import TensorFlow before common, so it is imported here first.
import common  # noqa: F401
