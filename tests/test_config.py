import pytest

from rerinv.cli import main
from rerinv.config import Config, load_config
from rerinv.errors import ConfigError


def test_default_round_trips_through_toml():
    config = Config()
    assert Config.from_toml(config.to_toml()) == config
    assert config.device.bits == 8 and config.converters.dac_bits == 6
    assert config.opamp.model == "single_pole" and config.opamp.gain == 1e5


def test_overrides_are_typed():
    config = Config().with_overrides(
        ["device.sigma_rel=0.01", "device.bits=4", "opamp.model=ideal"]
    )
    assert config.device.sigma_rel == 0.01
    assert config.device.bits == 4 and isinstance(config.device.bits, int)
    assert config.opamp.model == "ideal"
    assert Config().device.sigma_rel == 0.0  # frozen: the default is untouched


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("device.nonsense=1", "unknown key device.nonsense"),
        ("nowhere.bits=1", "unknown section 'nowhere'"),
        ("device.bits=2.5", "device.bits must be a finite int"),
        ("device.g_min=abc", "device.g_min must be a finite float"),
        ("device.g_max=1e-7", "must exceed device.g_min"),
        ("device.p_stuck_low=2", "probability"),
        ("opamp.model=magic", "opamp.model must be one of"),
        ("opamp.gain=-5", "opamp.gain must be positive"),
        ("bits", "expected section.key=value"),
    ],
)
def test_bad_overrides_say_what_is_wrong(override, message):
    with pytest.raises(ConfigError, match=message):
        Config().with_overrides([override])


def test_load_from_file_and_unknown_section(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[device]\nbits = 3\n[array]\nr_wire = 1.73\n")
    config = load_config(path, ["device.sigma_abs=0.02"])
    assert (config.device.bits, config.array.r_wire, config.device.sigma_abs) == (3, 1.73, 0.02)
    path.write_text("[dvice]\nbits = 3\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(path)
    path.write_text("[device\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_cli_config_show(capsys):
    assert main(["config", "show", "--set", "device.bits=5"]) == 0
    shown = capsys.readouterr().out
    assert Config.from_toml(shown).device.bits == 5


def test_cli_reports_bad_override(capsys):
    assert main(["config", "show", "--set", "device.bogus=1"]) == 2
    assert "unknown key device.bogus" in capsys.readouterr().err
