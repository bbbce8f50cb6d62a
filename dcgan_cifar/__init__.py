"""The notebook's DCGAN for 32x32 colour images of one CIFAR-10 class (default: horse)."""
