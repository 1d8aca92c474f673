"""The rerinv pytest plugin (entry point ``pytest11``: an installed rerinv is enough).

Fixtures: ``rerinv`` (a :class:`~rerinv.testing.bench.Bench`: configuration, engine, seed),
``rerinv_config``, ``rerinv_seed``, ``rerinv_rng``, ``rerinv_engine`` (sessions closed after
the test). Markers: ``rerinv_config(*assignments)``, ``rerinv_presets(*names)``,
``rerinv_engines(*names)``, ``rerinv_corners(*sky130_corners, **named_override_sets)`` and
``rerinv_yield(min_yield, trials=20, confidence=0.95)``. Options: ``--rerinv-engine``,
``--rerinv-preset``, ``--rerinv-set``, ``--rerinv-seed``, ``--rerinv-trials``,
``--rerinv-artifacts``, ``--rerinv-yield-json``. docs/testbenches.md has the whole story.

This module imports nothing but pytest and the standard library when loaded: a session whose
tests use none of it pays for nothing (rerinv's modules load when a fixture first runs).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

DEFAULT_TRIALS = 20
#: parametrising marker -> the fixture it parametrises
_PARAMETERS = {
    "rerinv_presets": "rerinv_preset",
    "rerinv_engines": "rerinv_engine_name",
    "rerinv_corners": "rerinv_corner",
    "rerinv_yield": "rerinv_trial",
}
PROPERTY = "rerinv_trial"  #: the user property of a trial's report (xdist carries it)


_OPTIONS = {
    "--rerinv-engine": dict(choices=("spice", "nodal"), default=None,
                            help="engine of the rerinv fixture (default: the configuration's)"),
    "--rerinv-preset": dict(default="default", metavar="NAME|FILE.toml",
                            help="configuration of the rerinv fixture: a preset or a TOML file"),
    "--rerinv-set": dict(action="append", default=[], metavar="SECTION.KEY=VALUE",
                         help="override one configuration value; repeatable"),
    "--rerinv-seed": dict(type=int, default=0, metavar="N",
                          help="master seed: each test's seed comes from it and the test's name"),
    "--rerinv-trials": dict(type=int, default=None, metavar="N",
                            help="Monte Carlo trials of every rerinv_yield testbench "
                            "(default: its marker's)"),
    "--rerinv-artifacts": dict(default=None, metavar="DIR",
                               help="where a failing check writes its netlist, inputs and plots "
                               "(default: rerinv-artifacts beside --junitxml, else the rootdir)"),
    "--rerinv-yield-json": dict(default=None, metavar="FILE",
                                help="also write the yield verdicts to this JSON file"),
}  # fmt: skip


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rerinv", "rerinv circuit testbenches")
    for flag, settings in _OPTIONS.items():
        group.addoption(flag, **settings)


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "rerinv_config(*assignments): SECTION.KEY=VALUE overrides for the rerinv fixture",
        "rerinv_presets(*names): run the test once per preset",
        "rerinv_engines(*names): run the test once per engine (spice, nodal)",
        "rerinv_corners(*corners, **sets): once per SKY130 process corner (tt, ss, ff, sf, fs) "
        "or per named set of overrides",
        "rerinv_yield(min_yield, trials=20, confidence=0.95): a Monte Carlo testbench; "
        "fails the session when the share of trials meeting the spec is below min_yield",
    ):
        config.addinivalue_line("markers", line)
    trials = config.getoption("rerinv_trials")
    if trials is not None and trials < 1:
        raise pytest.UsageError(f"--rerinv-trials must be at least 1, got {trials}")
    config.pluginmanager.register(_Yields(config), "rerinv-yields")


# --- parametrisation ------------------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names, marker = metafunc.fixturenames, metafunc.definition.get_closest_marker
    for marker_name, fixture in _PARAMETERS.items():
        m = marker(marker_name)
        if m is None:
            continue
        if fixture not in names:
            pytest.fail(f"{metafunc.definition.nodeid}: the {marker_name} marker needs the "
                        f"rerinv fixture (or {fixture})", pytrace=False)  # fmt: skip
        values, ids = _parameters(marker_name, m, metafunc.config)
        metafunc.parametrize(fixture, values, ids=ids)


def _parameters(marker_name: str, m: pytest.Mark, config: pytest.Config) -> tuple[list, list]:
    if marker_name == "rerinv_corners":
        corners = [(c, (f"opamp.corner={c}",)) for c in m.args]
        corners += [(name, tuple(sets)) for name, sets in m.kwargs.items()]
        return corners, [name for name, _ in corners]
    if marker_name == "rerinv_yield":
        count = config.getoption("rerinv_trials") or m.kwargs.get("trials", DEFAULT_TRIALS)
        threshold = m.args[0] if m.args else m.kwargs.get("min_yield")
        if not (isinstance(threshold, int | float) and 0 < threshold <= 1) or count < 1:
            pytest.fail(f"rerinv_yield(min_yield, trials=...): 0 < min_yield <= 1 and trials "
                        f">= 1, got {threshold!r} and {count!r}", pytrace=False)  # fmt: skip
        return list(range(count)), [f"trial{k}" for k in range(count)]
    return list(m.args), list(m.args)


@pytest.fixture
def rerinv_preset(request: pytest.FixtureRequest) -> str:
    """The preset (or TOML file) of the test's configuration (``--rerinv-preset``)."""
    return request.config.getoption("rerinv_preset")


@pytest.fixture
def rerinv_engine_name(request: pytest.FixtureRequest) -> str | None:
    """The engine (``--rerinv-engine``; None: the configuration's ``simulation.engine``)."""
    return request.config.getoption("rerinv_engine")


@pytest.fixture
def rerinv_corner() -> tuple[str, tuple[str, ...]] | None:
    """(name, overrides) of the corner the test runs at; None outside ``rerinv_corners``."""
    return None


@pytest.fixture
def rerinv_trial() -> int | None:
    """The Monte Carlo trial (0 ... trials - 1) of a ``rerinv_yield`` testbench, else None."""
    return None


@pytest.fixture
def rerinv_seed(request: pytest.FixtureRequest, rerinv_trial) -> int:
    """The test's seed: from ``--rerinv-seed``, the test's file and name, its parameters and
    its trial; the same wherever and in whatever order the test runs."""
    import hashlib

    text = (
        f"{request.config.getoption('rerinv_seed')}|{testbench_name(request.node)}|{rerinv_trial}"
    )
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


@pytest.fixture
def rerinv_rng(rerinv):
    """``numpy.random.Generator`` seeded by the test's seed (the bench's ``rng``)."""
    return rerinv.rng


@pytest.fixture
def rerinv_config(request: pytest.FixtureRequest, rerinv_preset, rerinv_corner):
    """The test's :class:`~rerinv.config.Config`: the preset, ``--rerinv-set``, the corner's
    overrides and the ``rerinv_config`` marker's, in that order."""
    from rerinv.config import Config, load_preset
    from rerinv.errors import RerinvError
    from rerinv.presets import preset_names

    assignments = list(request.config.getoption("rerinv_set"))
    if rerinv_corner is not None:
        assignments += rerinv_corner[1]
    for marker in reversed(list(request.node.iter_markers("rerinv_config"))):
        assignments += marker.args
    try:
        if rerinv_preset in preset_names():
            config = load_preset(rerinv_preset)
        else:
            config = Config.load(rerinv_preset)
        config = config.with_overrides(assignments)
    except RerinvError as exc:
        pytest.fail(f"rerinv configuration: {exc}", pytrace=False)
    if (
        rerinv_corner is not None
        and config.opamp.model != "sky130"
        and any(a.startswith("opamp.corner=") for a in rerinv_corner[1])
    ):
        pytest.fail(
            f"corner {rerinv_corner[0]!r} is a SKY130 process corner, which only "
            "transistor-level amplifiers have (--rerinv-preset sky130); name macro-model "
            "corners by their overrides: rerinv_corners(slow=['opamp.gbw=50e6', ...])",
            pytrace=False,
        )
    return config


@pytest.fixture
def rerinv(rerinv_config, rerinv_engine_name, rerinv_seed):
    """A :class:`~rerinv.testing.bench.Bench` at the test's configuration, engine and seed;
    skipped, with the reason, when ngspice (or the SKY130 models) it needs are missing."""
    from rerinv.testing.bench import Bench

    engine = rerinv_engine_name or rerinv_config.simulation.engine
    _skip_when_missing(engine, rerinv_config)
    bench = Bench(rerinv_config, seed=rerinv_seed, engine=engine)
    yield bench
    bench.close()


@pytest.fixture
def rerinv_engine(rerinv):
    """The bench's engine: ``rerinv_engine.load(circuit)`` gives a session that is closed
    after the test."""
    return rerinv


def _skip_when_missing(engine: str, config) -> None:
    from rerinv.errors import NgspiceMissingError, RerinvError

    if engine == "spice" or config.opamp.model == "sky130":
        from rerinv.engines.ngspice_lib import find_ngspice_library

        try:
            find_ngspice_library()
        except NgspiceMissingError as exc:
            pytest.skip(f"needs ngspice: {exc}")
    if config.opamp.model == "sky130":
        from rerinv.hw.pdk import model_folder

        try:
            model_folder()
        except RerinvError as exc:
            pytest.skip(f"needs the SKY130 models: {exc}")


def testbench_name(item: pytest.Item) -> str:
    """``file::function[parameters]`` without the Monte Carlo trial: one yield per name."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    shown = [_param_id(v) for k, v in sorted(params.items()) if k != "rerinv_trial"]
    name = f"{Path(str(item.path)).name}::{getattr(item, 'originalname', item.name)}"
    return f"{name}[{'-'.join(shown)}]" if shown else name


def _param_id(value) -> str:
    return str(value[0]) if isinstance(value, tuple) else str(value)


# --- reports: artifacts of failing checks, Monte Carlo trials --------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call":
        return
    excinfo = call.excinfo
    if report.failed and excinfo is not None and _is_check(excinfo.value):
        folder = _artifact_root(item.config) / re.sub(r"[^\w.-]+", "_", item.nodeid)
        written = excinfo.value.write_artifacts(folder)
        if written:
            report.sections.append(("rerinv artifacts", "\n".join(map(str, written))))
    marker = item.get_closest_marker("rerinv_yield")
    trial = getattr(getattr(item, "callspec", None), "params", {}).get("rerinv_trial")
    if marker is None or trial is None:
        return
    missed = report.failed and excinfo is not None and _is_spec_miss(excinfo.value)
    if missed:  # a trial that misses the spec is data for the yield, not a failed test
        report.outcome = "skipped"
        report.wasxfail = "missed the spec: " + str(excinfo.value).splitlines()[0][:160]
    record = {
        "testbench": testbench_name(item),
        "trial": trial,
        "met": report.passed,
        "error": report.failed,
        "seed": item.funcargs.get("rerinv_seed"),
        "min_yield": float(marker.args[0] if marker.args else marker.kwargs["min_yield"]),
        "confidence": float(marker.kwargs.get("confidence", 0.95)),
    }
    report.user_properties.append((PROPERTY, record))


def _is_check(exc: BaseException) -> bool:
    module = sys.modules.get("rerinv.testing.assertions")  # never imported: never raised
    return module is not None and isinstance(exc, module.CheckFailed)


def _is_spec_miss(exc: BaseException) -> bool:
    """A failed assertion, or a circuit that railed or did not solve: the chip misses the
    spec. Anything else (a bug in the testbench) stays an error."""
    if isinstance(exc, AssertionError):
        return True
    errors = sys.modules.get("rerinv.errors")
    return errors is not None and isinstance(exc, errors.SaturationError | errors.SimulationError)


def _artifact_root(config: pytest.Config) -> Path:
    chosen = config.getoption("rerinv_artifacts")
    if chosen:
        return Path(chosen)
    xml = getattr(config.option, "xmlpath", None)
    return (Path(xml).resolve().parent if xml else config.rootpath) / "rerinv-artifacts"


class _Yields:
    """Gathers the trial records (on the controller: from every xdist worker), fails the
    session when a yield is below its threshold and prints the table."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: list[dict] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.records += [v for k, v in report.user_properties if k == PROPERTY]

    def verdicts(self):
        if hasattr(self.config, "workerinput") or not self.records:  # a worker reports nothing
            return []
        from rerinv.testing.yields import verdicts

        return verdicts(self.records)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        results = self.verdicts()
        path = self.config.getoption("rerinv_yield_json")
        if results and path:
            import json

            Path(path).write_text(json.dumps([v.to_dict() for v in results], indent=1) + "\n")
        if any(not v.passed for v in results) and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        results = self.verdicts()
        if results:
            from rerinv.testing.yields import table

            terminalreporter.section("rerinv yield")
            for line in table(results):
                terminalreporter.write_line(line)
