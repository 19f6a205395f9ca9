"""Cython wrappers over the C kernels in ``csrc/`` (see ``_kernels.pyx``).

The compiled module ``_kernels`` exists only when the extension was built
(``pip install .`` with a C compiler); :mod:`fastcnn.kernels.cython_backend`
imports it and raises ``ImportError`` when it is missing.
"""
