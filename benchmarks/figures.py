"""One measured figure and how a report prints it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""  # e.g. "<= 1.1x", printed beside the ratio

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline


def print_report(figures: list[Figure]) -> None:
    for fig in figures:
        line = f"   {fig.name}: {fig.value:,.2f} {fig.unit}"
        if fig.ratio is not None:
            line += (
                f"  | {fig.baseline_name}: {fig.baseline:,.2f} {fig.unit}  | ratio {fig.ratio:.2f}x"
            )
            if fig.target:
                line += f" (target {fig.target})"
        print(line, flush=True)
