"""High-precision VMM for residuals: bit-sliced weights, bit-serial inputs, shift-and-add.

``y = W x`` with ``W`` in ``weight_bits`` fixed point split over crossbars of ``cell_bits``
cells (differential pairs for the sign), and ``x`` in ``input_bits`` sign-magnitude fixed
point applied one bit plane at a time (inputs in ``{-v_read, 0, +v_read}``). Every (slice,
plane) is one analog VMM solved by the engine; an ADC per column reads the partial sum. The
read voltage makes one ADC step equal one unit of the integer partial sum, and ``cell_bits`` is
chosen so that the largest possible partial sum fits the ADC: with exact cells every partial
sum is read exactly and the digital shift-and-add is exact; with cell error the rounding of
partial sums sets a floor, which the schemes then report.

With ``device.read_noise`` every (slice, plane) read sees conductances drawn afresh around the
programmed ones (a new circuit per read: exact, and slow on the ``spice`` engine). The
shift-and-add accumulates in Python integers, so any ``weight_bits + input_bits`` is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rerinv.config import Config
from rerinv.errors import InputError, SaturationError
from rerinv.hw.circuit import vmm_crossbar
from rerinv.hw.converters import Converter
from rerinv.hw.mapping import CrossbarArrays, program_conductances, read_conductances
from rerinv.seeds import spawn


def exact_cell_bits(n_rows: int, adc: Converter) -> int:
    """Largest cell bits (1..8) for which ``n_rows`` full-scale cells fit the ADC exactly."""
    bits = 0
    while bits < 8 and n_rows * (2 ** (bits + 1) - 1) <= adc.max_code:
        bits += 1
    return bits


@dataclass(frozen=True, eq=False)
class _Tile:
    """One crossbar: a digit slice of a block of rows, and its loaded circuit."""

    shift: int  #: bit position of the slice
    rows: slice  #: rows of W^T (inputs) it holds
    cols: slice  #: columns of W^T (outputs) it holds
    arrays: CrossbarArrays  #: programmed conductances
    session: object  #: engine session of its circuit


class BitSlicedVMM:
    """Computes ``w @ x`` on bit-sliced crossbars.

    Parameters
    ----------
    w : numpy.ndarray
        Matrix, shape (m, n).
    config : Config
        ``scheme.vmm_cell_bits`` sets the cell bits; device error applies to every cell.
    engine : Engine
        ``spice`` or ``nodal`` engine instance.
    seed : numpy.random.SeedSequence
        Programming draws of the slices, then read-noise draws.
    weight_bits, input_bits : int
        Fixed-point bits of ``w`` and of ``x``.
    """

    def __init__(
        self,
        w,
        config: Config,
        engine,
        seed: np.random.SeedSequence,
        *,
        weight_bits: int,
        input_bits: int,
    ):
        self.config, self.engine = config, engine
        self.adc = Converter(config.converters.adc_bits, config.converters.adc_range)
        m, n = w.shape
        # rows per crossbar tile: one full-scale cell each must fit the ADC, and the crossbar
        self.block = min(self.adc.max_code, config.array.max_size)
        self.weight_bits, self.input_bits = weight_bits, input_bits
        rows_per_tile = min(n, self.block)
        self.cell_bits = config.scheme.vmm_cell_bits or exact_cell_bits(rows_per_tile, self.adc)
        if rows_per_tile * (2**self.cell_bits - 1) > self.adc.max_code:
            raise InputError(
                f"scheme.vmm_cell_bits={self.cell_bits} lets a {rows_per_tile}-row partial sum "
                f"exceed the {self.adc.bits}-bit ADC; use fewer cell bits or 0 (automatic)"
            )
        device = config.device
        self.w_scale = float(np.max(np.abs(w))) or 1.0
        w_int = np.round(np.abs(w) / self.w_scale * (2**weight_bits - 1)).astype(np.int64)
        sign = np.sign(w)
        step = (device.g_max - device.g_min) / (2**self.cell_bits - 1)
        self.v_read = self.adc.lsb / (config.array.r_f * step)
        n_slices = -(-weight_bits // self.cell_bits)
        mask = 2**self.cell_bits - 1
        width = config.array.max_size  # outputs per crossbar
        row_blocks = [slice(r, min(n, r + self.block)) for r in range(0, n, self.block)]
        col_blocks = [slice(c, min(m, c + width)) for c in range(0, m, width)]
        programming, reading = spawn(seed, 2)
        seeds = iter(spawn(programming, n_slices * len(row_blocks) * len(col_blocks)))
        self._read_rng = np.random.default_rng(reading)
        self.tiles: list[_Tile] = []
        for s in range(n_slices):
            digits = (w_int >> (s * self.cell_bits)) & mask
            for rows in row_blocks:
                for cols in col_blocks:
                    tile_seed = next(seeds)
                    d = digits[cols, rows].T  # crossbar rows = inputs, columns = outputs
                    sg = sign[cols, rows].T
                    if not d.any():
                        continue  # an all-zero slice needs no crossbar
                    target = CrossbarArrays(
                        g_pos=device.g_min + step * np.where(sg > 0, d, 0),
                        g_neg=device.g_min + step * np.where(sg < 0, d, 0),
                        scale=step,
                        row_scale=np.ones(d.shape[0]),
                        col_scale=np.ones(d.shape[1]),
                    )
                    rng = np.random.default_rng(tile_seed)
                    arrays = program_conductances(target, device, rng)
                    session = (
                        None
                        if device.read_noise
                        else engine.load(vmm_crossbar(arrays, config), batches=True)
                    )
                    self.tiles.append(_Tile(s * self.cell_bits, rows, cols, arrays, session))
        self.ops = 0
        self.conversions = 0
        self.m = m

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x_scale = float(np.max(np.abs(x)))
        if x_scale == 0:
            return np.zeros(self.m)
        levels = 2**self.input_bits - 1
        x_int = np.round(np.abs(x) / x_scale * levels).astype(np.int64)
        planes = ((x_int[None, :] >> np.arange(self.input_bits)[:, None]) & 1) * np.sign(x)
        acc = np.zeros(self.m, dtype=object)  # Python integers: exact at any width
        for tile in self.tiles:
            active = np.flatnonzero(planes[:, tile.rows].any(axis=1))  # zero planes are skipped
            if active.size == 0:
                continue
            volts = self._read(tile, planes[active][:, tile.rows] * self.v_read)
            self.ops += active.size
            outputs = tile.cols.stop - tile.cols.start
            self.conversions += active.size * (tile.rows.stop - tile.rows.start + outputs)
            if self.adc.saturated(volts):
                raise SaturationError("residual VMM partial sum beyond the ADC range")
            partial = (-self.adc.codes(volts)).astype(np.int64).astype(object)  # (planes, m)
            shifts = np.array([tile.shift + int(p) for p in active], dtype=object)[:, None]
            acc[tile.cols] += (partial << shifts).sum(axis=0)
        unit = (self.w_scale / (2**self.weight_bits - 1)) * (x_scale / levels)
        return acc.astype(float) * unit

    def _read(self, tile: _Tile, inputs: np.ndarray) -> np.ndarray:
        """Output volts of the planes ``inputs`` (K, rows): one batch on the loaded circuit,
        or one freshly read circuit per plane with read noise."""
        if tile.session is not None:
            return tile.session.solve_batch(inputs)
        rows = []
        for plane in inputs:
            noisy = read_conductances(tile.arrays, self.config.device, self._read_rng)
            session = self.engine.load(vmm_crossbar(noisy, self.config))
            try:
                rows.append(session.solve(plane))
            finally:
                session.close()
        return np.array(rows)

    def close(self) -> None:
        for tile in self.tiles:
            if tile.session is not None:
                tile.session.close()


class DigitalVMM:
    """Exact float64 ``w @ x`` (the ``digital`` residual option); costs no analog op."""

    def __init__(self, w: np.ndarray):
        self.w = w
        self.ops = 0
        self.conversions = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.w @ x

    def close(self) -> None:
        pass
