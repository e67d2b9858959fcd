"""Fixtures for framework tests: an in-test reference store."""

from __future__ import annotations

import pytest

from jwpipe.stpipe import refstore


class DictStore:
    """A minimal store: one file per reference type, whatever the dataset."""

    def __init__(self, files: dict[str, str], context: str = "test_0001") -> None:
        self.files = dict(files)
        self.context = context
        self.requests: list[tuple[dict, str]] = []

    def get_reference_file(self, parameters: dict, reftype: str) -> str:
        self.requests.append((dict(parameters), reftype))
        if reftype in self.files:
            return self.files[reftype]
        if reftype.startswith("pars-"):
            return "N/A"
        from jwpipe.errors import ReferenceFileError

        raise ReferenceFileError(f"no {reftype} reference")


@pytest.fixture
def store():
    """Install a DictStore as the active store; yields it for the test to fill."""
    s = DictStore({})
    refstore.set_store(s)
    yield s
    refstore.set_store(None)
