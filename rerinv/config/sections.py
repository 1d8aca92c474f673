"""The sections of the configuration tree, each a frozen dataclass that validates itself.

Units are SI throughout: siemens, ohms, volts, hertz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rerinv.errors import ConfigError

OPAMP_MODELS = ("ideal", "finite_gain", "single_pole", "sky130")
#: Process corners of the transistor-level (``sky130``) amplifiers.
SKY130_CORNERS = ("tt", "ss", "ff", "sf", "fs")
#: Names of the engines (:mod:`rerinv.engines` registers one class per name).
ENGINES = ("spice", "nodal")
#: Names of the precision schemes (:mod:`rerinv.schemes` has one loop per name).
SCHEMES = ("auto", "single", "repast", "refine", "krylov")

#: Open-loop gain used for the ``ideal`` op-amp model: large enough that the loop error
#: (about ``||G^-1 D|| / gain``) stays far below 1e-6 for any stable matrix we accept.
IDEAL_GAIN = 1e12


@dataclass(frozen=True)
class DeviceConfig:
    """ReRAM cell: conductance window, levels, programming error, read noise, stuck cells."""

    g_min: float = 0.5e-6  #: lowest programmable conductance (S)
    g_max: float = 35e-6  #: highest programmable conductance (S)
    bits: int = 8  #: bits per cell: 2**bits levels evenly spaced in [g_min, g_max]
    sigma_abs: float = 0.0  #: absolute programming error, std as a fraction of g_max
    sigma_rel: float = 0.0  #: proportional programming error, std as a fraction of the target
    read_noise: float = 0.0  #: read noise per read, std as a fraction of the cell conductance
    p_stuck_low: float = 0.0  #: probability a cell is stuck at g_min
    p_stuck_high: float = 0.0  #: probability a cell is stuck at g_max

    def validate(self) -> None:
        _positive(self, "g_min")
        if not self.g_max > self.g_min:
            raise ConfigError(
                f"device.g_max ({self.g_max}) must exceed device.g_min ({self.g_min})"
            )
        if not 1 <= self.bits <= 48:
            raise ConfigError(f"device.bits must be between 1 and 48, got {self.bits}")
        for key in ("sigma_abs", "sigma_rel", "read_noise"):
            _non_negative(self, key)
        for key in ("p_stuck_low", "p_stuck_high"):
            value = getattr(self, key)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"device.{key} is a probability in [0, 1], got {value}")
        if self.p_stuck_low + self.p_stuck_high > 1.0:
            raise ConfigError("device.p_stuck_low + device.p_stuck_high must not exceed 1")


@dataclass(frozen=True)
class OpAmpConfig:
    """Op-amp used by every INV row, inverter and TIA.

    ``ideal``: gain :data:`IDEAL_GAIN`, no pole. ``finite_gain``: DC gain ``gain``.
    ``single_pole``: DC gain ``gain`` with one pole at ``gbw / gain``. Offset, rails and output
    resistance apply to every model.

    ``sky130``: the transistor-level two-stage OTA of ``pyspice_models/sky130_amplifiers.lib``
    in SkyWater SKY130 at ``corner``, ``temperature`` and ``supply`` (rails at
    ``+-supply / 2`` around the common-mode reference, node 0). ngspice simulates the
    transistors; ``gain``, ``gbw``, ``offset`` and ``r_out`` do not enter its netlist (the
    nodal engine uses a linear model extracted from the transistors instead), and stay the
    analog layer's small-signal planning values. ``v_rail`` is the usable output swing: an
    output beyond it counts as railed. ``mismatch`` draws every device's threshold mismatch
    from the PDK's own model, seeded by ``mismatch_seed``. ``trim_bits`` > 0 trims every
    amplifier's input offset at power-up: its offset is measured (a unity-gain buffer of the
    same devices) and a ``trim_bits`` DAC over ``+-trim_range`` cancels it to half a step.
    """

    model: str = "single_pole"  #: ideal | finite_gain | single_pole
    gain: float = 1e5  #: open-loop DC gain (V/V)
    gbw: float = 100e6  #: gain-bandwidth product (Hz), single_pole only
    offset: float = 0.0  #: input offset voltage (V)
    v_rail: float = 1.5  #: output rails at +-v_rail (V)
    r_out: float = 0.0  #: open-loop output resistance (ohm)
    power: float = 1e-3  #: static supply power per op-amp (W); energy estimates only
    corner: str = "tt"  #: sky130 only: process corner, tt | ss | ff | sf | fs
    temperature: float = 27.0  #: sky130 only: temperature (deg C)
    supply: float = 1.8  #: sky130 only: supply voltage (V), rails at +-supply/2 around node 0
    mismatch: bool = False  #: sky130 only: draw device mismatch (the PDK's MC_MM_SWITCH)
    mismatch_seed: int = 0  #: sky130 only: seed of the mismatch draw (ngspice .options seed)
    trim_bits: int = 0  #: sky130 only: offset trim DAC bits per amplifier; 0 = no trim
    trim_range: float = 5e-3  #: sky130 only: the trim DAC spans +-trim_range (V)

    def validate(self) -> None:
        if self.model not in OPAMP_MODELS:
            raise ConfigError(
                f"opamp.model must be one of {', '.join(OPAMP_MODELS)}, got {self.model!r}"
            )
        if self.corner not in SKY130_CORNERS:
            raise ConfigError(
                f"opamp.corner must be one of {', '.join(SKY130_CORNERS)}, got {self.corner!r}"
            )
        if not -55.0 <= self.temperature <= 150.0:
            raise ConfigError(
                f"opamp.temperature must be between -55 and 150 deg C, got {self.temperature}"
            )
        if not 1.2 <= self.supply <= 1.98:
            raise ConfigError(
                "opamp.supply must be between 1.2 and 1.98 V (SKY130 1.8 V devices), got "
                f"{self.supply}"
            )
        if not 0 <= self.mismatch_seed < 2**63:
            raise ConfigError(
                f"opamp.mismatch_seed must be in [0, 2**63), got {self.mismatch_seed}"
            )
        if not 0 <= self.trim_bits <= 16:
            raise ConfigError(f"opamp.trim_bits must be between 0 and 16, got {self.trim_bits}")
        _positive(self, "trim_range")
        if self.model == "sky130" and not self.v_rail < self.supply / 2:
            raise ConfigError(
                f"opamp.v_rail ({self.v_rail} V) must lie inside the sky130 amplifiers' rails "
                f"(+-supply/2 = +-{self.supply / 2:g} V): set opamp.v_rail to the usable output "
                "swing (rerinv amplifier measures it), e.g. --preset sky130"
            )
        for key in ("gain", "gbw", "v_rail"):
            _positive(self, key)
        _non_negative(self, "r_out")
        _non_negative(self, "power")
        _finite(self, "offset")

    @property
    def dc_gain(self) -> float:
        """Open-loop DC gain the circuit actually has (V/V)."""
        return IDEAL_GAIN if self.model == "ideal" else self.gain


@dataclass(frozen=True)
class ConverterConfig:
    """DAC on every input, ADC on every output; symmetric ranges +-range (V)."""

    dac_bits: int = 6
    adc_bits: int = 8
    dac_range: float = 1.0  #: DAC full scale: outputs in [-dac_range, +dac_range] (V)
    adc_range: float = 1.0  #: ADC full scale: inputs beyond +-adc_range saturate (V)

    def validate(self) -> None:
        for key in ("dac_bits", "adc_bits"):
            value = getattr(self, key)
            if not 2 <= value <= 32:  # signed, mid-tread: 1 bit would leave only the zero code
                raise ConfigError(
                    f"converters.{key} must be between 2 and 32 (a signed converter's bits "
                    f"include the sign), got {value}"
                )
        _positive(self, "dac_range")
        _positive(self, "adc_range")


#: ``array.inverter_mismatch`` must stay below this: a resistor ``r (1 + m z)`` with ``z`` a
#: standard normal draw is negative only for a draw beyond ``1 / m`` = 5 sigma.
MAX_INVERTER_MISMATCH = 0.2


@dataclass(frozen=True)
class ArrayConfig:
    """Crossbar size, interconnect and the resistors around the arrays."""

    max_size: int = 256  #: largest N a single crossbar holds
    r_wire: float = 0.0  #: wire resistance per cell segment (ohm); 0 = off (1.73 for 40-nm 1T1R)
    r_in: float = 100e3  #: INV input resistor from each DAC to its row (ohm)
    r_f: float = 10e3  #: VMM transimpedance feedback resistor (ohm)
    r_inv: float = 100e3  #: inverter stage resistors (ohm), both nominally equal
    inverter_mismatch: float = 0.0  #: std of the relative mismatch of each inverter resistor

    def validate(self) -> None:
        if self.max_size < 1:
            raise ConfigError(f"array.max_size must be at least 1, got {self.max_size}")
        for key in ("r_in", "r_f", "r_inv"):
            _positive(self, key)
        _non_negative(self, "r_wire")
        _non_negative(self, "inverter_mismatch")
        if not self.inverter_mismatch < MAX_INVERTER_MISMATCH:
            raise ConfigError(
                f"array.inverter_mismatch must be below {MAX_INVERTER_MISMATCH} (a std of the "
                f"relative resistor error; at {self.inverter_mismatch} draws make inverter "
                "resistors negative), got " + repr(self.inverter_mismatch)
            )


RESIDUAL_MODES = ("analog", "digital")
#: How DAC slices are combined (see SchemeConfig.dac_slicing).
DAC_SLICINGS = ("summed", "separate")
#: Diagonal scaling before mapping (``auto``: jacobi for symmetric, ruiz otherwise).
SCALING_CHOICES = ("auto", "none", "jacobi", "ruiz", "ruiz_pow2")
#: Which analog circuit holds the preconditioner (see rerinv.analog.routes.build_preconditioner).
CIRCUITS = ("auto", "inv", "inv_shifted", "ginv")
#: Preconditioner structure for a matrix larger than one crossbar (array.max_size): one INV
#: loop over crossbar tiles, BlockAMC, or block-Jacobi.
BLOCK_METHODS = ("tiled", "blockamc", "jacobi")


@dataclass(frozen=True)
class SchemeConfig:
    """How the precision schemes use the analog machine."""

    equilibrate: bool = True  #: diagonal scaling before mapping (method: ``scaling``)
    scaling: str = "auto"  #: auto | jacobi | ruiz | ruiz_pow2 | none (exact, in digital)
    circuit: str = "auto"  #: auto | inv | inv_shifted | ginv: what holds the preconditioner
    #: pairs of arrays holding the INV matrix, finer ones driven by attenuated outputs;
    #: 0 = auto (the fewest that give a stable loop, one more when a pass contracts poorly,
    #: at most 3)
    inv_slices: int = 0
    blocks: str = "tiled"  #: tiled | blockamc | jacobi: for matrices larger than array.max_size
    #: program the INV crossbar so that the loop, with op-amps of DC gain opamp.gain, holds
    #: the matrix: its finite-gain error (D/gain on the diagonal, the inverters' 2/gain on
    #: the negative array) is taken out of what the arrays hold (finest slice)
    compensate_gain: bool = True
    #: relative uncertainty of the op-amps' DC gain the compensation plans with: it assumes
    #: gain * (1 + gain_tolerance), so a real gain within the tolerance leaves a positive
    #: diagonal of at most about 2 * gain_tolerance * D / gain (a stable loop)
    gain_tolerance: float = 0.0
    #: b slicing: each INV input applied as this many DAC slices; 0 = auto (enough bits for
    #: the condition number the hardware estimates, at least 2)
    dac_slices: int = 0
    #: how the DAC slices of one input reach the INV crossbar: ``summed`` (their outputs added
    #: through binary-weighted resistors: one INV solve of the whole input) or ``separate``
    #: (RePAST's b slicing: one INV solve per slice, the outputs added in digital)
    dac_slicing: str = "summed"
    residual: str = "analog"  #: residual VMM: analog (bit-sliced crossbars) | digital (float64)
    vmm_cell_bits: int = 0  #: bits per residual VMM cell; 0 = fewest reads (tile_plan)
    vmm_weight_bits: int = 0  #: fixed-point bits of the matrix in the residual VMM; 0 = auto
    vmm_input_bits: int = 0  #: fixed-point bits of the vector in the residual VMM; 0 = auto
    #: a difference read (x + dx after x) skips the weight slices too small to matter for dx
    vmm_truncate: bool = True
    neumann_terms: int = 2  #: repast: most Neumann terms per pass
    restart: int = 20  #: krylov: FGMRES restart length
    margin_bits: float = 4.0  #: stop when ||r||/||b|| <= 2**-(target_bits + margin_bits)
    stall_passes: int = 3  #: passes without a 20 % lower residual before calling it stalled

    def validate(self) -> None:
        for key, allowed in (
            ("residual", RESIDUAL_MODES),
            ("dac_slicing", DAC_SLICINGS),
            ("scaling", SCALING_CHOICES),
            ("circuit", CIRCUITS),
            ("blocks", BLOCK_METHODS),
        ):
            value = getattr(self, key)
            if value not in allowed:
                raise ConfigError(
                    f"scheme.{key} must be one of {', '.join(allowed)}, got {value!r}"
                )
        for key, low, high in (
            ("dac_slices", 0, 8),
            ("inv_slices", 0, 6),
            ("vmm_cell_bits", 0, 8),
            ("vmm_weight_bits", 0, 52),
            ("vmm_input_bits", 0, 52),
            ("neumann_terms", 1, 16),
            ("restart", 1, 1000),
            ("stall_passes", 1, 100),
        ):
            value = getattr(self, key)
            if not low <= value <= high:
                raise ConfigError(f"scheme.{key} must be between {low} and {high}, got {value}")
        _non_negative(self, "margin_bits")
        _non_negative(self, "gain_tolerance")


@dataclass(frozen=True)
class WorkloadConfig:
    """Matrices that Monte Carlo trials and ``rerinv verify`` draw (K-FAC-like factors)."""

    samples_per_n: float = 8.0  #: Wishart samples per matrix column (batch size / width)
    spread: float = 100.0  #: ratio of the largest to the smallest column variance
    damping: float = 1e-3  #: Tikhonov damping relative to the mean diagonal
    fresh_matrix: bool = True  #: draw a new matrix per trial (else one for the whole run)

    def validate(self) -> None:
        _positive(self, "samples_per_n")
        if not self.spread >= 1:
            raise ConfigError(f"workload.spread must be >= 1, got {self.spread}")
        _non_negative(self, "damping")


@dataclass(frozen=True)
class SimulationConfig:
    """What a run does with the hardware: engine, scheme, accuracy target, pass budget, and
    the size of the generated workload matrices (Monte Carlo, ``verify``, ``calibrate``).

    A CLI flag (``--scheme krylov``), a preset and a Monte Carlo axis
    (``--sweep simulation.scheme=refine,krylov``) all set these same fields.
    """

    engine: str = "spice"  #: spice (ngspice) | nodal (scipy MNA of the same circuit)
    scheme: str = "auto"  #: auto | single | repast | refine | krylov
    target_bits: float = 16.0  #: bits the scheme aims for (sets its stopping residual)
    max_passes: int = 40  #: pass budget of the scheme
    n: int = 16  #: size of generated workload matrices (ignored when a matrix is given)
    workers: int = 1  #: engine processes for independent solves; 1 = in-process, 0 = per CPU

    def validate(self) -> None:
        for key, allowed in (("engine", ENGINES), ("scheme", SCHEMES)):
            value = getattr(self, key)
            if value not in allowed:
                raise ConfigError(
                    f"simulation.{key} must be one of {', '.join(allowed)}, got {value!r}"
                )
        _finite(self, "target_bits")
        if not 1 <= self.max_passes <= 10_000:
            raise ConfigError(
                f"simulation.max_passes must be between 1 and 10000, got {self.max_passes}"
            )
        if self.n < 1:
            raise ConfigError(f"simulation.n must be a positive matrix size, got {self.n}")
        if not 0 <= self.workers <= 256:
            raise ConfigError(f"simulation.workers must be between 0 and 256, got {self.workers}")


# -- checks ----------------------------------------------------------------------------------
def _positive(section: Any, key: str) -> None:
    value = getattr(section, key)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{_name(section)}.{key} must be positive, got {value}")


def _non_negative(section: Any, key: str) -> None:
    value = getattr(section, key)
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{_name(section)}.{key} must be >= 0, got {value}")


def _finite(section: Any, key: str) -> None:
    value = getattr(section, key)
    if not math.isfinite(value):
        raise ConfigError(f"{_name(section)}.{key} must be finite, got {value}")


def _name(section: Any) -> str:
    return {
        DeviceConfig: "device",
        OpAmpConfig: "opamp",
        ConverterConfig: "converters",
        ArrayConfig: "array",
        SchemeConfig: "scheme",
        WorkloadConfig: "workload",
        SimulationConfig: "simulation",
    }[type(section)]
