"""The report half of `rerinv timing`: the tornado against one-point evaluations, what a claim
would need, the verdict rows, the figures and the page's order."""

import json
import struct

import numpy as np
import pytest

from rerinv.cli import main
from rerinv.system import evaluate, inv_timing, load_arch, load_workload, solve_cost
from rerinv.system.arch import ARCH_FIELDS, preset_path
from rerinv.system.plots import DPI, WIDTH_IN, duration, energy_text
from rerinv.system.report import timing_study, write_report
from rerinv.system.tables import verdict_rows
from rerinv.system.tornado import CLAIMS, requirements, tornado
from rerinv.system.workloads import with_training

NETWORKS = ("resnet50", "bert-base")


@pytest.fixture(scope="module", params=["repast", "calibrated"])
def setup(request):
    arch = load_arch(request.param)
    card = None
    if request.param == "calibrated":
        card = json.loads(preset_path("calibrated_card.json").read_text())
    workloads = [load_workload(n) for n in NETWORKS]
    return arch, workloads, card, tornado(arch, workloads, card)


def _means(arch, workloads, card, *, cost_factor=1.0, ratio=None) -> dict:
    cost, timing = solve_cost(arch, card), inv_timing(arch, card)
    if cost_factor != 1.0:
        cost = cost.with_passes(cost.passes * cost_factor)
    out = {c: [] for c in CLAIMS}
    for w in workloads:
        if ratio is not None:
            w = with_training(w, steps_ratio=ratio[w.name] if isinstance(ratio, dict) else ratio)
        r = evaluate(arch, w, cost, timing)
        for claim, (kind, key, _, _) in CLAIMS.items():
            out[claim].append(float(r[kind][key]))
    return {c: float(np.mean(v)) for c, v in out.items()}


def test_tornado_points_equal_one_change_evaluations(setup):
    """The vectorised tornado gives what changing one input alone gives."""
    arch, workloads, card, t = setup
    base = _means(arch, workloads, card)
    for claim in CLAIMS:
        assert t["claims"][claim]["base"] == pytest.approx(base[claim], rel=1e-12)
    rows = {r["name"]: r for r in t["assumptions"]}
    for name in ("chip.tiles", "gpu.power_w", "crossbar.read_cycle_s"):
        for side in ("low", "high"):
            value = rows[name][side]
            value = int(value) if float(value).is_integer() and name == "chip.tiles" else value
            got = _means(arch.with_values({name: value}), workloads, card)
            for claim in CLAIMS:
                assert rows[name]["results"][claim][side] == pytest.approx(got[claim], rel=1e-9)
    for side in ("low", "high"):
        got = _means(arch, workloads, card, cost_factor=rows["scale.solve_costs"][side])
        assert rows["scale.solve_costs"]["results"]["speedup_vs_gpu"][side] == pytest.approx(
            got["speedup_vs_gpu"], rel=1e-9
        )
        item = rows["training.steps_ratio"]
        ratio = item[side]
        if "per_network" in item:  # each network to its own end
            ratio = {n: ends[side == "high"] for n, ends in item["per_network"].items()}
        got = _means(arch, workloads, card, ratio=ratio)
        assert rows["training.steps_ratio"]["results"]["speedup_vs_pipelayer"][
            side
        ] == pytest.approx(got["speedup_vs_pipelayer"], rel=1e-9)


def test_tornado_is_sorted_and_says_what_moves_nothing(setup):
    arch, workloads, card, t = setup
    swings = [r["swing_log"] for r in t["assumptions"]]
    assert swings == sorted(swings, reverse=True) and swings[0] > 0.1
    assert t["averaged_over"] == list(NETWORKS)
    for name in t["no_effect"]:
        assert name not in {r["name"] for r in t["assumptions"]}
    # the GPU's power moves the energy ratios against the GPU and nothing else
    power = next(r for r in t["assumptions"] if r["name"] == "gpu.power_w")
    res = power["results"]
    assert res["speedup_vs_gpu"]["low"] == pytest.approx(t["claims"]["speedup_vs_gpu"]["base"])
    assert res["energy_saving_vs_gpu"]["high"] == pytest.approx(
        t["claims"]["energy_saving_vs_gpu"]["base"] * power["high"] / power["base"]
    )


def test_what_a_claim_needs_is_what_a_plain_evaluation_gives(setup):
    """Where `requirements` names a value, setting that one assumption to it reaches the
    paper's number (a plain evaluation); where it names none, neither end of its scan does."""
    arch, workloads, card, t = setup
    needs = requirements(arch, workloads, card, t, top=3)
    checked = 0
    for claim, rows in needs.items():
        paper = CLAIMS[claim][2]
        for row in rows:
            if not row["name"].startswith(("chip.", "gpu.", "crossbar.")):
                continue
            if row["reaches"] is None:
                assert not row["best_in_scan"] >= paper
                values = [row["base"] / 256, row["base"] * 256]
                if _whole(row["name"]):
                    values = [max(1, round(v)) for v in values]
                if row["name"].endswith("efficiency"):
                    values = [min(v, 1.0) for v in values]
                for value in values:
                    got = _means(arch.with_values({row["name"]: value}), workloads, card)[claim]
                    assert not got >= paper, (row["name"], value, got)
            else:
                value = row["reaches"]["value"]
                if _whole(row["name"]):
                    value = int(round(value))
                got = _means(arch.with_values({row["name"]: value}), workloads, card)[claim]
                assert got >= paper * (1 - 1e-9) and got == pytest.approx(row["reaches"]["metric"])
            checked += 1
    assert checked >= 1


def _whole(name: str) -> bool:
    section, _, key = name.partition(".")
    return any(f[0] == key and f[1] == "int" for f in ARCH_FIELDS[section])


def test_the_favourable_corner_takes_each_assumptions_better_end(setup):
    _, _, _, t = setup
    rows = {r["name"]: r for r in t["assumptions"]}
    for claim, corner in t["favourable_corner"].items():
        assert set(corner["settings"]) == set(rows)
        for name, value in corner["settings"].items():
            r = rows[name]
            end = "low" if value == r["low"] else "high"
            other = "high" if end == "low" else "low"
            assert r["results"][claim][end] >= r["results"][claim][other]


def test_verdict_rows_put_the_model_beside_each_claim(setup):
    arch, workloads, card, _ = setup
    study = timing_study(arch, workloads, card)
    rows = verdict_rows(study)
    assert [r["paper"] for r in rows] == [115.8, 11.4, 41.9, 12.8]
    a = study["averages"]
    assert rows[0]["model"] == a["speedup_vs_gpu_kfac"]["mean"]
    assert rows[3]["model"] == a["energy_saving_vs_reram_sgd"]["mean"]
    assert all(len(r["deciding"]) == 3 and r["needs"] for r in rows)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_figures_fit_the_column_and_the_page_opens_with_the_verdict(tmp_path):
    arch = load_arch("repast")
    workloads = [load_workload(n) for n in NETWORKS]
    study = timing_study(arch, workloads, None, sweeps={"crossbar_size": [64.0, 128.0, 256.0]})
    assert study["sweep_axes"]["crossbar_size"]["operating_point"] == 256
    paths = write_report(study, tmp_path)
    assert {"speedup", "phases", "energy", "tornado", "sweep_crossbar_size"} <= set(paths)
    for key, path in paths.items():
        if path.suffix == ".png":
            width, height = _png_size(path.read_bytes())
            assert width <= WIDTH_IN * DPI + 1 and height < 1000, (key, width, height)
    page = paths["html"].read_text()
    assert page.index("Verdict on RePAST") < page.index("<img")
    assert "115.8x" in page and "max-width:100%" in page


def test_units_that_keep_numbers_readable():
    assert duration(30) == "30 s" and duration(7200) == "2 h" and duration(86400 * 3) == "3 d"
    assert energy_text(3.6e6) == "1 kWh" and energy_text(5.0) == "5 J"


def test_no_tornado_flag(tmp_path, capsys):
    out = tmp_path / "t"
    code = main(["timing", "--workload", "resnet50", "--no-plots", "--no-tornado", "--out",
                 str(out)])  # fmt: skip
    assert code == 0
    assert "tornado" not in json.loads((out / "timing.json").read_text())
    code = main(["timing", "--workload", "resnet50", "--no-plots", "--out", str(out), "--force"])
    assert code == 0 and "decided by" in capsys.readouterr().out
    assert json.loads((out / "timing.json").read_text())["tornado"]["assumptions"]


def test_the_verdict_table_is_generated_between_its_markers(tmp_path):
    from rerinv.system import verdict

    by_preset = verdict.studies()
    table = verdict.markdown(by_preset)
    rows = table.splitlines()
    assert len(rows) == 6 and [r.split(" | ")[1] for r in rows[2:]] == [
        "115.8x", "11.4x", "41.9x", "12.8x"
    ]  # fmt: skip
    mean = by_preset["calibrated"]["averages"]["speedup_vs_gpu_kfac"]["mean"]
    assert f"**{mean:.3g}x**" in rows[2]
    doc = tmp_path / "t.md"
    doc.write_text(f"# t\n\n{verdict.BEGIN}\nold\n{verdict.END}\n\nafter\n")
    verdict.update(doc, table)
    assert doc.read_text() == f"# t\n\n{verdict.BEGIN}\n{table}\n{verdict.END}\n\nafter\n"
    (tmp_path / "none.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="no <!-- BEGIN verdict -->"):
        verdict.update(tmp_path / "none.md", table)
