"""A run watching itself: collapse stretches found in its history, and its best evaluation so far.

Collapse, as this project detects it (thresholds measured in docs/comparison.md):
- D(G(z)) (history.csv's d_fake, a mean over each logged window) at or below DFAKE_LOW, or at or above
  DFAKE_HIGH, for at least SUSTAINED_STEPS steps in a row: the discriminator has won (or lost)
  outright, and the generator's samples stop changing for the better;
- or a tracked FID above the noise ceiling of the same evaluation: the samples are worse than noise.
Pure functions over history rows, so the loop, the run's summary and common.compare share them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

DFAKE_LOW = 0.02
DFAKE_HIGH = 0.98
SUSTAINED_STEPS = 200


class Stretch(NamedTuple):
    """Steps first..last (logged steps) during which the run was collapsed, and why."""

    first: int
    last: int
    reason: str  # "D(G(z)) <= 0.02", "D(G(z)) >= 0.98" or "FID above the noise ceiling"

    def describe(self) -> str:
        return f"steps {self.first}-{self.last}: {self.reason}"


def worse_than_noise(row: Mapping[str, float], noise_fid: float | None) -> bool:
    """Whether the row's tracked FID is above the noise ceiling of the same evaluation."""
    fid = row.get("fid")
    return fid is not None and noise_fid is not None and fid > noise_fid


def collapsed(row: Mapping[str, float], noise_fid: float | None = None) -> str | None:
    """Why one history row looks collapsed on its own (None: it does not); not yet a sustained stretch."""
    d_fake = row.get("d_fake")
    if d_fake is not None and d_fake <= DFAKE_LOW:
        return f"D(G(z)) <= {DFAKE_LOW}"
    if d_fake is not None and d_fake >= DFAKE_HIGH:
        return f"D(G(z)) >= {DFAKE_HIGH}"
    if worse_than_noise(row, noise_fid):
        return "FID above the noise ceiling"
    return None


def collapse_stretches(rows: Iterable[Mapping[str, float]], noise_fid: float | None = None) -> list[Stretch]:
    """The sustained collapse stretches of a history: D(G(z)) ones lasting SUSTAINED_STEPS or more, and
    every evaluation above the noise ceiling (one evaluation is already a verdict)."""
    stretches: list[Stretch] = []
    current: list[int] = []
    reason = None

    def close() -> None:
        if current and current[-1] - current[0] >= SUSTAINED_STEPS:
            stretches.append(Stretch(current[0], current[-1], reason or ""))

    for row in rows:
        step = int(row["step"])
        if worse_than_noise(row, noise_fid):
            stretches.append(Stretch(step, step, "FID above the noise ceiling"))
        why = collapsed({"d_fake": row.get("d_fake")})
        if why and why == reason:
            current.append(step)
            continue
        close()
        current, reason = ([step], why) if why else ([], None)
    close()
    return sorted(stretches)


class CollapseWatch:
    """Fed the logged rows one by one while training; says once when a stretch becomes sustained."""

    def __init__(self, noise_fid: float | None = None) -> None:
        self.noise_fid = noise_fid
        self.start: int | None = None
        self.reason: str | None = None
        self.announced = False
        self.worse_than_noise = False  # the last row's evaluation scored worse than noise

    def update(self, row: Mapping[str, float]) -> str | None:
        """One line the first time a collapse is sustained (or at once: an evaluation worse than noise)."""
        step = int(row["step"])
        self.worse_than_noise = worse_than_noise(row, self.noise_fid)
        if self.worse_than_noise:
            fid, noise = row["fid"], self.noise_fid
            return f"collapse at step {step}: FID {fid:.1f} is above the noise ceiling {noise:.1f}"
        why = collapsed({"d_fake": row.get("d_fake")})
        if why != self.reason:  # a stretch begins (or ends)
            self.start, self.reason, self.announced = (step if why else None), why, False
        if why and self.start is not None and not self.announced and step - self.start >= SUSTAINED_STEPS:
            self.announced = True
            return (
                f"collapse since step {self.start}: {why} for {step - self.start} steps "
                f"(D(G(z)) = {row['d_fake']:.4f}); the best checkpoint so far is kept in checkpoints/best"
            )
        return None

    def active(self) -> bool:
        """Whether the row just seen is part of a collapse: a sustained stretch, or worse than noise."""
        return self.announced or self.worse_than_noise
