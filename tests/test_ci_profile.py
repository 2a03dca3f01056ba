"""CI must not fail by chance: under CI=true randomised tests are derandomised, with no database."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="checks the profile CI loads")
def test_ci_profile_is_derandomised():
    assert settings.default.derandomize is True
    assert settings.default.database is None
