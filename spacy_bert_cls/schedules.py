"""The learning-rate schedule of the shipped training configs.

thinc's `warmup_linear.v1` takes its warm-up and its total in steps, so a config that says
`total_steps = 20000` keeps decaying over 20,000 steps when a user shortens the run with
`--training.max_steps 30` (the rate stays near 0 and nothing is learnt). This one takes the
warm-up as a fraction of the total, and the configs tie the total to
`${training.max_steps}`: one override shortens the whole schedule.
"""
from typing import Iterable

from thinc.api import warmup_linear


def warmup_linear_fraction_v1(initial_rate: float, total_steps: int, warmup_fraction: float) -> Iterable[float]:
    """Rise linearly to `initial_rate` over the first `warmup_fraction` of `total_steps`,
    then fall linearly to 0 at `total_steps` (thinc's warmup_linear, with the warm-up
    `round(warmup_fraction * total_steps)` steps)."""
    if not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1:
        raise ValueError(f"[training.optimizer.learn_rate] total_steps must be a whole number of steps, at least 1, "
                         f"got {total_steps!r}: it is ${{training.max_steps}} in the shipped configs, so set "
                         f"training.max_steps (0, 'no limit', needs an explicit total_steps here)")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"[training.optimizer.learn_rate] warmup_fraction must be in [0, 1), got {warmup_fraction!r}")
    return warmup_linear(initial_rate, round(warmup_fraction * total_steps), total_steps)
