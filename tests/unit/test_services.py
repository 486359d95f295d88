import pytest

from ocean.errors import OceanError
from ocean.services import SERVICES, get, select


def test_default_selection_is_every_service_with_the_live_color_only():
    names = [s.name for s in select(None)]
    assert "shop-blue" in names and "shop-green" not in names
    assert len(names) == len(SERVICES) - 1
    names = [s.name for s in select(None, live="green")]
    assert "shop-green" in names and "shop-blue" not in names


def test_dependencies_come_along_in_stack_order():
    names = [s.name for s in select("shop-blue")]
    assert names == ["postgres", "redis-master", "shop-blue"]
    assert [s.name for s in select("redis-replica")] == ["redis-master", "redis-replica"]


def test_unknown_service_names_the_known_ones():
    with pytest.raises(OceanError, match=r"unknown service nope: choose from postgres, "):
        select("postgres,nope")
    with pytest.raises(OceanError, match="unknown service"):
        get("nope")
