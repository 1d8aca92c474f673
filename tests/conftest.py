import pytest

from rerinv.config import Config


@pytest.fixture
def ideal_config() -> Config:
    """Ideal op-amps, fine quantisation, no variation, no wires."""
    return Config().with_overrides(["opamp.model=ideal", "device.bits=24"])
