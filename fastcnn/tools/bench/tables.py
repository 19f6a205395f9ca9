"""Markdown formatting shared by the benchmark reports (kernels, steps, epochs)."""

from __future__ import annotations

__all__ = ["fmt", "ms", "table"]


def fmt(value, spec=".2f", none="-") -> str:
    """``value`` formatted with ``spec``, or ``none`` when it is None."""
    return none if value is None else format(value, spec)


def ms(value) -> str:
    """Milliseconds with 3 significant digits (whole numbers from 100 on)."""
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def table(header, lines, out) -> None:
    """Print a markdown table (then a blank line) to ``out``."""
    print("| " + " | ".join(header) + " |", file=out)
    print("|" + "|".join("---" for _ in header) + "|", file=out)
    for line in lines:
        print("| " + " | ".join(str(c) for c in line) + " |", file=out)
    print(file=out)
