"""Data sets for dcgan-tf1: MNIST, Fashion-MNIST, CIFAR-10 and folders of one's own images (folder.py) as
uint8 NHWC arrays.

Only numpy, tqdm, the standard library (and Pillow, for image folders) are used here, so loading data
never imports TensorFlow. Search order for every named data set: the ``data_dir`` argument,
``$DCGAN_DATA_DIR``, the Keras cache (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``), the Debian
package location (Fashion-MNIST only), then a checksum-verified download into the Keras cache (base URL
overridable with ``$DCGAN_MIRROR``).
"""

from common.data.cifar import CIFAR10_CLASSES, load_cifar10, resolve_cifar_class
from common.data.errors import DataError
from common.data.folder import FOLDER_DATASETS, folder_dataset, is_folder_dataset, load_image_folder
from common.data.locate import ImageSet
from common.data.mnist import MNIST_DATASETS, load_mnist

__all__ = [
    "CIFAR10_CLASSES",
    "FOLDER_DATASETS",
    "MNIST_DATASETS",
    "DataError",
    "ImageSet",
    "folder_dataset",
    "is_folder_dataset",
    "load_cifar10",
    "load_image_folder",
    "load_mnist",
    "resolve_cifar_class",
]
