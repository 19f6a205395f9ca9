"""Tools over the library: diagnostics, gradient checks, plots, the kernel checker
(:mod:`fastcnn.testing`), ``verify``, ``config`` and the ``bench`` speed instrument.

Each tool module is imported on its own; this package imports none of them."""
