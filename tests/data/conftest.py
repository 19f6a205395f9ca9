"""Shared fixtures for the data tests: no test here may reach the network."""

import urllib.request

import pytest


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, tmp_path):
    """Disable downloads and make any accidental urlopen fail loudly."""
    monkeypatch.setenv("FASTCNN_NO_DOWNLOAD", "1")
    monkeypatch.setenv("FASTCNN_DATA", str(tmp_path / "fastcnn-data-root"))

    def refuse(*args, **kwargs):
        raise AssertionError("a data test tried to open a URL")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
