"""Every name a module exports in __all__ exists."""

import importlib
import pkgutil

import pytest

import hwgen

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(hwgen.__path__, "hwgen.")
    if not m.name.startswith(("hwgen.train", "hwgen.commands"))
)


@pytest.mark.parametrize("name", MODULES)
def test_all_names_resolve(name):
    mod = importlib.import_module(name)
    for attr in getattr(mod, "__all__", []):
        assert hasattr(mod, attr), f"{name}.__all__ names {attr!r}, which does not exist"
