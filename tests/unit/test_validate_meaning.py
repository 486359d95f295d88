"""Validation that understands meaning (issue 21, classes 4, 5, 6, 8 and 9): configs
that parse and that promtool accepts, but that leave the stack blind or noisy.

Each fixture breaks one thing in a copy of the repo and expects the finding with the
file, the line and a hint; the clean copy passes each check first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ocean.config import REPO_ROOT
from ocean.model import Finding
from ocean.validate import core, rule_checks, stack_checks
from ocean.validate.core import program
from ocean.validate.template_lines import TemplateLines

COPIED = ("monitoring", "docs/runbooks", "stack", "testing")
IGNORE = shutil.ignore_patterns(".venv", "__pycache__", "*.egg-info", "node_modules")
PROM = "monitoring/prometheus/prometheus.yml"
RULES = "monitoring/rules/application.rules.yml"
needs_promtool = pytest.mark.skipif(program("promtool") is None, reason="promtool not installed")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for rel in COPIED:
        shutil.copytree(REPO_ROOT / rel, tmp_path / rel, ignore=IGNORE)
    shutil.copy(REPO_ROOT / ".yamllint", tmp_path / ".yamllint")
    return tmp_path


def run_check(root: Path, name: str) -> list[Finding]:
    return core.registry()[name].fn(root)


def edit(root: Path, rel: str, old: str, new: str) -> int:
    """Replace ``old`` (which must occur once) in a copied file; the line it starts on."""
    path = root / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not in {rel} exactly once"
    path.write_text(text.replace(old, new))
    return text[: text.index(old)].count("\n") + 1


def line_of(root: Path, rel: str, needle: str) -> int:
    lines = (root / rel).read_text().splitlines()
    (number,) = [n for n, line in enumerate(lines, 1) if needle in line]
    return number


def the_finding(findings: list[Finding], check: str) -> Finding:
    assert len(findings) == 1, findings
    (finding,) = findings
    assert finding.check == check and finding.hint, finding
    return finding


# -- class 4: prometheus.yml without a scrape job, rule files or Alertmanager -------------


def test_the_clean_copy_has_every_section(repo: Path):
    assert run_check(repo, "prometheus-sections") == []
    assert run_check(repo, "scrape-jobs") == []


def test_no_scrape_job(repo: Path):
    text = (repo / PROM).read_text()
    (repo / PROM).write_text(text[: text.index("scrape_configs:")] + "scrape_configs: []\n")
    found = the_finding(run_check(repo, "prometheus-sections"), "prometheus-sections")
    assert (found.file, found.line, found.severity) == (
        PROM,
        line_of(repo, PROM, "scrape_configs"),
        "error",
    )
    assert "no scrape_configs" in found.message and "scrapes nothing" in found.message


def test_no_rule_files(repo: Path):
    edit(repo, PROM, "rule_files:\n  - {{ paths.rules }}/*.rules.yml\n", "")
    found = the_finding(run_check(repo, "prometheus-sections"), "prometheus-sections")
    assert (found.file, found.line) == (PROM, 1)  # absent: the file's first line
    assert "no rule_files" in found.message and "rule_files:" in found.hint


def test_a_rule_file_pattern_that_matches_nothing(repo: Path):
    line = edit(repo, PROM, "/*.rules.yml", "/*.rule.yml")
    found = the_finding(run_check(repo, "prometheus-sections"), "prometheus-sections")
    assert (found.file, found.line) == (PROM, line)
    assert "matches no file" in found.message


def test_no_alertmanager(repo: Path):
    text = (repo / PROM).read_text()
    start, end = text.index("alerting:\n"), text.index("scrape_configs:")
    (repo / PROM).write_text(text[:start] + text[end:])
    found = the_finding(run_check(repo, "prometheus-sections"), "prometheus-sections")
    assert (found.file, found.line) == (PROM, 1)
    assert "no alerting section" in found.message and "alertmanagers" in found.hint


def test_an_alertmanager_without_target(repo: Path):
    line = edit(
        repo,
        PROM,
        '        - targets: ["{{ hosts.alertmanager }}:{{ ports.alertmanager }}"]\n'
        "      basic_auth:\n        username: {{ security.ops_user }}\n",
        "        - targets: []\n      basic_auth:\n        username: {{ security.ops_user }}\n",
    )
    found = the_finding(run_check(repo, "prometheus-sections"), "prometheus-sections")
    assert found.file == PROM and found.line == line - 1  # the `- static_configs:` entry
    assert "no Alertmanager has a target" in found.message


# -- class 5: a job with one good target and one that reaches no service -----------------


def test_one_bad_target_beside_a_good_one(repo: Path):
    line = edit(
        repo,
        PROM,
        "      - targets: [\"{{ hosts['node-exporter'] }}:{{ ports['node-exporter'] }}\"]\n",
        "      - targets: [\"{{ hosts['node-exporter'] }}:{{ ports['node-exporter'] }}\",\n"
        '                  "127.0.0.1:9"]\n',
    )
    found = the_finding(run_check(repo, "scrape-jobs"), "scrape-jobs")
    assert (found.file, found.line) == (PROM, line + 1)
    assert "'node'" in found.message and "'127.0.0.1:9'" in found.message
    assert "port 9 is no service's" in found.message


def test_a_probe_target_that_reaches_no_service(repo: Path):
    line = edit(repo, PROM, '/healthz"]', '/healthz", "https://127.0.0.1:1/"]')
    found = the_finding(run_check(repo, "scrape-jobs"), "scrape-jobs")
    assert (found.file, found.line) == (PROM, line)
    assert "blackbox_http" in found.message


def test_a_job_of_only_bad_targets_is_still_caught(repo: Path):
    (repo / PROM).write_text(
        (repo / PROM).read_text()
        + '\n  - job_name: orphan\n    static_configs:\n      - targets: ["127.0.0.1:1"]\n'
    )
    found = the_finding(run_check(repo, "scrape-jobs"), "scrape-jobs")
    assert found.line == len((repo / PROM).read_text().splitlines())
    assert "'orphan'" in found.message


# -- class 8 (Prometheus' half): a null entry is a finding, not a crash -----------------


@pytest.mark.parametrize(
    ("section", "anchor"),
    [
        ("scrape_configs", "scrape_configs:\n"),
        ("rule_files", "rule_files:\n"),
        ("alerting.alertmanagers", "  alertmanagers:\n"),
    ],
)
def test_a_null_entry(repo: Path, section: str, anchor: str):
    indent = "    " if section.startswith("alerting") else "  "
    line = edit(repo, PROM, anchor, f"{anchor}{indent}-\n") + 1
    found = run_check(repo, "prometheus-sections")
    assert [(f.file, f.line) for f in found] == [(PROM, line)], found
    assert f"{section} entry #1 is empty (null)" in found[0].message
    assert "delete the empty `-`" in found[0].hint
    assert run_check(repo, "scrape-jobs") == []  # the other entries are judged as usual


def test_a_null_entry_inside_a_scrape_job(repo: Path):
    line = edit(
        repo,
        PROM,
        "  - job_name: alertmanager\n    basic_auth: *ops_auth\n    static_configs:\n",
        "  - job_name: alertmanager\n    basic_auth: *ops_auth\n    static_configs:\n      -\n",
    )
    found = the_finding(run_check(repo, "scrape-jobs"), "scrape-jobs")
    assert (found.file, found.line) == (PROM, line + 3)
    assert "scrape job 'alertmanager': static_configs entry #1 is empty (null)" in found.message


def test_no_check_crashes_on_a_null_scrape_config(repo: Path):
    edit(repo, PROM, "scrape_configs:\n", "scrape_configs:\n  -\n")
    findings = core.run(repo, {"prometheus", "cross-file"})
    assert not [f for f in findings if "crashed" in f.message], findings
    assert any(f.check == "prometheus-sections" and f.file == PROM for f in findings)


def test_a_prometheus_yml_that_is_a_list(repo: Path):
    (repo / PROM).write_text("- job_name: x\n")
    found = the_finding(run_check(repo, "prometheus-sections"), "prometheus-sections")
    assert (found.line, found.severity) == (1, "error")
    assert "not a mapping" in found.message
    assert run_check(repo, "scrape-jobs") == []


def test_rendered_lines_map_back_to_the_template():
    template = "a: 1\n{% if x %}\nb: {{ y }}\n{% endif %}\nc: {{ z }}\n"
    skipped = TemplateLines(template, "a: 1\nc: 3\n")
    assert [skipped.line(n) for n in (1, 2, 3)] == [1, 5, None]
    taken = TemplateLines(template, "a: 1\nb: 2\nc: 3\n")
    assert [taken.line(n) for n in (1, 2, 3)] == [1, 3, 5]
    # A comment renders to nothing; a line of two block tags is dropped like one.
    commented = TemplateLines("a: 1 {# why #}\n{% if x %}{% if y %}\nc: 2\n", "a: 1 \nc: 2\n")
    assert [commented.line(n) for n in (1, 2)] == [1, 3]
    # A rendered line without a template line of its own keeps its number.
    assert taken.line_or_rendered(7) == 7 and taken.line_or_rendered(None) is None


# -- class 6: promtool's lint findings ----------------------------------------------------

DUPLICATE = """
      - alert: ShopInstanceDownCopy
        expr: up{job="shop"} == 0
        labels: {severity: warning, team: shop}
        annotations: {summary: x, runbook_url: docs/runbooks/ShopInstanceDownCopy.md}
"""


@needs_promtool
def test_a_duplicate_rule_is_an_error(repo: Path):
    path = repo / RULES
    text = path.read_text().rstrip("\n") + "\n" + DUPLICATE + DUPLICATE
    path.write_text(text)
    first, second = [
        n for n, line in enumerate(text.splitlines(), 1) if "alert: ShopInstanceDownCopy" in line
    ]
    found = the_finding(run_check(repo, "promtool-check-rules"), "promtool-check-rules")
    assert (found.file, found.line, found.severity) == (RULES, second, "error")
    assert "duplicate rule ShopInstanceDownCopy{severity='warning', team='shop'}" in found.message
    assert f"lines {first}, {second}" in found.message


def test_lint_policy_other_lints_are_warnings(tmp_path: Path):
    rules = tmp_path / "x.rules.yml"
    rules.write_text("groups: []\n")
    output = "Checking x\n  FAILED:\nlint error something new promtool learnt\n"
    (problem,) = rule_checks.rule_output_problems(rules, 0, output)
    assert (problem.severity, problem.line) == ("warning", None)
    assert "something new promtool learnt" in problem.message and problem.hint
    assert rule_checks.rule_output_problems(rules, 0, "Checking x\n  SUCCESS: 0 rules\n") == []


# -- class 9: yamllint style is a warning on a file that parses ------------------------


def test_indentation_is_a_warning(repo: Path):
    rel = "monitoring/blackbox/extra.yml"
    (repo / rel).write_text("modules:\n    http_2xx:\n        prober: http\n")
    findings = stack_checks.check_yamllint(repo)
    assert findings and {(f.file, f.severity) for f in findings} == {(rel, "warning")}
    assert {f.line for f in findings} == {2, 3}
    assert all("(indentation)" in f.message for f in findings)


def test_a_syntax_error_stays_an_error(repo: Path):
    rel = "monitoring/blackbox/extra.yml"
    (repo / rel).write_text("modules:\n  http_2xx: [\n")
    (found,) = stack_checks.check_yamllint(repo)
    assert (found.file, found.severity) == (rel, "error")
    assert "syntax" in found.hint


# -- speed: a rule file's edit reruns only the promtool tests that load it ---------------


@needs_promtool
def test_rule_test_key_covers_only_the_rule_files_loaded(repo: Path):
    promtool = program("promtool")
    assert promtool
    tests = repo / "monitoring/rules/tests"
    files = {p.name: p for p in tests.glob("*.yml")}
    before = {name: rule_checks.rule_test_key(promtool, p) for name, p in files.items()}
    (repo / "monitoring/rules/shop.rules.yml").write_text(
        (repo / "monitoring/rules/shop.rules.yml").read_text() + "# edited\n"
    )
    after = {name: rule_checks.rule_test_key(promtool, p) for name, p in files.items()}
    changed = {name for name in files if before[name] != after[name]}
    assert changed == {"slo.test.yml"}  # the one test file that loads shop.rules.yml
    assert rule_checks.loaded_rule_files(files["slo.test.yml"]) == [
        tests / "../shop.rules.yml",
        tests / "../slo.rules.yml",
    ]


@needs_promtool
def test_an_edited_rule_file_reruns_only_its_tests(repo: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OCEAN_VALIDATE_CACHE", str(tmp_path / "cache"))
    for path in (repo / "monitoring/rules/tests").glob("*.yml"):
        if path.name not in ("application.rules.test.yml", "database.rules.test.yml"):
            path.unlink()
    assert run_check(repo, "promtool-test-rules") == []
    ran: list[str] = []
    real_run = rule_checks.run_tool

    def recording(args, cwd=None, env=None):
        ran.append(args[-1])
        return real_run(args, cwd=cwd, env=env)

    monkeypatch.setattr(rule_checks, "run_tool", recording)
    edit(
        repo,
        RULES,
        "      - alert: ShopHighLatency\n",
        "      # edited\n      - alert: ShopHighLatency\n",
    )
    assert run_check(repo, "promtool-test-rules") == []
    assert ran == ["application.rules.test.yml"]


# -- validate --json: every finding has file, line, check, severity, message, hint -----


def test_json_findings_carry_where_what_and_how_to_fix(tmp_path: Path):
    root = tmp_path / "repo"
    for rel in ("src", *COPIED):
        shutil.copytree(REPO_ROOT / rel, root / rel, ignore=IGNORE)
    for rel in ("tasks.py", ".yamllint"):
        shutil.copy(REPO_ROOT / rel, root / rel)
    edit(root, PROM, "rule_files:\n  - {{ paths.rules }}/*.rules.yml\n", "")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "invoke",
            "-r",
            str(root),
            "validate",
            "--json",
            "--only",
            "prometheus",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root / "src")},
        cwd=root,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert findings
    for finding in findings:
        assert {"file", "line", "check", "severity", "message", "hint"} <= set(finding)
    ours = [f for f in findings if f["check"] == "prometheus-sections"]
    assert ours == [
        {
            "check": "prometheus-sections",
            "kind": "prometheus",
            "severity": "error",
            "file": PROM,
            "line": 1,
            "message": ours[0]["message"],
            "hint": ours[0]["hint"],
        }
    ]
    assert "no rule_files" in ours[0]["message"] and ours[0]["hint"]


# -- the registry and the runner -------------------------------------------------------


def test_every_checks_module_is_imported_by_the_registry():
    package = Path(core.__file__).parent
    modules = {f"ocean.validate.{p.stem}" for p in package.glob("*_checks.py")}
    assert "ocean.validate.prometheus_checks" in modules
    imported = core._check_modules()
    assert set(imported) == modules | set(core._MODULES)  # every *_checks module, unlisted too
    assert len(imported) == len(set(imported))
    assert {"prometheus-sections", "scrape-jobs"} <= set(core.registry())


def test_a_template_that_does_not_render_is_a_finding_not_a_crash(repo: Path):
    edit(
        repo, PROM, "  scrape_interval: {{ scrape_interval }}\n", "  scrape_interval: {{ nope }}\n"
    )
    for name in ("prometheus-sections", "scrape-jobs", "prometheus-config"):
        (found,) = core.run_one(core.registry()[name], repo)
        assert (found.check, found.file, found.severity) == (name, PROM, "error")
        assert "template does not render" in found.message and found.hint
    # The stack checks render through ocean.validate.rendering: the runner locates it.
    (repo / "stack/nginx/upstream.conf").write_text("{% for x in %}\n")
    (found,) = core.run_one(core.registry()["nginx-upstreams"], repo)
    assert (found.file, found.line) == ("stack/nginx/upstream.conf", 1), found
    assert "TemplateSyntaxError" in found.message
    # Any exception an expression raises is the template's too, at its line (the suite's
    # fuzz run found "str" - "str" in a mutated redis config crashing the check).
    redis_master = repo / "stack/redis/redis-master.conf"
    redis_master.write_text(redis_master.read_text() + '{{ "a" - "b" }}\n')
    line = len(redis_master.read_text().splitlines())
    (found,) = core.run_one(core.registry()["redis-replica-of-master"], repo)
    assert (found.file, found.line) == ("stack/redis/redis-master.conf", line), found
    assert "TypeError" in found.message


def test_a_compose_file_whose_alias_holds_itself_is_no_crash(repo: Path):
    # Found by the fuzz test: `extra: [*s]` inside the node anchored `&s` made the
    # compose checks' node walks recurse until RecursionError.
    (repo / "stack/docker-compose.prod.yml").write_text(
        "services:\n  shop: &s\n    image: x:1\n    extra: [*s]\n"
    )
    for name, chosen in core.registry().items():
        if chosen.kind == "compose":
            found = core.run_one(chosen, repo)
            assert all(isinstance(f, Finding) and f.message for f in found), (name, found)
