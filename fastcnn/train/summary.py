"""Keras' ``summary()`` table, shared by ``Sequential`` and the functional ``Model``."""

from __future__ import annotations

__all__ = ["summary_table"]


def summary_table(name: str, rows, trainable: int, frozen: int, connected: bool) -> str:
    """``rows``: ``(layer (type), output shape, params[, connected to])`` tuples.

    Columns: Layer (type) | Output Shape | Param # (| Connected to, for graphs).
    """
    longest = max((len(r[0]) for r in rows), default=0)
    widths = [max(33, longest + 3), 26, 12] + ([30] if connected else [])
    heads = [" Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if connected
                                                            else [])

    def row(*cells):
        return "".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    lines = [f'Model: "{name}"', "_" * sum(widths), row(*heads), "=" * sum(widths)]
    for r in rows:
        lines.append(row(f" {r[0]}", r[1], f"{r[2]:,}", *r[3:]))
    lines += ["=" * sum(widths), f"Total params: {trainable + frozen:,}",
              f"Trainable params: {trainable:,}", f"Non-trainable params: {frozen:,}",
              "_" * sum(widths)]
    return "\n".join(lines)
