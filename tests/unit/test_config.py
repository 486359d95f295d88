import pytest

from ocean.config import PORT_OFFSETS, PortPlan, Settings
from ocean.errors import OceanError


def test_port_offsets_are_unique():
    assert len(set(PORT_OFFSETS.values())) == len(PORT_OFFSETS)


def test_env_sets_state_dir_and_port_base(tmp_path):
    settings = Settings.from_env({"OCEAN_STATE_DIR": str(tmp_path), "OCEAN_PORT_BASE": "21000"})
    assert settings.state_dir == tmp_path
    assert settings.ports["nginx"] == 21000
    assert settings.ports["postgres"] == 21000 + PORT_OFFSETS["postgres"]
    assert settings.logs == tmp_path / "logs"


def test_default_state_dir_is_in_the_checkout():
    settings = Settings.from_env({})
    assert settings.state_dir.name == ".ocean"
    assert (settings.state_dir.parent / "pyproject.toml").exists()


@pytest.mark.parametrize("raw", ["abc", "80", "65530"])
def test_bad_port_base_is_one_clear_error(raw):
    with pytest.raises(OceanError, match="OCEAN_PORT_BASE"):
        Settings.from_env({"OCEAN_PORT_BASE": raw})


def test_port_plan_as_dict_covers_every_offset():
    plan = PortPlan(30000).as_dict()
    assert plan["blackbox-exporter"] == 30000 + PORT_OFFSETS["blackbox-exporter"]
