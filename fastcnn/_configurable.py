"""``Configurable``: the Keras config protocol shared by initializers, regularizers
and schedules — ``get_config()`` returns the constructor arguments,
``from_config(config) = cls(**config)``, and two objects are equal when their
types and configs are."""

from __future__ import annotations

__all__ = ["Configurable"]


class Configurable:
    """Mixin: subclasses list their constructor arguments in ``_config_keys``."""

    _config_keys: tuple[str, ...] = ()

    def get_config(self) -> dict:
        return {key: getattr(self, key) for key in self._config_keys}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
