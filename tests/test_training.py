"""K-FAC training with the analog inverse in the loop (rerinv.training, ``rerinv train``)."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("sklearn", reason="training needs the `train` extra (scikit-learn)")

from rerinv.cli import main as rerinv_main  # noqa: E402
from rerinv.errors import InputError  # noqa: E402
from rerinv.nn import mlp  # noqa: E402
from rerinv.nn.data import digits_dataset  # noqa: E402
from rerinv.nn.kfac import Kfac, KfacSettings  # noqa: E402
from rerinv.training import (  # noqa: E402
    AnalogInverse,
    Float64Inverse,
    InverseBackend,
    InverseOutcome,
    QuantisedInverse,
    Setting,
    TrainingSpec,
    load_factor_set,
    load_training,
    make_backend,
    run_training,
    steps_summary,
    train_run,
    training_config,
)
from rerinv.training import run as run_module  # noqa: E402
from rerinv.training.train import run_seed, steps_to  # noqa: E402

FACTORS = Path(__file__).parent / "data" / "kfac_factors"
DEFAULT_SET = FACTORS / "digits_mlp_damping3e-3.h5"
LOW_DAMPING_SET = FACTORS / "digits_mlp_damping1e-5.h5"


def tiny_spec(**values) -> TrainingSpec:
    """A grid small enough for unit tests: 6 steps, 2 seeds, one lr per baseline."""
    defaults = dict(
        steps=6,
        seeds=2,
        inverse_every=3,
        backends=("float64", "quantised"),
        bits=(8,),
        damping=(0.003,),
        noise=("ideal",),
        sgd_lrs=(1.0,),
        adam_lrs=(0.1,),
    )
    return TrainingSpec(**{**defaults, **values})


# -- the network and K-FAC ------------------------------------------------------------------
@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_backprop_matches_finite_differences(output):
    rng = np.random.default_rng(0)
    arch = mlp.Architecture((5, 4, 3), "tanh", output)
    weights = mlp.init_weights(arch, rng)
    weights = [w + 0.1 * rng.standard_normal(w.shape) for w in weights]  # non-zero biases
    x = rng.random((7, 5))
    y = rng.integers(0, 3, 7) if output == "softmax" else rng.random((7, 3))
    fwd = mlp.forward(arch, weights, x)
    top = mlp.output_gradient(arch, fwd.logits, y)
    grads = mlp.weight_gradients(fwd, mlp.backward(arch, weights, fwd, top))
    h = 1e-6
    for layer, w in enumerate(weights):
        for index in [(0, 0), (1, -1), (w.shape[0] - 1, 2)]:
            plus = [v.copy() for v in weights]
            minus = [v.copy() for v in weights]
            plus[layer][index] += h
            minus[layer][index] -= h
            numeric = (
                mlp.loss(arch, mlp.forward(arch, plus, x).logits, y)
                - mlp.loss(arch, mlp.forward(arch, minus, x).logits, y)
            ) / (2 * h)
            assert grads[layer][index] == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_kfac_step_is_the_kronecker_factored_natural_gradient():
    """With float64 inverses the step is -lr (A (x) G)^-1 vec(grad) of the damped factors."""
    rng = np.random.default_rng(1)
    settings = KfacSettings(lr=0.3, damping=0.05, kl_clip=0.0, inverse_every=1)
    kfac = Kfac([(4, 3)], settings, Float64Inverse(), seed=0)
    a_stats, g_stats = rng.standard_normal((20, 4)), rng.standard_normal((20, 3))
    kfac.update_factors([a_stats], [g_stats])
    grad = rng.standard_normal((3, 4))
    (delta,), nu = kfac.step([grad])
    a_d, g_d, da, dg = kfac.damped_factors(0)
    assert da * dg == pytest.approx(settings.damping)  # pi-damping splits lambda
    fisher = np.kron(a_d, g_d)  # vec() stacks columns: vec(G X A) = (A (x) G) vec(X)
    expected = -0.3 * np.linalg.solve(fisher, grad.flatten(order="F"))
    np.testing.assert_allclose(delta.flatten(order="F"), expected, rtol=1e-10)
    assert nu == 1.0
    np.testing.assert_allclose(kfac.factors[0][0], a_stats.T @ a_stats / 20)


class _FailingBackend(InverseBackend):
    name = "failing"

    def __init__(self):
        self.calls = 0

    def invert(self, matrix, *, seed=0):
        self.calls += 1
        if self.calls > 2:  # the first update (2 factors) works, later ones fail
            return InverseOutcome(None, column_bits=np.zeros(0), error="UnstableMatrixError: x")
        return InverseOutcome(np.linalg.inv(matrix), column_bits=np.full(len(matrix), 50.0))


def test_a_failed_inverse_keeps_the_previous_one_and_is_recorded():
    rng = np.random.default_rng(2)
    kfac = Kfac([(3, 2)], KfacSettings(inverse_every=1), _FailingBackend(), seed=0)
    kfac.update_factors([rng.standard_normal((9, 3))], [rng.standard_normal((9, 2))])
    kfac.step([rng.standard_normal((2, 3))])
    first = [m.copy() for m in kfac.inverses[0]]
    kfac.update_factors([rng.standard_normal((9, 3))], [rng.standard_normal((9, 2))])
    kfac.step([rng.standard_normal((2, 3))])
    assert all(np.array_equal(a, b) for a, b in zip(first, kfac.inverses[0], strict=True))
    assert [e.error != "" for e in kfac.events] == [False, False, True, True]


# -- inverse backends ----------------------------------------------------------------------
def _factor(path: Path, name: str) -> np.ndarray:
    return next(m for n, m, _ in load_factor_set(path) if n == name)


def test_shipped_factor_sets_load():
    paths = sorted(FACTORS.glob("digits_mlp_damping*.h5"))  # the 64-32-10 MLP's
    assert len(paths) == 2
    assert sum(p.stat().st_size for p in paths) < 400_000
    for path in paths:
        items = load_factor_set(path)
        assert len(items) == 8
        for name, matrix, meta in items:
            assert matrix.shape == (meta["size"], meta["size"]) and meta["size"] <= 65
            np.testing.assert_allclose(matrix, matrix.T, rtol=0, atol=1e-12 * np.abs(matrix).max())
            assert np.linalg.eigvalsh(matrix).min() >= meta["damping"] * (1 - 1e-9)
            assert meta["kind"] in ("A", "G") and meta["step"] in (0, 140)
            assert meta["condition"] == pytest.approx(np.linalg.cond(matrix), rel=1e-6)
            assert name.startswith(f"step{meta['step']:05d}-layer{meta['layer']}")
    with pytest.raises(InputError, match="no such"):
        load_factor_set(FACTORS / "missing.h5")


def test_analog_refine_reaches_its_target_and_single_does_not():
    a = _factor(LOW_DAMPING_SET, "step00140-layer1-A")  # 33 x 33, cond ~20
    config = training_config()
    refined = make_backend("refine", config, 16).invert(a, seed=3)
    single = make_backend("single", config).invert(a, seed=3)
    assert refined.error == "" and single.error == ""
    assert refined.column_bits.min() >= 16
    assert single.column_bits.max() < 12
    exact = np.linalg.inv(a)
    for outcome in (refined, single):  # the reported bits are those of the returned inverse
        error = np.max(np.abs(outcome.inverse - exact), axis=0) / np.max(np.abs(exact), axis=0)
        np.testing.assert_allclose(outcome.column_bits, -np.log2(error))
    assert single.inv_solves >= a.shape[0]  # N unit-vector solves at least
    assert refined.inv_solves > single.inv_solves and refined.statuses == {"converged": 33}


def test_factor_wider_than_a_crossbar_is_split_block_diagonally():
    a = _factor(DEFAULT_SET, "step00000-layer1-A")  # 33 wide
    config = training_config().with_values("array", max_size=16)
    outcome = AnalogInverse(
        config.with_values("simulation", scheme="refine"), wide="diagonal"
    ).invert(a, seed=0)
    assert outcome.blocks == 3 and outcome.error == ""
    edges = [(0, 11), (11, 22), (22, 33)]
    expected = np.zeros_like(a)
    for lo, hi in edges:
        expected[lo:hi, lo:hi] = np.linalg.inv(a[lo:hi, lo:hi])
    np.testing.assert_array_equal(outcome.inverse[expected == 0], 0.0)
    assert np.max(np.abs(outcome.inverse - expected)) <= 2**-16 * np.max(np.abs(expected))


def test_quantised_stand_in_has_the_error_distribution_of_the_analog_path():
    """For every captured factor, the k-bit stand-in's per-column effective bits follow the
    analog single solve with k-bit cells and k-bit ADC; a stand-in two bits off does not."""
    matrices = [m for p in (DEFAULT_SET, LOW_DAMPING_SET) for _, m, _ in load_factor_set(p)]
    analog, stand_in = {}, {}
    for k in (6, 8):
        config = (
            training_config()
            .with_values("simulation", scheme="single")
            .with_values("device", bits=k)
            .with_values("converters", adc_bits=k)
        )
        analog[k] = np.concatenate(
            [AnalogInverse(config).invert(m, seed=i).column_bits for i, m in enumerate(matrices)]
        )
        stand_in[k] = np.concatenate([QuantisedInverse(k).invert(m).column_bits for m in matrices])
    quantiles = [0.1, 0.5, 0.9]
    for k in (6, 8):
        gap = np.abs(np.quantile(analog[k], quantiles) - np.quantile(stand_in[k], quantiles))
        assert gap.max() < 0.75, (k, gap)
    wrong = np.abs(np.quantile(analog[8], 0.5) - np.quantile(stand_in[6], 0.5))
    assert wrong > 1.5


def test_backend_names_and_errors():
    config = training_config()
    assert make_backend("float64", config).name == "float64"
    assert make_backend("krylov", config, 24).name == "analog-krylov@24"
    assert make_backend("single", config, 24).name == "analog-single"
    with pytest.raises(InputError, match="choose float64"):
        make_backend("magic", config)
    with pytest.raises(InputError, match="needs bits"):
        make_backend("quantised", config)


# -- one run -------------------------------------------------------------------------------
def test_a_run_is_a_function_of_its_seed_and_seeds_are_paired():
    spec = TrainingSpec(steps=12, inverse_every=4)
    config = training_config()
    kfac = train_run(spec, Setting("kfac", "float64"), config, seed=run_seed(0, 1))
    again = train_run(spec, Setting("kfac", "float64"), config, seed=run_seed(0, 1))
    other = train_run(spec, Setting("kfac", "float64"), config, seed=run_seed(0, 2))
    np.testing.assert_array_equal(kfac.train_loss, again.train_loss)
    assert not np.array_equal(kfac.train_loss, other.train_loss)
    sgd = train_run(spec, Setting("sgd", lr=1.0), config, seed=run_seed(0, 1))
    assert kfac.train_loss[0] == sgd.train_loss[0]  # same initial weights
    assert kfac.train_loss[-1] < 0.5 * kfac.train_loss[0]
    assert len(kfac.events) == 3 * 4 and sgd.events == []
    assert [e.step for e in kfac.events[::4]] == [0, 4, 8]
    # a 24-bit stand-in trains like float64, step for step
    fine = train_run(spec, Setting("kfac", "quantised", 24), config, seed=run_seed(0, 1))
    np.testing.assert_allclose(fine.train_loss, kfac.train_loss, rtol=1e-4)


def test_float64_kfac_beats_tuned_sgd_and_adam_on_digits():
    """The acceptance claim in small: fewer steps to 95 % test accuracy than the best
    learning rate of each baseline grid (3 seeds, 40 steps)."""
    spec = TrainingSpec(steps=40)
    config = training_config()
    data = digits_dataset("classify", seed=0)

    def mean_steps(setting):
        runs = [
            train_run(spec, setting, config, seed=run_seed(0, i), dataset=data) for i in range(3)
        ]
        return np.mean([min(steps_to(r.test_accuracy, 0.95, above=True), 41) for r in runs])

    kfac = mean_steps(Setting("kfac", "float64"))
    sgd = min(mean_steps(Setting("sgd", lr=lr)) for lr in spec.sgd_lrs)
    adam = min(mean_steps(Setting("adam", lr=lr)) for lr in spec.adam_lrs)
    assert kfac < 0.8 * min(sgd, adam), (kfac, sgd, adam)


def test_autoencoder_and_pooled_inputs():
    spec = TrainingSpec.for_task("autoencode", steps=5, pool=2)
    assert spec.architecture().sizes == (16, 16, 16) and spec.target_loss == 20.0
    record = train_run(spec, Setting("kfac", "float64"), training_config(), seed=0)
    assert np.all(np.isnan(record.test_accuracy))
    assert record.train_loss[-1] < record.train_loss[0]


# -- the driver, the store and the CLI -----------------------------------------------------
def _datasets(path: Path) -> dict[str, np.ndarray]:
    """Every dataset outside /timing (the reproducible part of a training file)."""
    out = {}
    with h5py.File(path) as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith("timing"):
                out[name] = obj.asstr()[()] if h5py.check_string_dtype(obj.dtype) else obj[()]

        f.visititems(visit)
    return out


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


def test_interrupted_grid_resumes_to_the_same_file_as_one_run(tmp_path, monkeypatch):
    spec, config = tiny_spec(), training_config()
    whole = run_training(spec, config, tmp_path / "whole.h5", workers=1, stream=sys.stderr)
    assert whole.stored == whole.total == 8 and not whole.interrupted
    real, calls = run_module.execute_run, []

    def interrupt_on_the_fifth(task):
        calls.append(task.index)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(run_module, "execute_run", interrupt_on_the_fifth)
    part = run_training(spec, config, tmp_path / "part.h5", workers=1, stream=sys.stderr)
    assert part.interrupted and part.stored == 4
    monkeypatch.setattr(run_module, "execute_run", real)
    with pytest.raises(InputError, match="exists"):
        run_training(spec, config, tmp_path / "part.h5", workers=1)
    with pytest.raises(InputError, match="steps: stored 6, given 7"):
        run_training(replace(spec, steps=7), config, tmp_path / "part.h5", resume=True)
    done = run_training(spec, config, tmp_path / "part.h5", workers=1, resume=True)
    assert done.ran == 4 and done.stored == 8
    _same(_datasets(tmp_path / "whole.h5"), _datasets(tmp_path / "part.h5"))
    results = load_training(tmp_path / "part.h5")
    assert [s["stored"] for s in results.sessions] == [4, 4]
    assert results.attrs["format"] == "rerinv-training" and "numpy_version" in results.attrs


@pytest.mark.slow
def test_two_workers_write_the_same_file_as_one(tmp_path):
    spec, config = tiny_spec(backends=("float64", "single")), training_config()
    run_training(spec, config, tmp_path / "one.h5", workers=1)
    run_training(spec, config, tmp_path / "two.h5", workers=2)
    _same(_datasets(tmp_path / "one.h5"), _datasets(tmp_path / "two.h5"))


def test_cli_train_writes_file_report_and_steps_json(tmp_path):
    out = tmp_path / "grid.h5"
    args = ["train", "--out", str(out), "--steps", "6", "--seeds", "2", "--inverse-every", "3"]
    args += ["--backends", "float64,single", "--bits", "8", "--sgd-lrs", "1", "--adam-lrs", "0.1"]
    args += ["--damping", "0.003", "--noise", "ideal", "--cell-bits", "8"]
    assert rerinv_main([*args, "--workers", "1"]) == 0
    results = load_training(out)
    assert results.done.all() and len(results.settings) == 4
    assert results.config.simulation.engine == "nodal"
    assert "rerinv train --out" in results.attrs["command_line"]
    single = [k for k, s in enumerate(results.settings) if s.backend == "single"][0]
    runs = results.setting_index == single
    assert np.all(results.events["inv_solves"][runs] > 0)
    assert np.all(results.events["min_bits"][runs] < 10)
    report = (tmp_path / "grid.html").read_text()
    assert report.count("<img") >= 5 and "kfac single" in report and "tuned" in report
    steps = json.loads((tmp_path / "grid-steps.json").read_text())
    assert steps["format"] == "rerinv-training-steps" and steps["network"] == "64-32-10"
    first = steps["targets"][0]
    assert first["metric"] == "val_accuracy" and set(first["baselines"]) == {"sgd", "adam"}
    metrics = [t["metric"] for t in steps["targets"]]
    assert metrics == ["val_accuracy", "test_accuracy", "train_loss"]
    labels = [s["label"] for s in first["settings"]]
    assert labels == ["kfac float64", "kfac single-8bit"]
    assert steps["tuning"]["kfac"]["budget"] == steps["tuning"]["sgd"]["budget"] == 1
    assert steps["per_network"] == {"mlp": steps["second_order_vs_sgd"]}
    assert all("ratio_vs_sgd" in s and "ratio_vs_adam_ci95" in s for s in first["settings"])
    assert steps_summary(results) == steps
    assert steps["second_order_vs_sgd"] == steps["by_setting"]["kfac float64"]["sgd"]
    from rerinv.system import load_steps_ratio  # the timing model reads the file as it is

    ratio, source = load_steps_ratio(str(tmp_path / "grid-steps.json"))
    assert ratio == steps["second_order_vs_sgd"] and "kfac float64" in source
    assert rerinv_main([*args, "--workers", "1", "--resume", "--no-report"]) == 0  # no run left
    assert rerinv_main(["train-report", str(out), "--out", str(tmp_path / "r.html")]) == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--backends", "float64,magic"], "unknown K-FAC inverse backend 'magic'"),
        (["--set", "device.bits=99"], "device.bits"),
        (["--bits", "1"], "bits must be between 2 and 48"),
        (["--seed", "-1"], "a seed is an integer in [0, 2**63)"),
        (["--seeds", "0"], "expected a whole number >= 1"),
    ],
)
def test_cli_train_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, message):
    try:
        code = rerinv_main(["train", "--out", str(tmp_path / "x.h5"), *extra])
    except SystemExit as exc:  # argparse's own errors exit from inside
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.h5").exists()


def test_ctrl_c_stops_cleanly_with_exit_130_and_a_resume_hint(tmp_path):
    out = tmp_path / "grid.h5"
    cmd = [sys.executable, "-m", "rerinv", "train", "--out", str(out), "--steps", "20"]
    cmd += ["--seeds", "2", "--backends", "single", "--sgd-lrs", "1", "--adam-lrs", "0.1"]
    cmd += ["--damping", "0.003", "--noise", "ideal", "--cell-bits", "8"]
    cmd += ["--workers", "1", "--no-report"]  # analog runs of ~1 s: time to interrupt one
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not _some_run_stored(out):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr
    results = load_training(out)  # closed cleanly: readable
    assert 0 < results.done.sum() < results.done.size
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert load_training(out).done.all()


def _some_run_stored(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        with h5py.File(path, "r", locking=False) as f:
            return bool(f["runs/done"][...].any())
    except (OSError, KeyError):
        return False


# -- ngspice end to end --------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.spice
def test_ngspice_training_run_matches_nodal_step_by_step():
    """A small network (4x4 pooled digits, 16-8-10) trained with every factor inverse from
    ngspice INV solves gives the nodal run's losses, step by step."""
    pytest.importorskip("PySpice")
    spec = TrainingSpec(pool=2, hidden=(8,), steps=20, inverse_every=5)
    setting = Setting("kfac", "refine", 16)
    nodal = train_run(spec, setting, training_config(), seed=run_seed(0, 0))
    spice_config = training_config().with_values("simulation", engine="spice")
    spice = train_run(spec, setting, spice_config, seed=run_seed(0, 0))
    np.testing.assert_allclose(spice.train_loss, nodal.train_loss, rtol=1e-6)
    assert min(e.min_bits for e in spice.events) >= 16
    assert sum(e.inv_solves for e in spice.events) > 0
    assert not math.isnan(spice.train_loss[-1])
