"""How far a bench figure can be trusted: its spread over rounds, and the flags that withhold it.

Pure: fed the raw rounds by summary.py, or by a test. A figure is the median over rounds of a per-round
value (a ratio to the baseline round run beside it, or the CPU a request cost in that round), shown with
the lowest and highest round: `0.71 [0.66-0.74] (3 rounds)`. It is withheld, and shown as `noisy` with
the reason, when:

- a round lost more than STEAL_LIMIT of the machine's CPU to other tenants (steal time): that round, and
  the ratio it takes part in, are dropped;
- fewer than MIN_ROUNDS rounds are left: one round has no spread, so nothing says how far it is off (the
  quick bench is a smoke test for this reason);
- the rounds left disagree by more than SPREAD_LIMIT of their median.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

# A round that lost more than 5 % of the machine's CPU to other tenants ran on about that much less CPU than
# its twin may have had: its ratio moves by about as much, half the tenth by which the README's strategies
# differ (README: What does each strategy cost?).
STEAL_LIMIT = 0.05
MIN_ROUNDS = 2
# Rounds that disagree by more than a fifth of their median cannot tell apart strategies that differ by a
# tenth or a fifth (the differences the README discusses); a shared 2-core host reached 0.64 to 0.82 for the
# same code in separate runs.
SPREAD_LIMIT = 0.20


@dataclass(frozen=True)
class Spread:
    """The median of per-round values and the range of the rounds."""

    median: float
    low: float
    high: float
    rounds: int

    @classmethod
    def of(cls, values: list[float], digits: int = 3) -> Spread:
        return cls(round(statistics.median(values), digits), round(min(values), digits), round(max(values), digits),
                   len(values))

    @property
    def relative(self) -> float:
        """The range of the rounds as a share of their median."""
        return (self.high - self.low) / self.median if self.median else float("inf")

    def text(self, digits: int = 2) -> str:
        return f"{self.median:.{digits}f} [{self.low:.{digits}f}-{self.high:.{digits}f}] ({self.rounds} rounds)"


@dataclass(frozen=True)
class Figure:
    """A figure over rounds: its spread (None when no round was left), and why it is withheld (None: trusted)."""

    spread: Spread | None
    noisy: str | None

    @property
    def value(self) -> float | None:
        """The median, only when it can be trusted."""
        return self.spread.median if self.spread and not self.noisy else None

    def text(self, digits: int = 2) -> str:
        if self.noisy:
            return f"noisy: {self.noisy}"
        return self.spread.text(digits)

    def as_json(self) -> dict:
        return {"spread": asdict(self.spread) if self.spread else None, "noisy": self.noisy}


def noisy_round(row: dict) -> bool:
    """Did other tenants take so much of the machine during this round that it says little? (Rounds recorded
    before the bench read steal time count as clean.)"""
    return row.get("steal", 0.0) > STEAL_LIMIT


def judge(values: list[float], dropped: int = 0, digits: int = 3) -> Figure:
    """The figure of per-round `values` (the clean rounds), `dropped` rounds having been left out for steal."""
    spread = Spread.of(values, digits) if values else None
    why_dropped = f", {dropped} dropped for steal time above {STEAL_LIMIT:.0%}" if dropped else ""
    if len(values) < MIN_ROUNDS:
        return Figure(spread, f"{len(values)} round(s) left{why_dropped}: no spread to judge by")
    if spread.relative > SPREAD_LIMIT:
        return Figure(spread, f"rounds range {spread.low:g}-{spread.high:g}, more than {SPREAD_LIMIT:.0%} of "
                              f"their median {spread.median:g}{why_dropped}")
    return Figure(spread, None)


def per_round(rows: list[dict], value) -> Figure:
    """The figure of value(row) over `rows`, leaving out the rounds with too much steal time."""
    clean = [row for row in rows if not noisy_round(row)]
    values = [v for v in map(value, clean) if v is not None]
    return judge(values, dropped=len(rows) - len(clean))


def paired(pairs: list[tuple[dict, dict]], value) -> Figure:
    """The figure of value(round) / value(its baseline twin) over (round, twin) pairs, leaving out a pair when
    either round had too much steal time."""
    clean = [(mine, twin) for mine, twin in pairs if not (noisy_round(mine) or noisy_round(twin))]
    ratios = [value(mine) / value(twin) for mine, twin in clean if value(twin) and value(mine) is not None]
    return judge(ratios, dropped=len(pairs) - len(clean))
