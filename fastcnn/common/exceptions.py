"""Exceptions and warnings raised by fastcnn."""

__all__ = ["BackendUnavailableError", "FastCNNWarning"]


class BackendUnavailableError(ImportError):
    """An explicitly requested kernel backend cannot be used here (the message says why)."""


class FastCNNWarning(UserWarning):
    """Something worth knowing that is not an error (e.g. an implicit backend fallback)."""
