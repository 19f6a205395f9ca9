"""fastcnn's version (one place; setup metadata repeats it in pyproject.toml)."""

__version__ = "0.1.0"
