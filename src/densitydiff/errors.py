"""The one exception type for problems a user caused (bad file, wrong shape, bad value).

The CLI prints its message as one line on stderr and exits with status 2; library callers
catch it like any ValueError.
"""


class InputError(ValueError):
    """Bad user input: a missing or corrupt file, a wrong shape, NaNs, mismatched grids, ..."""
