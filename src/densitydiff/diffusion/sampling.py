"""How a diffusion model is sampled: the sampler, its number of steps, the x0 clipping bounds.

`SAMPLERS` is the one list of sampler names (aliases in `ALIASES`); every caller that takes a
sampler name from a user resolves it here, so a name is spelled and checked in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from densitydiff.errors import InputError

SAMPLERS = ("ddpm", "ddim", "dpmsolver++")
"""ddpm: ancestral (Ho et al. Alg. 2, all T steps); ddim: eta = 0; dpmsolver++: 2nd order."""
ALIASES = {"dpmpp": "dpmsolver++"}
HELP = " | ".join(SAMPLERS) + "".join(f" ({a} = {n})" for a, n in ALIASES.items())
"""The sampler names for --help texts."""


def sampler_name(name: str) -> str:
    """The canonical name of a sampler or its alias; InputError for anything else."""
    name = ALIASES.get(str(name), str(name))
    if name not in SAMPLERS:
        choices = ", ".join([*SAMPLERS, *ALIASES])
        raise InputError(f"unknown sampler {name!r}: use one of {choices}")
    return name


def check_steps(steps: int | None) -> int | None:
    """Steps as an int (None stays None: the model's own); InputError below 1."""
    if steps is None:
        return None
    if int(steps) < 1:
        raise InputError(f"steps must be at least 1, got {steps}")
    return int(steps)


@dataclass(frozen=True)
class Sampling:
    """A resolved sampling recipe: sampler name, steps (ignored by ddpm), clip_x0 or None, and
    whether draws come in antithetic pairs (`antithetic_noise`)."""

    sampler: str = "dpmsolver++"
    steps: int = 20
    clip_x0: tuple[float, float] | None = None
    antithetic: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "sampler", sampler_name(self.sampler))
        object.__setattr__(self, "steps", check_steps(self.steps))
        if self.clip_x0 is not None:
            lo, hi = (float(v) for v in self.clip_x0)
            if not lo < hi:
                raise InputError(f"clip_x0 needs lo < hi, got {self.clip_x0}")
            object.__setattr__(self, "clip_x0", (lo, hi))

    def describe(self) -> str:
        """The recipe in words (clipping aside), e.g. "ddim with 4 steps, independent draws"."""
        draws = "antithetic" if self.antithetic else "independent"
        return f"{self.sampler} with {self.steps} steps, {draws} draws"

    def as_dict(self) -> dict:
        """{"sampler", "steps", "clip_x0", "antithetic"}, for run records."""
        return {"sampler": self.sampler, "steps": self.steps, "clip_x0": self.clip_x0,
                "antithetic": self.antithetic}  # fmt: skip


def antithetic_noise(generators, antithetic: bool):
    """(generator, noise sign) for each draw. Antithetic variates (Hammersley & Morton 1956):
    draw 2j+1 replays draw 2j's generator with every noise value negated (its own generator is
    unused), so each draw is still a sample of the model while the part of the pair's mean that
    is odd in the noise cancels; the mean of S draws then keeps far less than 1/S of the
    sampling variance. Off: each draw its own generator, sign +1."""
    import torch

    first = None
    for s, g in enumerate(generators):
        if antithetic and s % 2:
            if first is None:
                raise ValueError("antithetic draws need a generator per draw")
            yield torch.Generator(device=first.device).set_state(first.get_state()), -1.0
            continue
        first = None
        if antithetic and g is not None:
            first = torch.Generator(device=g.device).set_state(g.get_state())
        yield g, 1.0
