"""Fixtures shared by the compose tests."""

from __future__ import annotations

import pytest
from testdata import OSBUILD

from .helpers import FAKE_OSBUILD


@pytest.fixture
def fake(monkeypatch):
    """``fake(mode)``: the fake osbuild's path, set to replay ``mode`` (failure, hang, ...)."""
    monkeypatch.setenv("FAKE_OSBUILD_NOTES", str(OSBUILD))

    def mode(m: str) -> str:
        monkeypatch.setenv("FAKE_OSBUILD_MODE", m)
        return str(FAKE_OSBUILD)
    return mode
