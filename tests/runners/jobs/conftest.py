"""The world the cache-reading job tests share, built once per session."""

from __future__ import annotations

import pytest
from world import build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world"))
