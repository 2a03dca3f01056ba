"""The split of a store by structure: train, val, test, the same on every shard and machine."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from densitydiff.errors import InputError


def stable_hash(*parts: object) -> int:
    """A 64-bit integer from the parts, the same on every machine and Python run."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def assign_splits(
    ids: Sequence[str],
    seed: int,
    val_fraction: float,
    test_fraction: float,
    held_out: Sequence[str] = (),
) -> dict[str, str]:
    """Split by structure: held-out ids go to test, the rest in a seeded order to test/val/train.

    The order comes from a hash of (seed, id), so every shard computes the same split.
    """
    missing = sorted(set(held_out) - set(ids))
    if missing:
        raise InputError(f"--held-out names structures that are not given: {', '.join(missing)}")
    n = len(ids)
    n_test = max(round(test_fraction * n), len(held_out))
    n_val = round(val_fraction * n)
    if n - n_test - n_val < 1:
        raise InputError(
            f"{n} structures leave none to train on with {n_test} test and {n_val} validation"
        )
    held = sorted(held_out)
    rest = sorted((s for s in ids if s not in set(held)), key=lambda s: stable_hash(seed, s))
    order = held + rest
    return {
        s: ("test" if k < n_test else "val" if k < n_test + n_val else "train")
        for k, s in enumerate(order)
    }
