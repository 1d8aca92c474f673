"""DAC and ADC: signed, mid-tread, uniform, saturating.

A ``bits``-bit converter over ``+-full_scale`` has ``2**(bits-1) - 1`` steps each side of zero
(one code, the most negative, is left unused so the scale is symmetric).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Converter:
    """A signed uniform converter.

    Attributes
    ----------
    bits : int
    full_scale : float
        Largest magnitude it represents (V).
    """

    bits: int
    full_scale: float

    @property
    def max_code(self) -> int:
        return 2 ** (self.bits - 1) - 1

    @property
    def lsb(self) -> float:
        """One step (V)."""
        return self.full_scale / self.max_code

    def codes(self, volts: np.ndarray) -> np.ndarray:
        """Integer codes, saturated at ``+-max_code``."""
        return np.clip(np.round(np.asarray(volts) / self.lsb), -self.max_code, self.max_code)

    def convert(self, volts: np.ndarray) -> np.ndarray:
        """Quantised voltages (V)."""
        return self.codes(volts) * self.lsb

    def saturated(self, volts: np.ndarray) -> bool:
        """True when any input lies beyond the last code's half step."""
        return bool(np.any(np.abs(np.asarray(volts)) > self.full_scale + 0.5 * self.lsb))
