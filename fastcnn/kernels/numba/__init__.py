"""The Numba backend: ``@njit`` twins of the reference kernels.

:mod:`.backend` holds the public kernel functions; :mod:`.conv`, :mod:`.pool` and
:mod:`.norm` the jitted loops. Nothing here is imported until the backend is chosen,
so ``import fastcnn`` does not import Numba.
"""
