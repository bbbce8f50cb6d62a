"""Shared test helpers: where the real data of ../shared/data is, and a marker for tests that need it."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

needs_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "mnist").is_dir(),
    reason="real data folder ../shared/data is not beside the repository",
)
