"""Fixtures for framework tests: a real CRDS cache the test fills."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jwpipe.references import CacheRule, CrdsCache, install_reference, write_context
from jwpipe.stpipe import refstore


class CacheStore:
    """A real CRDS cache (read through the crds client) that a test fills per reference type.

    ``files[reftype] = path`` puts a copy of the file in the cache under a CRDS name
    (``jwst_nircam_<reftype>_0001<ext>``) and selects it for any NIRCam dataset;
    ``files[reftype] = "N/A"`` writes an N/A rule. Each change is written as a fresh cache on
    the next selection. ``requests`` lists the (parameters, reftype) questions asked.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, str] = {}
        self.requests: list[tuple[dict, str]] = []
        self._built: tuple[tuple, CrdsCache] | None = None

    def _cache(self) -> CrdsCache:
        key = tuple(sorted(self.files.items()))
        if self._built is None or self._built[0] != key:
            cache = self.root / f"crds{len(list(self.root.glob('crds*')))}"
            rules: dict = {}
            for reftype, path in self.files.items():
                if path == "N/A":
                    rules[reftype] = "N/A"
                    continue
                name = f"jwst_nircam_{reftype}_0001{''.join(Path(path).suffixes)}"
                (cache / "tmp").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, cache / "tmp" / name)
                install_reference(cache, "NIRCAM", cache / "tmp" / name, move=True)
                rules[reftype] = [CacheRule(reftype, name, (("INSTRUME", "NIRCAM"),), None)]
            rules.setdefault("ipc", "N/A")
            write_context(cache, {"NIRCAM": rules})
            self._built = (key, CrdsCache(cache))
        return self._built[1]

    @property
    def context(self) -> str:
        return self._cache().context

    def best_references(self, parameters: dict, reftypes: list[str]) -> dict[str, str]:
        self.requests += [(dict(parameters), t) for t in reftypes]
        return self._cache().best_references(parameters, reftypes)

    def get_reference_file(self, parameters: dict, reftype: str) -> str:
        return self.best_references(parameters, [reftype])[reftype]


@pytest.fixture
def store(tmp_path):
    """Install a CacheStore as the active store; yields it for the test to fill."""
    s = CacheStore(tmp_path / "crds_caches")
    s.root.mkdir()
    refstore.set_store(s)
    yield s
    refstore.set_store(None)
