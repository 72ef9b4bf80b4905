"""The learning-rate schedule of the shipped training configs.

thinc's `warmup_linear.v1` takes its warm-up and its total in steps, so a config that says
`total_steps = 20000` keeps decaying over 20,000 steps when a user shortens the run with
`--training.max_steps 30` (the rate stays near 0 and nothing is learnt). This one takes the
warm-up as a fraction of the total, and the configs tie the total to
`${training.max_steps}`: one override shortens the whole schedule.
"""
from typing import Iterable, Union

from thinc.api import warmup_linear

# spaCy's Language.create_optimizer (nlp.initialize() without sgd, nlp.resume_training())
# resolves [training.optimizer] from nlp.config as it is, without interpolating it: the
# schedule then gets the reference itself, and says what to do instead.
E_NOT_INTERPOLATED = (
    "[training.optimizer.learn_rate] total_steps is {value!r}, not a number. If you set "
    "--training.max_steps, give it a whole number. Otherwise spaCy did not fill the reference in: "
    "`spacy debug data` / `debug model` and nlp.create_optimizer() (which nlp.initialize() without "
    "sgd and nlp.resume_training() call) read the config without interpolating it. For the debug "
    "commands add --training.optimizer.learn_rate.total_steps 1000; in code, make the optimizer from "
    "the interpolated config and pass it: "
    "optimizer = spacy.util.registry.resolve(nlp.config.interpolate()[\"training\"])[\"optimizer\"]; "
    "nlp.initialize(get_examples, sgd=optimizer) (spacy train does this itself)"
)


def warmup_linear_fraction_v1(initial_rate: float, total_steps: Union[int, str],
                              warmup_fraction: float) -> Iterable[float]:
    """Rise linearly to `initial_rate` over the first `warmup_fraction` of `total_steps`,
    then fall linearly to 0 at `total_steps` (thinc's warmup_linear, with the warm-up
    `round(warmup_fraction * total_steps)` steps)."""
    if isinstance(total_steps, str):
        raise ValueError(E_NOT_INTERPOLATED.format(value=total_steps))
    if not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1:
        raise ValueError(f"[training.optimizer.learn_rate] total_steps must be a whole number of steps, at least 1, "
                         f"got {total_steps!r}: it is ${{training.max_steps}} in the shipped configs, so set "
                         f"training.max_steps (0, 'no limit', needs an explicit total_steps here)")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"[training.optimizer.learn_rate] warmup_fraction must be in [0, 1), got {warmup_fraction!r}")
    return warmup_linear(initial_rate, round(warmup_fraction * total_steps), total_steps)
