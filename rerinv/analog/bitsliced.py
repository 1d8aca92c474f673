"""High-precision VMM for residuals: bit-sliced weights, bit-serial inputs, shift-and-add.

``y = W x`` with ``W`` in ``weight_bits`` fixed point split over crossbars of ``cell_bits``
cells (differential pairs for the sign), and ``x`` in ``input_bits`` sign-magnitude fixed
point applied one bit plane at a time (inputs in ``{-v_read, 0, +v_read}``). Every (slice,
plane) is one analog VMM solved by the engine; an ADC per column reads the partial sum. The
read voltage makes one ADC step equal one unit of the integer partial sum, and ``cell_bits`` and
the rows per crossbar are chosen so that the largest possible partial sum fits the ADC
(:func:`tile_plan`): with exact cells every partial sum is read exactly and the digital
shift-and-add is exact; with cell error the rounding of partial sums sets a floor, which the
schemes then report.

``x`` is fixed point on a grid of ``input_bits`` set by the power of two above ``max|x|``. When
the grid is the one of the previous input and ``x`` differs from it in fewer bits than it has
(``x + dx`` in a refinement loop), only the difference is read and added to the previous
product, from fewer bit planes (the leading planes of ``dx`` are zero and are skipped). A small
``dx`` also needs fewer weight bits: with ``scheme.vmm_truncate`` (the default) its read skips
the low weight slices whose contribution stays within an error budget, a quarter of the
weights' own rounding error (:meth:`BitSlicedVMM._cut`); without it, and with exact cells, the
result is the same integer a fresh read of ``x + dx`` gives. With cell error each read rounds
its own partial sums.

With ``device.read_noise`` every (slice, plane) read sees conductances drawn afresh around the
programmed ones (a new circuit per read: exact, and slow on the ``spice`` engine). The
shift-and-add accumulates in Python integers, so any ``weight_bits + input_bits`` is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rerinv.config import Config
from rerinv.engines import parallel_map
from rerinv.errors import InputError, SaturationError
from rerinv.hw.circuit import vmm_crossbar
from rerinv.hw.converters import Converter
from rerinv.hw.mapping import CrossbarArrays, program_conductances, read_conductances
from rerinv.seeds import spawn


def tile_plan(
    n_rows: int, weight_bits: int, adc: Converter, max_rows: int, cell_bits: int = 0
) -> tuple[int, list[slice]]:
    """Cell bits and row blocks of a bit-sliced VMM whose partial sums the ADC reads exactly.

    A block of ``r`` rows of ``c``-bit cells fits the ADC when ``r (2**c - 1) <= max_code``
    (one bit plane of inputs in ``{-1, 0, 1}``). Of the cell bits allowed (1..8, or the one
    ``cell_bits`` given), the plan takes the fewest crossbar reads per bit plane (row blocks x
    digit slices), then the fewest cells (more bits per cell, fewer slices), and splits the rows
    evenly: 64 rows on an 8-bit ADC are 2 x 32 rows of 2-bit cells (13 slices of 26 bits), the
    same 26 reads as 64 rows of 1-bit cells with half the cells per crossbar."""
    best = None
    for bits in [cell_bits] if cell_bits else range(1, 9):
        rows = min(adc.max_code // (2**bits - 1), max_rows)
        if rows < 1:
            if cell_bits:
                raise InputError(
                    f"scheme.vmm_cell_bits={cell_bits} lets one full-scale cell exceed the "
                    f"{adc.bits}-bit ADC; use fewer cell bits or 0 (automatic)"
                )
            break
        blocks, slices = -(-n_rows // rows), -(-weight_bits // bits)
        key = (blocks * slices, slices)
        if best is None or key < best[0]:
            best = key, bits, blocks
    _, bits, blocks = best
    edges = [n_rows * k // blocks for k in range(blocks + 1)]
    return bits, [slice(lo, hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


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
        self.weight_bits, self.input_bits = weight_bits, input_bits
        self.cell_bits, row_blocks = tile_plan(
            n, weight_bits, self.adc, config.array.max_size, config.scheme.vmm_cell_bits
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
        self._unit = self.w_scale / (2**weight_bits - 1)  # of W_int
        self._last = None  # (grid scale, x_int, W_int @ x_int) of the last input
        self.truncate = config.scheme.vmm_truncate
        self._budget = 0  # truncation error the kept product may still take (see _cut)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        peak = float(np.max(np.abs(x)))
        if peak == 0:
            return np.zeros(self.m)
        # fixed point on a grid set by the power of two above the peak: the inputs of one loop
        # (x, x + dx, ...) share it, so the product of x + dx is that of x plus that of dx
        scale = 2.0 ** math.ceil(math.log2(peak))
        lsb = scale / (2**self.input_bits - 1)
        x_int = np.round(x / lsb).astype(np.int64)
        product, last = None, self._last
        if last is not None and last[0] == scale:
            delta = x_int - last[1]
            if int(np.max(np.abs(delta))).bit_length() < int(np.max(np.abs(x_int))).bit_length():
                product = last[2] + self._product(delta, self._cut(delta))
        if product is None:
            product = self._product(x_int)
            self._budget = 2 ** (self.input_bits - 2) if self.truncate else 0
        self._last = scale, x_int, product
        return product.astype(float) * self._unit * lsb

    def _cut(self, delta: np.ndarray) -> int:
        """Weight bits below which the read of ``delta`` may skip the slices.

        Skipping the slices below bit ``c`` changes output ``i`` by at most
        ``sum_j (2**c - 1) |delta_j| <= n (2**c - 1) max|delta|`` (units of ``W_int``); the
        weights' own rounding (half a unit each) already allows ``n max|x_int| / 2``, and
        ``max|x_int| >= 2**(input_bits - 1)`` on the grid. Each read may take half of what
        is left of a budget of ``2**(input_bits - 2)`` (per ``n``), set afresh by every whole
        read: all the truncations since then stay within half the rounding error, however many
        reads there are."""
        peak, cut = int(np.max(np.abs(delta))), 0
        while cut + self.cell_bits <= self.weight_bits:
            cost = (2 ** (cut + self.cell_bits) - 1) * peak
            if cost > self._budget // 2:
                break
            cut += self.cell_bits
        self._budget -= (2**cut - 1) * peak
        return cut

    def _product(self, v: np.ndarray, cut: int = 0) -> np.ndarray:
        """``W_int @ v`` (Python integers) for an integer vector ``v``: its sign-magnitude bit
        planes read one by one (all-zero planes skipped), partial sums shifted and added; the
        weight slices below bit ``cut`` are skipped (exact for ``cut = 0``)."""
        magnitude, sign = np.abs(v), np.sign(v)
        n_planes = int(np.max(magnitude)).bit_length()
        planes = ((magnitude[None, :] >> np.arange(n_planes)[:, None]) & 1) * sign
        acc = np.zeros(self.m, dtype=object)  # Python integers: exact at any width
        reads = []  # (tile, its non-zero planes)
        for tile in self.tiles:
            if tile.shift < cut:
                continue
            active = np.flatnonzero(planes[:, tile.rows].any(axis=1))
            if active.size:
                reads.append((tile, active))

        def read(job):
            tile, active = job
            return self._read(tile, planes[active][:, tile.rows] * self.v_read)

        # the tiles' reads are independent: in parallel on a pooled engine (read noise draws
        # from one generator, in order)
        if self.config.device.read_noise:
            results = [read(job) for job in reads]
        else:
            results = parallel_map(self.engine, read, reads)
        for (tile, active), volts in zip(reads, results, strict=True):
            self.ops += active.size
            outputs = tile.cols.stop - tile.cols.start
            self.conversions += active.size * (tile.rows.stop - tile.rows.start + outputs)
            if self.adc.saturated(volts):
                raise SaturationError("residual VMM partial sum beyond the ADC range")
            partial = (-self.adc.codes(volts)).astype(np.int64).astype(object)  # (planes, m)
            shifts = np.array([tile.shift + int(p) for p in active], dtype=object)[:, None]
            acc[tile.cols] += (partial << shifts).sum(axis=0)
        return acc

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
