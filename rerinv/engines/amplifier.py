"""Characterisation of the transistor-level SKY130 amplifier by ngspice, and the linear model
extracted from it for the nodal engine.

One testbench netlist holds five independent fixtures of ``ota_sky130``, each on its own
supply sources (node 0 is the common-mode level ``VCM``, rails at ``+-supply / 2``):

- ``ol``: open loop for AC (the output closes the loop through 1 GH into 1 F: DC feedback
  sets the operating point, no feedback above a millihertz), loaded by ``LOAD_CAP``: DC gain,
  dominant pole, unity-gain frequency (GBW), phase margin;
- ``z``: the same loop, unloaded, a 1 A AC current into the output: output resistance;
- ``buf``: unity-gain buffer at ``VCM``, unloaded: input offset and quiescent supply current;
- ``sw``: inverting amplifier (``SWING_R`` both resistors), DC sweep of its input: the output
  range over which its closed-loop gain stays within ``SWING_TOLERANCE`` of -1;
- ``sr``: unity-gain buffer with ``LOAD_CAP``, input step of ``SLEW_STEP``: slew rate.

Mismatch: ``offset_sigma`` runs ``trials`` buffers in one netlist with the PDK's mismatch
switch on, seeded by ``.options seed`` (same seed, same draws).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import cache

import numpy as np

from rerinv.config import OpAmpConfig
from rerinv.engines.ngspice_lib import ngspice_version
from rerinv.engines.testbench import Analysis, run_testbench
from rerinv.errors import InputError, SimulationError
from rerinv.hw.circuit import Circuit
from rerinv.hw.sky130 import models, ngspice_seed

LOAD_CAP = 1e-12  #: load capacitance of the AC and slew fixtures (F)
SWING_R = 10e3  #: resistors of the inverting swing fixture (ohm)
SWING_TOLERANCE = 0.01  #: swing: closed-loop gain within 1 % of -1
SLEW_STEP = 0.5  #: input step of the slew fixture (V), centred on VCM
SLEW_EDGES = (20e-9, 220e-9)  #: its input rises at the first time and falls at the second (s)
AC_POINTS = "dec 40 1 1e10"


@dataclass(frozen=True)
class AmplifierCharacterisation:
    """What ngspice measures of ``ota_sky130`` at one corner (SI units; ``offset`` is the
    input offset of the nominal devices, ``offset_sigma`` the standard deviation over a
    mismatch Monte Carlo, NaN when not run)."""

    corner: str
    temperature: float  #: deg C
    supply: float  #: V
    dc_gain: float  #: open-loop DC gain, unloaded (V/V)
    pole1: float  #: dominant pole (Hz), with LOAD_CAP
    gbw: float  #: unity-gain frequency (Hz), with LOAD_CAP
    phase_margin: float  #: deg, with LOAD_CAP
    pole2: float  #: equivalent second pole (Hz) that gives this phase margin
    r_out: float  #: open-loop output resistance at DC (ohm)
    offset: float  #: input offset of the nominal devices (V)
    swing_low: float  #: lowest output (V from VCM) with the inverter's gain within 1 %
    swing_high: float  #: highest output (V from VCM)
    slew_rise: float  #: V/s, with LOAD_CAP
    slew_fall: float  #: V/s (magnitude)
    supply_current: float  #: quiescent current from the positive rail (A)
    power: float  #: quiescent power (W)
    offset_sigma: float = math.nan  #: mismatch Monte Carlo std of the offset (V)
    offset_mean: float = math.nan  #: its mean (V)
    mismatch_trials: int = 0
    mismatch_seed: int = 0

    @property
    def source(self) -> str:
        return f"transistor-level, SKY130 {self.corner}"

    @property
    def swing(self) -> float:
        """Symmetric usable output swing around VCM (V): the smaller side."""
        return min(-self.swing_low, self.swing_high)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["source"] = self.source
        data["ngspice"] = ngspice_version()
        return data


def _fixture(tag: str, pins: str, half: float, extra: str = "") -> list[str]:
    return [
        f"Vdd_{tag} vdd_{tag} 0 DC {half:.17g}",
        f"Vss_{tag} vss_{tag} 0 DC {-half:.17g}",
        f"X{tag} {pins} vdd_{tag} vss_{tag} ota_sky130{extra}",
    ]


def testbench(corner: str, temperature: float, supply: float, *, compact: bool = True) -> str:
    """The characterisation netlist (no ``.control``); ``compact``: on the compiled FET
    cells (else the PDK's own sub-circuits)."""
    half = supply / 2
    step = SLEW_STEP / 2
    lines = [f"* ota_sky130 characterisation, {corner}, {temperature:g} C, {supply:g} V"]
    lines.append(models(corner, temperature, compact=compact))
    lines += _fixture("ol", "ip_ol in_ol o_ol", half)
    lines += ["Vin_ol ip_ol 0 DC 0 AC 1", "Lol o_ol in_ol 1e9", "Col in_ol 0 1"]
    lines.append(f"CL_ol o_ol 0 {LOAD_CAP:.17g}")
    lines += _fixture("z", "0 in_z o_z", half)
    lines += ["Lz o_z in_z 1e9", "Cz in_z 0 1", "Iz 0 o_z DC 0 AC 1"]
    lines += _fixture("buf", "0 o_buf o_buf", half)
    lines += _fixture("sw", "0 n_sw o_sw", half)
    lines += ["Vsw i_sw 0 DC 0", f"R1sw i_sw n_sw {SWING_R:.17g}", f"R2sw n_sw o_sw {SWING_R:.17g}"]
    lines += _fixture("sr", "i_sr o_sr o_sr", half)
    rise, fall = SLEW_EDGES
    width = fall - rise
    lines.append(f"Vsr i_sr 0 DC {-step} PULSE({-step} {step} {rise} 10p 10p {width} 1)")
    lines.append(f"CL_sr o_sr 0 {LOAD_CAP:.17g}")
    lines.append(".end")
    return "\n".join(lines) + "\n"


def _crossing(x: np.ndarray, y: np.ndarray, level: float) -> float:
    """First x (log-interpolated) where decreasing y falls through ``level``."""
    below = np.flatnonzero(y < level)
    if below.size == 0 or below[0] == 0:
        raise SimulationError(f"amplifier response never crosses {level:g} in the sweep")
    k = below[0]
    t = (y[k - 1] - level) / (y[k - 1] - y[k])
    return float(np.exp(np.log(x[k - 1]) + t * (np.log(x[k]) - np.log(x[k - 1]))))


def _measure(
    corner: str, temperature: float, supply: float, compact: bool = True
) -> AmplifierCharacterisation:
    half = supply / 2
    results = run_testbench(
        f"ota_sky130 {corner}",
        testbench(corner, temperature, supply, compact=compact),
        [
            Analysis("op", "op", ("v(o_buf)", "i(vdd_buf)")),
            Analysis(
                "ac",
                f"ac {AC_POINTS}",
                ("f_hz", "gain_mag", "gain_ph", "z_mag"),
                lets=(
                    "f_hz = real(frequency)",
                    "gain_mag = mag(v(o_ol))",
                    "gain_ph = cph(v(o_ol))",
                    "z_mag = mag(v(o_z))",
                ),
            ),
            Analysis("dc", f"dc vsw {-half:.6g} {half:.6g} 0.005", ("v(i_sw)", "v(o_sw)")),
            Analysis("tran", "tran 0.1n 420n 0 0.1n", ("time", "v(o_sr)")),
        ],
    )
    op, ac, dc, tran = (results[k] for k in ("op", "ac", "dc", "tran"))
    f, mag, phase = ac["f_hz"], ac["gain_mag"], np.degrees(ac["gain_ph"])
    dc_gain = float(mag[0])
    gbw = _crossing(f, mag, 1.0)
    pole1 = _crossing(f, mag, dc_gain / math.sqrt(2))
    phase_at_gbw = float(np.interp(math.log(gbw), np.log(f), phase))
    phase_margin = 180.0 + phase_at_gbw
    excess = -phase_at_gbw - math.degrees(math.atan(gbw / pole1))
    pole2 = gbw / math.tan(math.radians(excess)) if 0 < excess < 90 else math.inf
    vin, vout = dc["v(i_sw)"], dc["v(o_sw)"]
    slope = np.gradient(vout, vin)
    good = np.abs(slope + 1) <= SWING_TOLERANCE
    if not good.any():
        raise SimulationError(f"ota_sky130 at {corner}: the inverter is never within 1 % of -1")
    centre = int(np.argmin(np.abs(vin)))
    lo = hi = centre
    while lo > 0 and good[lo - 1]:
        lo -= 1
    while hi < len(good) - 1 and good[hi + 1]:
        hi += 1
    out_range = sorted((float(vout[lo]), float(vout[hi])))
    slew_rise, slew_fall = _slew(tran["time"], tran["v(o_sr)"])
    current = -float(op["i(vdd_buf)"][0])
    return AmplifierCharacterisation(
        corner=corner,
        temperature=temperature,
        supply=supply,
        dc_gain=dc_gain,
        pole1=pole1,
        gbw=gbw,
        phase_margin=phase_margin,
        pole2=pole2,
        r_out=float(ac["z_mag"][0]),
        offset=-float(op["v(o_buf)"][0]) * (1 + 1 / dc_gain),
        swing_low=out_range[0],
        swing_high=out_range[1],
        slew_rise=float(slew_rise),
        slew_fall=float(slew_fall),
        supply_current=current,
        power=current * supply,
    )


def _slew(t: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """Rising and falling slew rates (V/s): 60 % of the output step over its 20-80 % time."""
    start, top = float(v[0]), float(v[np.searchsorted(t, SLEW_EDGES[1]) - 1])
    rates = []
    for t0, t1, a, b in (
        (SLEW_EDGES[0], SLEW_EDGES[1], start, top),
        (SLEW_EDGES[1], t[-1], top, start),
    ):
        window = (t >= t0) & (t <= t1)
        tw, vw = t[window], v[window]
        levels = [a + f * (b - a) for f in (0.2, 0.8)]
        times = []
        for level in levels:
            k = np.flatnonzero((vw - level) * np.sign(b - a) >= 0)
            if k.size == 0 or k[0] == 0:
                raise SimulationError("ota_sky130 slew fixture: the output never crossed its step")
            i = k[0]
            times.append(
                tw[i - 1] + (level - vw[i - 1]) * (tw[i] - tw[i - 1]) / (vw[i] - vw[i - 1])
            )
        rates.append(0.6 * abs(b - a) / (times[1] - times[0]))
    return rates[0], rates[1]


def offset_statistics(
    corner: str, temperature: float, supply: float, trials: int, seed: int
) -> np.ndarray:
    """Input offsets (V) of ``trials`` unity-gain buffers with the PDK's device mismatch,
    drawn by ngspice from ``seed`` (``.options seed``; the same seed gives the same draws)."""
    if not 2 <= trials <= 10_000:
        raise InputError(f"mismatch trials must be between 2 and 10000, got {trials}")
    if seed < 0:
        raise InputError(f"the mismatch seed must be a non-negative integer, got {seed}")
    half = supply / 2
    lines = [
        f"* ota_sky130 mismatch, {corner}, seed {seed}",
        f".options seed={ngspice_seed(seed)} klu",
    ]
    lines.append(models(corner, temperature, mismatch=True))
    lines += [f"Vdd vdd 0 DC {half:.17g}", f"Vss vss 0 DC {-half:.17g}"]
    lines += [f"X{k} 0 o{k} o{k} vdd vss ota_sky130" for k in range(trials)]
    lines.append(".end")
    outs = tuple(f"v(o{k})" for k in range(trials))
    result = run_testbench(
        f"ota_sky130 mismatch {corner}", "\n".join(lines) + "\n", [Analysis("op", "op", outs)]
    )
    return -np.array([result["op"][v][0] for v in outs])


def characterise(
    corner: str = "tt",
    temperature: float = 27.0,
    supply: float = 1.8,
    *,
    mismatch_trials: int = 0,
    seed: int = 0,
) -> AmplifierCharacterisation:
    """Measure ``ota_sky130`` at one corner by ngspice (see the module docstring); with
    ``mismatch_trials`` also the offset statistics over that many mismatch draws."""
    result = _characterisation(corner, float(temperature), float(supply))
    if mismatch_trials:
        offsets = offset_statistics(corner, temperature, supply, mismatch_trials, seed)
        result = AmplifierCharacterisation(
            **{
                **asdict(result),
                "offset_sigma": float(np.std(offsets, ddof=1)),
                "offset_mean": float(np.mean(offsets)),
                "mismatch_trials": mismatch_trials,
                "mismatch_seed": seed,
            }
        )
    return result


@cache
def _characterisation(corner: str, temperature: float, supply: float):
    return _measure(corner, temperature, supply)


@dataclass(frozen=True)
class LinearAmplifier:
    """The linear (DC) model of an amplifier at its operating point: ``v(oi) = gain (v(inp) -
    offset - v(inn))`` behind ``r_out`` (the nodal engine's op-amp stamp)."""

    gain: float
    offset: float
    r_out: float
    source: str


def linear_model(opamp: OpAmpConfig) -> LinearAmplifier:
    """The amplifier the nodal engine stamps for ``opamp``: the configured macro-model values,
    or for ``sky130`` the gain, offset and output resistance extracted by ngspice from the
    transistor-level OTA at the configured corner, temperature and supply."""
    if opamp.model != "sky130":
        return LinearAmplifier(opamp.dc_gain, opamp.offset, opamp.r_out, opamp.model)
    c = characterise(opamp.corner, opamp.temperature, opamp.supply)
    offset = c.offset
    if opamp.trim_bits:  # what the trim DAC leaves of the nominal devices' offset
        from rerinv.hw.sky130 import trim_codes

        offset -= float(trim_codes([c.offset], opamp)[0])
    return LinearAmplifier(c.dc_gain, offset, c.r_out, c.source)


def small_signal_equivalent(circuit: Circuit) -> Circuit:
    """``circuit`` with its ``sky130`` amplifiers replaced by the single-pole model extracted
    from them (DC gain, GBW with the characterisation's 1 pF load, offset, output resistance
    at the configured corner, temperature and supply): what the small-signal predictions of
    a transistor-level transient use. Other circuits are returned as they are."""
    oa = circuit.opamp
    if oa.model != "sky130":
        return circuit
    c = characterise(oa.corner, oa.temperature, oa.supply)
    model = replace(
        oa, model="single_pole", gain=c.dc_gain, gbw=c.gbw, offset=c.offset, r_out=c.r_out,
        mismatch=False,
    )  # fmt: skip
    scale = c.gbw / oa.gbw  # per-amplifier compensation keeps its ratio to the nominal GBW
    return replace(circuit, opamp=model, opamp_gbw=tuple(g * scale for g in circuit.opamp_gbw))


def supply_power(circuit: Circuit, inputs) -> dict:
    """Power (W) the sources of a transistor-level circuit deliver at its DC operating point
    with ``inputs`` (V) on its input sources, from ngspice's source currents: the two supply
    rails (amplifier bias and every current the amplifiers drive into cells and resistors)
    and the input DACs (into ``r_in`` or the VMM rows). ``-V * I`` per source."""
    import numpy as np

    from rerinv.hw.netlist import source_name, to_spice
    from rerinv.hw.sky130 import SUPPLY_NODES

    if circuit.opamp.model != "sky130":
        raise InputError("supply power is measured on transistor-level (sky130) circuits")
    inputs = np.asarray(inputs, dtype=float)
    loaded = replace(circuit, input_values=inputs)
    rails = tuple(f"v{node}" for node in SUPPLY_NODES)
    dacs = tuple(source_name(node) for node in circuit.inputs)
    vectors = tuple(f"i({s})" for s in (*rails, *dacs))
    result = run_testbench(
        f"{circuit.title} supply currents", to_spice(loaded), [Analysis("op", "op", vectors)]
    )["op"]
    half = circuit.opamp.supply / 2
    rail_power = -half * result[f"i({rails[0]})"][0] + half * result[f"i({rails[1]})"][0]
    dac_power = float(-sum(v * result[f"i({s})"][0] for v, s in zip(inputs, dacs, strict=True)))
    return {
        "rails_w": float(rail_power),
        "dacs_w": dac_power,
        "total_w": float(rail_power) + dac_power,
        "supply_current_a": float(-result[f"i({rails[0]})"][0]),
    }


def trimmed(circuit: Circuit) -> Circuit:
    """``circuit`` with its amplifiers' offsets trimmed at power-up (``opamp.trim_bits`` > 0,
    ``sky130``): every amplifier's input offset is measured by ngspice on a unity-gain buffer
    of the same devices (:func:`rerinv.hw.sky130.buffer_testbench`: same models, seed and
    parse order, so the same mismatch draws) and cancelled by its trim DAC to half a step.
    Circuits without trims, or already trimmed, are returned as they are."""
    oa = circuit.opamp
    if oa.model != "sky130" or oa.trim_bits == 0 or circuit.amplifier_trims:
        return circuit
    count = len(circuit.opamps) + len(circuit.inverters) + len(circuit.tias)
    if count == 0:
        return circuit
    return replace(circuit, amplifier_trims=_trims(oa, circuit.title, count))


@cache
def _trims(opamp: OpAmpConfig, title: str, count: int) -> tuple[float, ...]:
    from rerinv.hw.sky130 import buffer_testbench, trim_codes

    outs = tuple(f"v(o{k})" for k in range(count))
    result = run_testbench(
        f"offsets of {title}", buffer_testbench(opamp, title, count), [Analysis("op", "op", outs)]
    )
    offsets = [-result["op"][v][0] for v in outs]
    return tuple(float(t) for t in trim_codes(offsets, opamp))
