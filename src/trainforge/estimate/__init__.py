"""``trainforge estimate``: parameters, peak memory, measured speed and fit of a config before training it.

See docs/estimate.md. ``trainforge.sdk.estimate`` is the entry point; ``plan.estimate`` does the work.
"""

from trainforge.estimate.result import Alternative, Estimate, Memory, Speed

__all__ = ["Alternative", "Estimate", "Memory", "Speed"]
