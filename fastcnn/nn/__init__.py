"""The network pieces: layers, parameters, initializers, regularizers, losses, metrics.

Builds on :mod:`fastcnn.kernels`; knows nothing of optimizers or the training loop."""
