"""Test tiers: pure-Python units run everywhere; tests marked ``spice`` run netlists in
ngspice (skipped, with the reason, where the ngspice shared library is missing); ``slow``
studies are skipped unless asked for (``-m slow``).

A test is marked ``spice`` when its module says so (``pytestmark``), when it is parametrised
with the ``spice`` engine, or when its source names ngspice or the spice engine.
"""

import inspect

import pytest

from rerinv.config import Config


def _uses_spice(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    if any(isinstance(v, str) and v == "spice" for v in params.values()):
        return True
    try:
        source = inspect.getsource(item.function)
    except (OSError, TypeError, AttributeError):
        return False
    return any(word in source for word in ('"spice"', "ngspice -b", "NgspiceEngine", "ngspice("))


def _ngspice_missing() -> str | None:
    from rerinv.engines.ngspice import find_ngspice_library
    from rerinv.errors import NgspiceMissingError

    try:
        find_ngspice_library()
    except NgspiceMissingError as exc:
        return str(exc)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = None
    for item in items:
        if item.get_closest_marker("spice") is None and _uses_spice(item):
            item.add_marker(pytest.mark.spice)
        if item.get_closest_marker("spice") is not None:
            missing = missing if missing is not None else (_ngspice_missing() or "")
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"needs ngspice: {missing}"))


@pytest.fixture
def ideal_config() -> Config:
    """Ideal op-amps, fine quantisation, no variation, no wires."""
    return Config().with_overrides(["opamp.model=ideal", "device.bits=24"])
