"""The record of one Monte Carlo trial: the one place its fields are declared.

:data:`FIELDS` lists every field a trial produces, with its storage type, the value stored
until the trial is done, its unit and meaning. Everything else reads it: the trial's
:class:`~rerinv.studies.trial.TrialResult` (:func:`result_class`), the HDF5 store (dataset per
field), the loader (``Results``), the report (its field table) and ``docs/hdf5-layout.md``
(:func:`markdown_table`, checked by the tests).

Kinds: ``scalar`` fields are one value per trial (``/trials/<name>``, shape ``(P, T)``);
``history`` fields one value per pass (``/trials/<name>``, ``(P, T, K)`` with ``K`` the largest
pass budget, NaN-padded past the last pass); ``timing`` fields describe the run rather than the
result (``/timing/<name>``, ``(P, T)``): the driver, not the trial function, fills them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rerinv.errors import InputError

#: Variable-length UTF-8 string, as HDF5 stores it (equal to ``h5py.string_dtype()``).
STRING = np.dtype("O", metadata={"vlen": str})
KINDS = ("scalar", "history", "timing")
_FILL = object()  # "a failed trial stores the fill value"


@dataclass(frozen=True)
class Field:
    """One field of a trial record."""

    name: str
    dtype: np.dtype  #: storage type (history fields: of each pass)
    fill: Any  #: stored until the trial is done
    unit: str  #: "" when dimensionless
    meaning: str  #: one line
    kind: str  #: scalar | history | timing
    on_failure: Any = _FILL  #: stored for a failed trial (default: ``fill``)
    required: bool = True  #: a trial function must return it (else it defaults)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:  # pragma: no cover - programming error
            raise ValueError(f"field {self.name}: kind {self.kind!r} is not one of {KINDS}")

    @property
    def group(self) -> str:
        """HDF5 group of the field's dataset: ``timing`` or ``trials``."""
        return "timing" if self.kind == "timing" else "trials"

    @property
    def path(self) -> str:
        return f"/{self.group}/{self.name}"

    @property
    def failed_value(self) -> Any:
        value = self.fill if self.on_failure is _FILL else self.on_failure
        return list(value) if isinstance(value, list) else value

    @property
    def python_type(self) -> type:
        if self.kind == "history":
            return list
        return {"b": bool, "i": int, "f": float, "O": str}[self.dtype.kind]

    def coerce(self, value: Any) -> Any:
        """``value`` as the plain Python value the store writes."""
        if self.kind == "history":
            return [float(v) for v in value]
        return self.python_type(value)


_I64, _F64, _BOOL = np.dtype(np.int64), np.dtype(np.float64), np.dtype(np.bool_)
_COUNT = "-1 until done, 0 for a failed trial"

#: Every field of a trial record, in storage order.
FIELDS: tuple[Field, ...] = (
    Field("status", STRING, "", "", "converged, max_passes, stalled, diverged or failed; "
          "'' until done", "scalar", on_failure="failed"),
    Field("reached_target", _BOOL, False, "", "final effective bits >= simulation.target_bits",
          "scalar"),
    Field("effective_bits", _F64, math.nan, "bits", "final -log2(max|x - x*| / max|x*|) "
          "against the float64 solution x* of the intended system; NaN if failed or not done",
          "scalar"),
    Field("passes", _I64, -1, "", f"scheme passes run ({_COUNT})", "scalar", on_failure=0),
    Field("inv_solves", _I64, -1, "", f"analog INV solves ({_COUNT})", "scalar", on_failure=0),
    Field("vmm_ops", _I64, -1, "", f"residual VMM operations ({_COUNT})", "scalar",
          on_failure=0),
    Field("conversions", _I64, -1, "", f"DAC + ADC conversions ({_COUNT})", "scalar",
          on_failure=0),
    Field("history_bits", _F64, math.nan, "bits", "effective bits after each pass",
          "history", on_failure=[], required=False),
    Field("history_residual", _F64, math.nan, "", "hardware-visible residual "
          "||b - A x|| / ||b|| after each pass", "history", on_failure=[], required=False),
    Field("error", STRING, "", "", "'ExceptionType: message' of a failed trial, else ''",
          "scalar", required=False),
    Field("wall_time", _F64, math.nan, "s", "time the trial took in its worker", "timing"),
    Field("finished_at", _F64, math.nan, "s", "Unix time the driver stored the trial",
          "timing"),
    Field("worker", STRING, "", "", "host:pid of the process that ran the trial", "timing"),
)  # fmt: skip
BY_NAME: Mapping[str, Field] = {f.name: f for f in FIELDS}
#: Fields a trial function returns (the others are the driver's: :data:`TIMING_FIELDS`).
RESULT_FIELDS: tuple[Field, ...] = tuple(f for f in FIELDS if f.kind != "timing")
TIMING_FIELDS: tuple[Field, ...] = tuple(f for f in FIELDS if f.kind == "timing")


def failed_record(message: str) -> dict[str, Any]:
    """The full record (timing fields at their fill) of a trial that failed with ``message``."""
    record = {f.name: f.failed_value for f in FIELDS}
    record["error"] = message
    return record


def normalise_record(result: Any, max_passes: int) -> dict[str, Any]:
    """The result fields of what a trial function returned (a ``TrialResult``, an object with
    ``to_dict()`` or a mapping), as plain Python values; other keys are ignored.

    Raises
    ------
    InputError
        A required field is missing or has the wrong type, or a history is longer than
        ``max_passes``.
    """
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    record = {}
    for f in RESULT_FIELDS:
        if f.name not in data and f.required:
            raise InputError(f"the trial result lacks the field {f.name!r}")
        value = data.get(f.name, f.failed_value if f.kind == "history" else f.fill)
        try:
            record[f.name] = f.coerce(value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"the trial result's {f.name!r} = {value!r}: {exc}") from exc
    longest = max(len(record[f.name]) for f in RESULT_FIELDS if f.kind == "history")
    if longest > max_passes:
        raise InputError(f"the trial reported {longest} passes, more than max_passes={max_passes}")
    return record


def result_class(name: str, module: str) -> type:
    """A dataclass with one attribute per result field (:data:`RESULT_FIELDS`), in order,
    with ``to_dict()`` and ``failed(message)``; optional fields default to their empty value.
    ``module`` is where it is bound to ``name`` (so that it pickles)."""
    spec = []
    for f in RESULT_FIELDS:
        annotation: Any = list[float] if f.kind == "history" else f.python_type
        if f.required:
            spec.append((f.name, annotation))
        elif f.kind == "history":
            spec.append((f.name, annotation, dataclasses.field(default_factory=list)))
        else:
            spec.append((f.name, annotation, f.fill))

    def to_dict(self: Any) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def failed(cls: type, message: str) -> Any:
        record = failed_record(message)
        return cls(**{f.name: record[f.name] for f in RESULT_FIELDS})

    doc = "\n".join(
        [f"What one trial produced (plain, picklable data): ``{__name__}.RESULT_FIELDS``.", "",
         "Attributes", "----------"]
        + [f"{f.name} : {_type_name(f)}\n    {f.meaning}" + (f" ({f.unit})" if f.unit else "")
           for f in RESULT_FIELDS]
    )  # fmt: skip
    namespace = {
        "__module__": module,
        "__qualname__": name,
        "__doc__": doc,
        "to_dict": to_dict,
        "failed": classmethod(failed),
    }
    return dataclasses.make_dataclass(name, spec, namespace=namespace)


def _type_name(f: Field) -> str:
    return "list of float" if f.kind == "history" else f.python_type.__name__


def markdown_table() -> str:
    """The record schema as the Markdown table of ``docs/hdf5-layout.md``."""
    shapes = {"scalar": "(P, T)", "history": "(P, T, K)", "timing": "(P, T)"}
    lines = ["| dataset | shape, type | fill | unit | content |", "|---|---|---|---|---|"]
    for f in FIELDS:
        kind = "string" if f.dtype == STRING else str(f.dtype)
        fill = repr(f.fill) if f.dtype == STRING else str(f.fill).replace("nan", "NaN")
        meaning = f.meaning.replace("|", "\\|")
        lines.append(
            f"| `{f.path}` | `{shapes[f.kind]}` {kind} | `{fill}` | {f.unit or '-'} | {meaning} |"
        )
    return "\n".join(lines)
