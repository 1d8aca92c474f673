"""rerinv: SPICE-backed circuit-level verification of high-precision matrix inversion on
ReRAM crossbars."""

__version__ = "0.1.0"
