"""The notebook's DCGAN for 28x28 grey images: MNIST and Fashion-MNIST."""
