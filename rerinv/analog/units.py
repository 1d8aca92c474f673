"""One INV crossbar as the schemes use it: DAC slices in, the programmed crossbar, an ADC with
auto-ranging out, every solve counted.

Auto-ranging: the DAC reference is scaled by a power-of-two attenuation ``alpha``; a solve whose
outputs rail or overrange the ADC is repeated at ``alpha / 4`` (and counted), and an
under-ranged result raises ``alpha`` for the next solve. A crossbar's first solve is one vector
from :data:`FIRST_ALPHA` up, which sets the range for the rest of its batch. With
``device.read_noise`` each solve runs on a fresh read of the programmed arrays.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np

from rerinv.analog.inv import InvCrossbar, output_factor
from rerinv.analog.routes import with_more_slices
from rerinv.analog.vmm import build_vmm
from rerinv.analog.vmm import output_factor as output_factor_vmm
from rerinv.config import Config
from rerinv.engines import parallel_map
from rerinv.errors import SaturationError
from rerinv.hw.converters import Converter
from rerinv.hw.mapping import read_conductances
from rerinv.seeds import spawn

MAX_RANGE_RETRIES = 12

#: DAC slices per input when ``scheme.dac_slices = 0`` (auto) before the machine has estimated
#: the condition number (:func:`dac_slices_for`), and for the plain VMM crossbars.
DEFAULT_DAC_SLICES = 2

#: Most DAC slices ``auto`` uses (RePAST's b slicing; one INV solve each).
MAX_DAC_SLICES = 8


def dac_slices_for(kappa: float, dac_bits: int) -> int:
    """DAC slices whose input resolution keeps the solve's error from the input's rounding,
    up to ``kappa`` times the rounding, below an eighth of the answer: ``1 + (dac_bits - 1)
    k >= log2(kappa) + 3`` (the rounding of an input component that the matrix's smallest
    eigenvalues amplify is what an ill-conditioned solve cannot forgive)."""
    needed = (math.log2(max(kappa, 1.0)) + 2.0) / (dac_bits - 1)
    return int(min(MAX_DAC_SLICES, max(DEFAULT_DAC_SLICES, math.ceil(needed))))


def configured_dac_slices(config: Config) -> int:
    """``scheme.dac_slices``, or :data:`DEFAULT_DAC_SLICES` when it is 0 (auto)."""
    return config.scheme.dac_slices or DEFAULT_DAC_SLICES


#: DAC attenuation of an INV crossbar's first solve. Its outputs scale with ``||M^-1||``, which
#: nothing has measured yet: a railed solve costs ngspice many Newton iterations (its gmin and
#: source stepping), an under-ranged one only a second, louder solve (:func:`_raised_alpha`
#: lifts the attenuation to the right power of two at once).
FIRST_ALPHA = 2.0**-8


def _raised_alpha(alpha: float, peak: float, full_scale: float) -> float:
    """The DAC attenuation that would bring outputs peaking at ``peak`` (V) near half the ADC
    range: a power-of-two step up from ``alpha`` (at most 1), when they used less than an
    eighth of it; else ``alpha``. Under-ranged outputs waste ADC bits."""
    if alpha >= 1.0 or peak >= full_scale / 8:
        return alpha
    if peak == 0:
        return 1.0
    return float(min(1.0, alpha * 2.0 ** np.floor(np.log2(0.5 * full_scale / peak))))


@dataclass
class Counters:
    """Operations used so far (conversions count single DAC/ADC samples); ``by_level`` splits
    INV solves, VMM ops and crossbars by block level (0 = the whole matrix)."""

    inv_solves: int = 0
    vmm_ops: int = 0
    conversions: int = 0
    reprograms: int = 0  #: INV crossbar rewrites (one more slice)
    by_level: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def level(self, level: int) -> dict:
        with self._lock:
            return self.by_level.setdefault(level, {"inv_solves": 0, "vmm_ops": 0, "crossbars": 0})

    def add(self, level: int, *, inv_solves: int = 0, vmm_ops: int = 0, conversions: int = 0):
        """Count operations of a unit at block ``level`` (units may run in parallel threads)."""
        counts = self.level(level)
        with self._lock:
            self.inv_solves += inv_solves
            self.vmm_ops += vmm_ops
            self.conversions += conversions
            counts["inv_solves"] += inv_solves
            counts["vmm_ops"] += vmm_ops


class InvUnit:
    """``~M^-1 v`` for the matrix ``M`` one programmed crossbar holds (user units of ``M``).

    Parameters
    ----------
    crossbar : InvCrossbar
        Built by :func:`rerinv.analog.routes.build_preconditioner`.
    engine : Engine
    seed : numpy.random.SeedSequence
        The crossbar's programming seed (re-used when it is re-programmed with a shift).
    counters : Counters
    read_rng : numpy.random.Generator
        Read-noise draws.
    level : int
        Block level, for the counters.
    """

    def __init__(self, crossbar: InvCrossbar, engine, seed, counters, read_rng, level: int = 0):
        self.crossbar, self.engine, self.seed = crossbar, engine, seed
        self.counters, self.read_rng, self.level = counters, read_rng, level
        config: Config = crossbar.config
        self.config, self.n = config, crossbar.arrays.n
        self.dac = Converter(config.converters.dac_bits, 1.0)  # codes in units of full scale
        self.adc = Converter(config.converters.adc_bits, config.converters.adc_range)
        self.alpha, self._ranged = FIRST_ALPHA, False
        self.dac_slices = configured_dac_slices(config)  #: the machine tunes it when auto
        self._dac_samples = 1  # DAC conversions per input and solve (summed slices: all)
        self._session = None if config.device.read_noise else engine.load(crossbar.circuit)
        counters.level(level)["crossbars"] += self.arrays_used(crossbar)

    def arrays_used(self, crossbar: InvCrossbar) -> int:
        """Crossbar arrays holding ``crossbar``: a differential pair per slice and tile."""
        tiles = math.ceil(self.n / self.config.array.max_size) ** 2
        return 2 * crossbar.arrays.slices * tiles * (2 if crossbar.route == "ginv" else 1)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        """``~M^-1 v`` through ``dac_slices`` DAC slices, the crossbar and the ADC;
        ``v`` of shape (n, K) is K independent solves. Every DAC slice of every column is one
        INV solve (counted), and all of them go to the engine as one batch (one ngspice ``dc``
        sweep); over-ranged ones are repeated at a quarter of the DAC reference."""
        v = np.asarray(v, dtype=float)
        if v.ndim == 1:
            return self(v[:, None])[:, 0]
        arrays, cfg = self.crossbar.arrays, self.config
        u = arrays.row_scale[:, None] * v
        peaks = np.max(np.abs(u), axis=0)
        x = np.zeros_like(u)
        live = np.flatnonzero(peaks > 0)
        if live.size == 0:
            return x
        remainder = u[:, live] / peaks[live]
        codes, weights = [], []
        for s in range(self.dac_slices):
            weights.append(2.0 ** (-s * (self.dac.bits - 1)))
            codes.append(self.dac.convert(remainder / weights[-1]))
            remainder = remainder - codes[-1] * weights[-1]
        factor = output_factor(self.crossbar, 1.0)[:, None]
        if cfg.scheme.dac_slicing == "summed":
            # the slices' DAC outputs add through binary-weighted resistors: one solve
            summed = sum(w * c for w, c in zip(weights, codes, strict=True))
            self._dac_samples = len(weights)  # every slice's DAC converts, for every solve
            try:
                volts, alphas = self._solve_batch(summed)
            finally:
                self._dac_samples = 1
            x[:, live] = factor * volts / (alphas * cfg.converters.dac_range / peaks[live])
            return x
        volts, alphas = self._solve_batch(np.hstack(codes))  # slice-major columns
        k = alphas * cfg.converters.dac_range / np.outer(weights, peaks[live]).ravel()
        parts = factor * volts / k[None, :]
        x[:, live] = parts.reshape(self.n, len(weights), live.size).sum(axis=1)
        return x

    def _solve_batch(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ADC-quantised outputs (n, K) and attenuations (K,) of the columns of ``codes``."""
        volts = np.zeros_like(codes)
        alphas = np.full(codes.shape[1], self.alpha)
        pending = np.flatnonzero(codes.any(axis=0))
        limit = self.adc.full_scale + 0.5 * self.adc.lsb
        retried = np.zeros(codes.shape[1], dtype=bool)
        if not self._ranged and pending.size and self._session is not None:
            # the crossbar's first solve: one column, from FIRST_ALPHA, finds the range
            j, pending = pending[0], pending[1:]
            volts[:, j], alphas[j] = self._solve_ranged(codes[:, j])
            alphas[pending] = self.alpha
        self._ranged = True
        for _ in range(MAX_RANGE_RETRIES):
            if pending.size == 0:
                break
            if self._session is None:
                break  # read noise: every solve on its own fresh read
            inputs = alphas[pending] * self.config.converters.dac_range * codes[:, pending]
            self.counters.add(
                self.level,
                inv_solves=pending.size,
                conversions=(self._dac_samples + 1) * self.n * pending.size,
            )
            try:
                out = self._session.solve_batch(inputs.T).T
            except SaturationError:
                break  # some column railed: find which, one at a time
            over = np.any(np.abs(out) > limit, axis=0)
            peaks = np.max(np.abs(out), axis=0)
            raised = np.array(
                [
                    _raised_alpha(a, p, self.adc.full_scale)
                    for a, p in zip(alphas[pending], peaks, strict=True)
                ]
            )
            low = ~over & (raised > alphas[pending]) & ~retried[pending]
            done = pending[~over & ~low]
            volts[:, done] = self.adc.convert(out[:, ~over & ~low])
            alphas[pending[over]] /= 4
            alphas[pending[low]] = raised[low]
            retried[pending[low]] = True
            pending = pending[over | low]
        for j in pending:
            self.alpha = alphas[j]
            volts[:, j], alphas[j] = self._solve_ranged(codes[:, j])
        used = codes.any(axis=0)
        if used.any():  # the next solve starts where these ended (the most attenuated)
            self.alpha = float(np.min(alphas[used]))
        return volts, alphas

    def add_slice(self) -> bool:
        """Re-program the crossbar on one more slice (a rewrite of the arrays, counted); False
        for the generalised-inverse circuit or when no more slices are allowed."""
        finer = with_more_slices(self.crossbar, self.seed)
        if finer is None:
            return False
        if self._session is not None:
            self._session.close()
            self._session = self.engine.load(finer.circuit)
        self.counters.level(self.level)["crossbars"] += self.arrays_used(finer) - self.arrays_used(
            self.crossbar
        )
        self.crossbar, self.alpha, self._ranged = finer, FIRST_ALPHA, False
        self.counters.reprograms += 1
        return True

    def set_dac_slices(self, slices: int) -> None:
        self.dac_slices = slices

    def _solve_ranged(self, codes: np.ndarray) -> tuple[np.ndarray, float]:
        """One INV solve of DAC ``codes`` (units of full scale), auto-ranged; returns the
        ADC-quantised outputs (V) and the attenuation used."""
        full_scale = self.config.converters.adc_range
        retried_low = False
        for _ in range(MAX_RANGE_RETRIES):
            alpha = self.alpha
            self.counters.add(
                self.level, inv_solves=1, conversions=(self._dac_samples + 1) * self.n
            )
            try:
                volts = self._read(alpha * self.config.converters.dac_range * codes)
            except SaturationError:
                self.alpha /= 4
                continue
            if self.adc.saturated(volts):
                self.alpha /= 4
                continue
            raised = _raised_alpha(alpha, float(np.max(np.abs(volts))), full_scale)
            if raised > alpha and not retried_low:
                self.alpha, retried_low = raised, True  # under-ranged: once more, louder
                continue
            return self.adc.convert(volts), alpha
        raise SaturationError(
            f"INV outputs stay beyond the ADC range after {MAX_RANGE_RETRIES} range reductions"
        )

    def _read(self, inputs: np.ndarray) -> np.ndarray:
        """One INV solve; with read noise, on a fresh read of the programmed arrays."""
        if self._session is not None:
            return self._session.solve(inputs)
        noisy = read_conductances(self.crossbar.arrays, self.config.device, self.read_rng)
        session = self.engine.load(self.crossbar.circuit_for(noisy))
        try:
            return session.solve(inputs)
        finally:
            session.close()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


class VmmUnit:
    """``~W v`` on plain ``device.bits`` VMM crossbars (``array.max_size`` square tiles):
    inputs through ``scheme.dac_slices`` DAC slices (2 when auto), outputs through an
    auto-ranged ADC, the tiles' partial products added in digital. A low-precision VMM, as
    BlockAMC's off-diagonal blocks use (the high-precision residual is
    :class:`rerinv.analog.bitsliced.BitSlicedVMM`).

    Ranging: a tile's first read starts at the DAC attenuation that the row sums of its
    programmed target guarantee inside the ADC range (no read can rail); a column that then
    uses less than an eighth of the range is read once more, louder; an over-ranged one again
    at a quarter. Later reads start where the last one ended (the most attenuated column).
    Every read is counted. (Railed amplifiers cost ngspice hundreds of Newton iterations per
    point, so a read that rails is worth avoiding, not just retrying.)
    """

    def __init__(self, w, config: Config, engine, seed, counters: Counters, level: int = 0):
        w = np.asarray(w, dtype=float)
        self.config, self.counters, self.level, self.engine = config, counters, level, engine
        self.m, self.n = w.shape
        size = config.array.max_size
        self.dac = Converter(config.converters.dac_bits, 1.0)
        self.adc = Converter(config.converters.adc_bits, config.converters.adc_range)
        self.tiles = []  # (rows of W, columns of W, crossbar, session, alpha)
        blocks = [(r, c) for r in range(0, self.m, size) for c in range(0, self.n, size)]
        for (r, c), tile_seed in zip(blocks, spawn(seed, len(blocks)), strict=True):
            rows, cols = slice(r, min(self.m, r + size)), slice(c, min(self.n, c + size))
            if not w[rows, cols].any():
                continue
            crossbar = build_vmm(w[rows, cols].T, config, seed=tile_seed)  # computes W_t v
            session = engine.load(crossbar.circuit, batches=True)
            self.tiles.append([rows, cols, crossbar, session, self._safe_alpha(crossbar)])
        counters.level(level)["crossbars"] += 2 * len(self.tiles)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        """``~W v``; ``v`` of shape (n, K) is K independent vectors, read as one batch per
        tile and DAC slice (every vector's read counted)."""
        v = np.asarray(v, dtype=float)
        if v.ndim == 1:
            return self(v[:, None])[:, 0]
        y = np.zeros((self.m, v.shape[1]))

        def product(tile) -> tuple[slice, np.ndarray, np.ndarray]:
            rows, cols, crossbar = tile[:3]
            part = v[cols]
            peaks = np.max(np.abs(part), axis=0)
            live = np.flatnonzero(peaks > 0)
            remainder = part[:, live] / peaks[live]
            base = output_factor_vmm(crossbar, 1.0)
            out = np.zeros((rows.stop - rows.start, live.size))
            for s in range(configured_dac_slices(self.config)):
                weight = 2.0 ** (-s * (self.dac.bits - 1))
                codes = self.dac.convert(remainder / weight)
                remainder = remainder - codes * weight
                volts, k = self._read_batch(tile, codes)
                out += base * volts / k * peaks[live] * weight
            return rows, live, out

        # the tiles are independent: in parallel on a pooled engine; partial products add here
        for rows, live, out in parallel_map(self.engine, product, self.tiles):
            y[rows.start : rows.stop, live] += out
        return y

    def _safe_alpha(self, crossbar) -> float:
        """The largest power-of-4 DAC attenuation at which full-scale codes on the programmed
        target cannot pass the ADC range (its largest absolute row sum decides)."""
        cfg = self.config
        row_sum = float(np.max(np.abs(crossbar.matrix).sum(axis=0)))
        peak = cfg.array.r_f * crossbar.target.scale * cfg.converters.dac_range * row_sum
        if peak <= self.adc.full_scale:
            return 1.0
        return float(4.0 ** -np.ceil(np.log(peak / self.adc.full_scale) / np.log(4.0)))

    def _read_batch(self, tile, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ADC-quantised outputs (m_tile, K) and volts-per-code factors (K,) of the columns of
        DAC ``codes``, auto-ranged per column (see the class docstring)."""
        volts = np.zeros((len(tile[2].circuit.outputs), codes.shape[1]))
        alphas = np.full(codes.shape[1], tile[4])
        pending = np.flatnonzero(codes.any(axis=0))
        read = pending.copy()
        limit = self.adc.full_scale + 0.5 * self.adc.lsb
        retried = np.zeros(codes.shape[1], dtype=bool)
        for _ in range(MAX_RANGE_RETRIES):
            if pending.size == 0:
                if read.size:
                    tile[4] = float(np.min(alphas[read]))
                return volts, alphas * self.config.converters.dac_range
            k = alphas[pending] * self.config.converters.dac_range
            self.counters.add(
                self.level,
                vmm_ops=pending.size,
                conversions=pending.size * (codes.shape[0] + volts.shape[0]),
            )
            try:
                out = tile[3].solve_batch((k[None, :] * codes[:, pending]).T).T
            except SaturationError:
                out = np.full((volts.shape[0], pending.size), np.inf)  # retry all lower
            over = np.any(np.abs(out) > limit, axis=0)
            peaks = np.max(np.abs(out), axis=0)
            raised = np.array([_raised_alpha(a, p, self.adc.full_scale)
                               for a, p in zip(alphas[pending], peaks, strict=True)])  # fmt: skip
            low = ~over & (raised > alphas[pending]) & ~retried[pending]
            done = ~over & ~low
            volts[:, pending[done]] = self.adc.convert(out[:, done])
            alphas[pending[over]] /= 4
            alphas[pending[low]] = raised[low]
            retried[pending[low]] = True
            pending = pending[over | low]
        raise SaturationError("VMM outputs stay beyond the ADC range after range reductions")

    def close(self) -> None:
        for tile in self.tiles:
            tile[3].close()
