"""The compose runtime without an engine: the override it renders, its env file, the
compose command lines, the engine's safe config, and the clear errors (issue 8).

`docker compose config` runs when the pinned Compose binary is installed (it is a
project dependency, so normally it is): it merges the production file with the
rendered override and must leave every service on host networking with local images.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from pathlib import Path

import pytest
import yaml

from ocean import secrets
from ocean.config import REPO_ROOT, PortPlan, Settings
from ocean.errors import OceanError
from ocean.model import Build
from ocean.runtime import compose_files, engine, launch, make_runtime
from ocean.runtime.compose import ComposeRuntime, compose_binary
from ocean.services import BY_NAME, SERVICES, select


class _NoEngine(engine.Engine):
    """An engine that is not running (and cannot be reached)."""

    def pid(self) -> int | None:
        return None

    def answers(self) -> bool:
        return False

    def has_image(self, image: str) -> bool:
        return False


@pytest.fixture
def runtime(tmp_path: Path) -> ComposeRuntime:
    settings = Settings(state_dir=tmp_path / "state", ports=PortPlan(24000))
    rt = ComposeRuntime(settings, _NoEngine(tmp_path / "engine"))
    rt._initdb = lambda: iter(())  # type: ignore[method-assign]  # needs an engine
    return rt


@pytest.fixture
def prepared(runtime: ComposeRuntime) -> ComposeRuntime:
    list(runtime.prepare(select(None)))
    return runtime


def _compose_available() -> bool:
    try:
        compose_binary()
    except OceanError:
        return False
    return True


def test_make_runtime_builds_compose(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, ports=PortPlan(24000))
    assert make_runtime("compose", settings).name == "compose"


def test_override_puts_every_service_on_host_networking(prepared: ComposeRuntime) -> None:
    text = prepared.override_file.read_text()
    assert prepared.override_file.stat().st_mode & 0o777 == 0o600
    services = yaml.safe_load(text.replace("!reset", "").replace("!override", ""))["services"]
    assert set(services) == {s.name for s in SERVICES}
    for name, spec in services.items():
        assert spec["network_mode"] == "host", name
        assert spec["image"].startswith("ocean-local/"), name
    assert "networks:" not in text.replace("networks: !reset {}", "")


def test_override_uses_the_port_plan_and_state_dir(prepared: ComposeRuntime) -> None:
    by_name = {s.name: s for s in prepared.local_services()}
    ports = prepared.settings.ports
    assert f"port={ports['postgres']}" in by_name["postgres"].command
    assert by_name["shop-blue"].env["SHOP_PORT"] == str(ports["shop-blue"])
    assert by_name["shop-green"].env["SHOP_PORT"] == str(ports["shop-green"])
    assert str(ports["redis-replica"]) in " ".join(by_name["redis-replica"].healthcheck)
    # nginx, after a stale stub_status socket is removed (runtime/scrape_sockets.py),
    # runs through the launcher (the image's python3, the core mounted read-only), which
    # reaps nothing (no --port) and makes that socket private again after nginx's chmod.
    nginx = by_name["nginx"]
    status_socket = str(prepared.scrape_sockets().nginx_status)
    assert nginx.command[:2] == ["/bin/sh", "-c"] and nginx.command[3] == status_socket
    launcher = nginx.command[4:]
    assert launcher[:3] == ["python3", "-P", str(Path(launch.__file__).resolve())]
    assert launcher[3:6] == [f"--private-socket={status_socket}", "--", "/usr/sbin/nginx"]
    assert not any(arg.startswith("--port") for arg in launcher)
    core = str(Path(launch.__file__).resolve().parents[2])
    assert f"{core}:{core}:ro" in nginx.volumes and nginx.env["PYTHONPATH"] == core
    # As root: the nginx exporter as nginx's worker user, who owns the sockets' directory.
    nobody = pwd.getpwnam("nobody")
    if os.geteuid() == 0:
        assert by_name["nginx-exporter"].user == f"{nobody.pw_uid}:{nobody.pw_gid}"
    state = str(prepared.settings.state_dir)
    assert f"{state}:{state}" in by_name["prometheus"].volumes
    assert by_name["postgres"].stop_signal == "SIGINT"
    assert by_name["postgres"].user not in (None, "0:0")
    # The alert inbox: its own image, as the state dir's owner (the certificate's key is
    # 0600), only the TLS dir and its store mounted, its ports from the plan.
    inbox = by_name["alert-inbox"]
    assert inbox.image.startswith("ocean-local/inbox:")
    assert inbox.command == ["python", "-m", "ocean_inbox"]
    assert inbox.user == f"{os.getuid()}:{os.getgid()}"
    assert inbox.env["INBOX_SMTP_PORT"] == str(ports["alert-smtp"])
    assert inbox.env["INBOX_HTTP_PORT"] == str(ports["alert-webhook"])
    assert f"{state}:{state}" not in inbox.volumes
    assert str(ports["alert-webhook"]) in " ".join(inbox.healthcheck)


def test_every_container_starts_under_umask_077(prepared: ComposeRuntime) -> None:
    """Containers write into the bind-mounted state dir as root, postgres, nobody or the
    shop's uid, with Docker's umask 022 unless told: each service's command is its
    program behind `umask 077 && exec` (issue 25, Medium 4), as supervisord does locally."""
    text = prepared.override_file.read_text().replace("!reset", "").replace("!override", "")
    rendered = yaml.safe_load(text)["services"]
    for service in prepared.local_services():
        command = rendered[service.name]["command"]
        assert command == ["/bin/sh", "-c", 'umask 077 && exec "$0" "$@"', *service.command]
    # What the wrapper does, run here: the program gets the umask and its own argv.
    wrapped = compose_files.private_umask(["/bin/sh", "-c", 'umask; echo "$@"', "sh", "a b", "c"])
    ran = subprocess.run(wrapped, capture_output=True, text=True, check=True)
    assert ran.stdout.splitlines() == ["0077", "a b c"]


def test_env_file_declares_every_template_variable(prepared: ComposeRuntime) -> None:
    text = prepared.env_path.read_text()
    names = [line.split("=", 1)[0] for line in text.splitlines()]
    template = compose_files.ENV_TEMPLATE.read_text()
    for name in names:
        assert f"\n{name}=" in "\n" + template
    values = dict(line.split("=", 1) for line in text.splitlines())
    assert values["POSTGRES_PASSWORD"] == prepared._secret("POSTGRES_PASSWORD")
    assert prepared.env_path.stat().st_mode & 0o777 == 0o600


def test_compose_command_names_project_files_env_and_idle_color_profile(tmp_path: Path) -> None:
    argv = compose_files.compose_command(
        ["docker-compose"],
        "ocean-x",
        [compose_files.PROD_FILE, tmp_path / "o.yml"],
        tmp_path / "c.env",
        "up",
        "--detach",
        "postgres",
    )
    assert argv[:3] == ["docker-compose", "--project-name", "ocean-x"]
    assert argv[argv.index("--env-file") + 1] == str(tmp_path / "c.env")
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--file"] == [
        str(compose_files.PROD_FILE),
        str(tmp_path / "o.yml"),
    ]
    assert argv[-3:] == ["up", "--detach", "postgres"]
    assert "green" in argv


def test_project_name_differs_per_state_dir(tmp_path: Path) -> None:
    a = Settings(state_dir=tmp_path / "a", ports=PortPlan(24000))
    b = Settings(state_dir=tmp_path / "b", ports=PortPlan(24000))
    assert compose_files.project_name(a) != compose_files.project_name(b)


def test_profile_services_are_the_ones_without_a_local_build() -> None:
    skipped = compose_files.profile_only()
    assert set(skipped) == {"grafana", "jaeger", "loki", "promtail"}
    assert not set(skipped) & set(BY_NAME)


def test_healthchecks_match_the_probes() -> None:
    assert compose_files.healthcheck_test(BY_NAME["postgres"], "127.0.0.1", 5)[1] == "pg_isready"
    http = compose_files.healthcheck_test(BY_NAME["prometheus"], "127.0.0.1", 9)
    assert http[-1] == "http://127.0.0.1:9/-/ready"
    shop = compose_files.healthcheck_test(BY_NAME["shop-blue"], "127.0.0.1", 8, python=True)
    assert shop[1] == "python" and "/readyz" in shop[-1]


@pytest.mark.skipif(not _compose_available(), reason="the pinned Compose binary is not installed")
def test_docker_compose_config_merges_to_host_networking(prepared: ComposeRuntime) -> None:
    argv = compose_files.compose_command(
        compose_binary(),
        prepared.project,
        [compose_files.PROD_FILE, prepared.override_file],
        prepared.env_path,
        "config",
        "--format",
        "json",
    )
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    merged = json.loads(result.stdout)
    assert not merged.get("networks")
    assert not merged.get("volumes")  # nothing the local stack would create on the engine
    for name, spec in merged["services"].items():
        assert spec["network_mode"] == "host", name
        assert not spec.get("ports") and not spec.get("build") and not spec.get("depends_on")


@pytest.mark.skipif(not _compose_available(), reason="the pinned Compose binary is not installed")
def test_production_file_passes_compose_config_with_the_template() -> None:
    argv = [
        *compose_binary(),
        "--file",
        str(compose_files.PROD_FILE),
        "--env-file",
        str(compose_files.ENV_TEMPLATE),
        "--profile",
        "observability",
        "--profile",
        "green",
        "config",
        "--quiet",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_engine_not_running_names_the_fix(runtime: ComposeRuntime) -> None:
    with pytest.raises(OceanError, match="not running: start it with `invoke engine --start`"):
        list(runtime.check(select(None), install=False))
    assert not runtime.compose_dir.exists()  # nothing half-made


def test_missing_image_names_the_fix(runtime: ComposeRuntime, monkeypatch) -> None:
    monkeypatch.setattr(_NoEngine, "pid", lambda self: 1)
    monkeypatch.setattr(_NoEngine, "answers", lambda self: True)
    monkeypatch.setattr(_NoEngine, "networks", lambda self: ["host", "none"])
    with pytest.raises(OceanError, match="is missing: build the local images with `invoke engine"):
        list(runtime.check(select(None), install=False))


def test_each_color_runs_the_image_of_its_build(prepared: ComposeRuntime) -> None:
    """A deploy chooses a build for one color: only that color's service changes image
    (and version), the other keeps the checkout's."""
    release = Build(id="dir-0123456789abcdef", version="/tmp/r2", label="r2-01234567", python="")
    prepared.spec.builds_file.write_text(json.dumps({"green": release.as_dict()}))
    prepared.apply_build_choice()
    services = yaml.safe_load(
        prepared.override_file.read_text().replace("!reset", "").replace("!override", "")
    )["services"]
    assert services["shop-green"]["image"] == "ocean-local/shop:dir-0123456789abcdef"
    assert services["shop-green"]["environment"]["SHOP_VERSION"] == "r2-01234567"
    assert services["shop-blue"]["image"] == engine.shop_image(prepared.shop_tag())


def test_unknown_version_is_refused_before_any_build(runtime: ComposeRuntime) -> None:
    with pytest.raises(OceanError, match="unknown version 'no-such-ref'"):
        list(runtime.build("no-such-ref"))


def test_engine_config_keeps_networking_off(tmp_path: Path) -> None:
    config = engine.daemon_config(tmp_path / "engine")
    assert config["bridge"] == "none"
    for key in ("iptables", "ip-forward", "ip-masq", "userland-proxy"):
        assert config[key] is False, key
    assert config["data-root"].startswith(str(tmp_path))


def test_engine_root_inside_the_checkout_is_refused() -> None:
    with pytest.raises(OceanError, match="inside the checkout"):
        engine.daemon_config(REPO_ROOT / ".ocean" / "docker")


def test_apt_mirror_from_deb822_and_one_line_sources(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n")
    legacy = tmp_path / "sources.list"
    legacy.write_text("deb [arch=amd64] http://other.example/debian/ bookworm main\n")
    assert engine.apt_mirror([deb822]) == "http://mirror.example/debian"
    assert engine.apt_mirror([legacy]) == "http://other.example/debian"
    assert engine.apt_mirror([tmp_path / "missing"]) == engine.DEFAULT_MIRROR


def test_procedures_never_branch_on_the_runtime() -> None:
    """The runtime differences live in the adapters (issue 8's import contract)."""
    for path in (REPO_ROOT / "src" / "ocean" / "procedures").glob("*.py"):
        text = path.read_text()
        for needle in ("runtime.name ==", "runtime.name !=", "isinstance(runtime", "Compose"):
            assert needle not in text, f"{path.name}: {needle}"


def test_healthchecks_authenticate_without_a_secret_in_the_command(
    prepared: ComposeRuntime,
) -> None:
    values = secrets.load_or_create(prepared.settings.secrets_file)
    by_name = {s.name: s for s in prepared.local_services()}
    for name in ("redis-master", "redis-replica"):
        # redis-cli reads REDISCLI_AUTH from the container's environment.
        assert by_name[name].env["REDISCLI_AUTH"] == values["REDIS_PASSWORD"]
    prometheus = by_name["prometheus"].healthcheck
    netrc = prometheus[prometheus.index("--netrc-file") + 1]
    assert netrc == str(prepared.settings.etc / "ops.netrc")
    assert values["OPS_PASSWORD"] in Path(netrc).read_text()
    # nginx serves the nginx exporter's port behind the same basic auth.
    assert "--netrc-file" in by_name["nginx-exporter"].healthcheck
    # The redis exporter's port wants the scrape client certificate (files, no secret).
    redis_exporter = by_name["redis-exporter"].healthcheck
    scrape = prepared.scrape_tls()
    assert redis_exporter[redis_exporter.index("--cert") + 1] == str(scrape.client_cert)
    assert redis_exporter[redis_exporter.index("--key") + 1] == str(scrape.client_key)
    assert redis_exporter[-1].startswith("https://")
    every_test = json.dumps([s.healthcheck for s in by_name.values()])
    assert not [name for name, value in values.items() if value in every_test]


def test_a_local_images_tag_changes_with_its_source_not_its_caches(tmp_path: Path) -> None:
    """The shop image is skipped when its tag exists: a code change without a version
    bump must still make a new tag (compose once ran 0.1.0's sweeper against
    migration 0003's expectations), and bytecode or egg-info must not."""
    source = tmp_path / "shop"
    (source / "ocean_shop").mkdir(parents=True)
    (source / "Dockerfile").write_text("FROM python\n")
    (source / "ocean_shop" / "sweeper.py").write_text("BATCH = 100\n")
    before = engine.source_tag("0.1.1", source)
    assert before.startswith("0.1.1-") and before == engine.source_tag("0.1.1", source)
    (source / "ocean_shop" / "__pycache__").mkdir()
    (source / "ocean_shop" / "__pycache__" / "sweeper.cpython-311.pyc").write_bytes(b"\0")
    (source / "ocean_shop.egg-info").mkdir()
    (source / "ocean_shop.egg-info" / "PKG-INFO").write_text("Version: 0.1.1\n")
    assert engine.source_tag("0.1.1", source) == before
    (source / "ocean_shop" / "sweeper.py").write_text("BATCH = 20\n")
    changed = engine.source_tag("0.1.1", source)
    assert changed != before and changed.startswith("0.1.1-")
    (source / "ocean_shop" / "sweeper.py").rename(source / "ocean_shop" / "sweep.py")
    assert engine.source_tag("0.1.1", source) not in (before, changed)
