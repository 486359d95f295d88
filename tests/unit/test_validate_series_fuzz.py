"""The series check never crashes: arbitrary text for the selector scanner, arbitrary
documents where a rule file, a dashboard and the catalog belong (hypothesis)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocean.model import Finding
from ocean.validate.selectors import selectors
from ocean.validate.series_checks import series_selectors

KEYS = ["groups", "rules", "expr", "alert", "record", "name", "panels", "targets", "metrics"]
KEYS += ["labels", "templating", "list", "query", "annotations", "thresholds", "job"]
PROMQL = st.sampled_from(
    ['up{job="x"}', "rate(a_total[5m])", "sum by (le) (b_bucket{le=~", "{", "}", "[", '"']
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | PROMQL
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)
FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("ab_:{}[]()\"=~!,$ \n#`'0.5m")), max_size=60))
def test_the_selector_scanner_never_raises(expr: str):
    assert isinstance(selectors(expr), list)


def _repo(root: Path, rules: object, dashboard: object, catalog: object) -> Path:
    for folder in ("monitoring/rules", "monitoring/dashboards", "testing/k6"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "monitoring/rules/fuzz.rules.yml").write_text(yaml.safe_dump(rules))
    (root / "monitoring/dashboards/fuzz.json").write_text(json.dumps(dashboard))
    (root / "monitoring/catalog.json").write_text(json.dumps(catalog))
    (root / "testing/k6/thresholds.json").write_text(json.dumps(dashboard))
    return root


@FUZZ
@given(rules=DOCUMENTS, dashboard=DOCUMENTS, catalog=DOCUMENTS)
def test_the_check_returns_findings_for_any_documents(tmp_path, rules, dashboard, catalog):
    root = _repo(tmp_path, rules, dashboard, catalog)  # one dir, rewritten per example
    found = series_selectors(root)
    assert isinstance(found, list) and all(isinstance(f, Finding) for f in found)


@settings(FUZZ, max_examples=300)
@given(rules=DOCUMENTS)
def test_rules_shaped_like_rules_with_any_values(tmp_path, rules):
    # near-real rule files get past the first type tests, deeper into the check
    doc = {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": 'up{job="x"}'}, rules]}]}
    catalog = {"metrics": {"up": {"labels": {"job": ["node"], "instance": None}}}}
    root = _repo(tmp_path, doc, {"panels": [rules]}, catalog)
    found = series_selectors(root)
    assert all(isinstance(f, Finding) for f in found)


@pytest.mark.parametrize(
    "rules",
    [
        {"groups": True},  # the busy-machine run's draw: TypeError, 'bool' is not iterable
        {"groups": "g"},
        {"groups": [{"name": "g", "rules": 5}]},
        {"groups": [{"name": "g", "rules": {"alert": "A"}}]},
    ],
)
def test_a_value_where_a_list_belongs_is_no_crash(tmp_path, rules):
    catalog = {"metrics": {"up": {"labels": {"job": ["node"]}}}}  # empty: nothing is read
    root = _repo(tmp_path, rules, {}, catalog)
    assert all(isinstance(f, Finding) for f in series_selectors(root))
