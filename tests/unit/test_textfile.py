"""The toolkit's textfile metrics: names, HELP/TYPE, atomic rewrites, kept labels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ocean import textfile
from ocean.config import PortPlan, Settings

AT = 1_764_300_000.5


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path, ports=PortPlan(30000))


def _parse(path: Path) -> dict[str, list[tuple[dict, float]]]:
    text = path.read_text()
    for name in {line.split()[0].split("{")[0] for line in text.splitlines() if line[0] != "#"}:
        assert f"# HELP {name} " in text and f"# TYPE {name} gauge" in text
    return {
        family.name: [(s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


def test_deploy_keeps_each_color_and_one_version_per_color(settings: Settings):
    textfile.record_deploy(settings, "blue", "1.0", "success", at=AT)
    textfile.record_deploy(settings, "green", "1.1", "failed", at=AT + 1)
    path = textfile.record_deploy(settings, "blue", "1.2", "success", at=AT + 2)
    assert path == settings.data / "textfile" / "ocean_deploy.prom"
    metrics = _parse(path)
    stamps = {
        (lab["color"], lab["outcome"]): v
        for lab, v in metrics["ocean_deploy_last_timestamp_seconds"]
    }
    assert stamps == {("blue", "success"): AT + 2, ("green", "failed"): AT + 1}
    assert metrics["ocean_deploy_info"] == [({"color": "blue", "version": "1.2"}, 1.0)]


def test_backup_only_a_success_moves_the_timestamp(settings: Settings):
    textfile.record_backup(settings, "nightly-1", 2048, success=True, at=AT)
    path = textfile.record_backup(settings, "nightly-2", 0, success=False, at=AT + 60)
    metrics = _parse(path)
    assert metrics["ocean_backup_last_success_timestamp_seconds"] == [({}, AT)]
    assert metrics["ocean_backup_size_bytes"] == [({}, 2048.0)]


def test_restore_test(settings: Settings):
    metrics = _parse(textfile.record_restore_test(settings, False, 12.5, at=AT))
    assert metrics["ocean_restore_test_success"] == [({}, 0.0)]
    assert metrics["ocean_restore_test_timestamp_seconds"] == [({}, AT)]
    assert metrics["ocean_restore_test_duration_seconds"] == [({}, 12.5)]


def test_loadtest_keeps_other_scenarios(settings: Settings):
    textfile.record_loadtest(settings, "browse", True, 0.120, 850.0, at=AT)
    path = textfile.record_loadtest(settings, 'checkout "peak"', False, 0.9, 120.0, at=AT + 5)
    metrics = _parse(path)
    passed = {lab["scenario"]: v for lab, v in metrics["ocean_loadtest_passed"]}
    assert passed == {"browse": 1.0, 'checkout "peak"': 0.0}
    assert {lab["scenario"]: v for lab, v in metrics["ocean_loadtest_p99_seconds"]} == {
        "browse": 0.12,
        'checkout "peak"': 0.9,
    }
    assert (
        len(metrics["ocean_loadtest_rps"]) == len(metrics["ocean_loadtest_timestamp_seconds"]) == 2
    )


def test_one_file_per_producer_and_no_temp_files_left(settings: Settings):
    textfile.record_deploy(settings, "blue", "1.0", "success", at=AT)
    textfile.record_backup(settings, "b", 1, True, at=AT)
    textfile.record_restore_test(settings, True, 1.0, at=AT)
    textfile.record_loadtest(settings, "browse", True, 0.1, 1.0, at=AT)
    names = sorted(p.name for p in (settings.data / "textfile").iterdir())
    assert names == [
        "ocean_backup.prom",
        "ocean_deploy.prom",
        "ocean_loadtest.prom",
        "ocean_restore_test.prom",
    ]


def test_write_is_atomic_a_failed_write_leaves_the_old_file(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    path = textfile.record_restore_test(settings, True, 1.0, at=AT)
    before = path.read_text()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        textfile.record_restore_test(settings, False, 2.0, at=AT + 1)
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_timestamp_defaults_to_now(settings: Settings):
    metrics = _parse(textfile.record_restore_test(settings, True, 1.0))
    [(_, value)] = metrics["ocean_restore_test_timestamp_seconds"]
    assert value > 1_700_000_000


def test_page_load_keeps_the_last_browser_run(settings: Settings):
    textfile.record_page_load(settings, {"home": {"load": 300.0, "lcp": 120.0}}, at=5)
    path = textfile.record_page_load(settings, {"cart": {"load": 250.0}}, at=7)
    text = path.read_text()
    assert 'ocean_page_load_p95_seconds{metric="load",page="cart"} 0.25' in text
    assert 'page="home"' not in text  # the last run only
    assert "ocean_page_load_timestamp_seconds 7" in text
