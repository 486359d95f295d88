"""The shop's SLOs (monitoring/slo.yaml) and everything generated from them.

A package by concern: model.py reads and validates the file into dataclasses (an
:class:`SLOError` names every problem, with its key path); rules.py, rule_tests.py,
dashboard.py and runbooks.py render the recording rules and alerts, their promtool
tests, the Grafana dashboard and k6 thresholds, one runbook per alert; generate.py
writes or checks them all (``python -m ocean.slo generate|check``, exit 1 naming each
stale one). No number in a generated file is typed anywhere else.
"""

from ocean.slo.dashboard import (  # noqa: F401  the package's API
    dashboard,
    k6_thresholds,
)
from ocean.slo.generate import (  # noqa: F401  the package's API
    generate,
    main,
    rule_files,
    stale,
    write,
)
from ocean.slo.model import (  # noqa: F401  the package's API
    DB_PERCENTILES,
    HEADER,
    HTTP_PERCENTILES,
    SLI_WINDOWS,
    SLO_FILE,
    TESTS_DIR,
    BudgetSLO,
    BurnRateAlert,
    CacheSLO,
    CapacitySLO,
    PageLoadSLO,
    SLOError,
    SLOs,
    ThresholdSLO,
    load,
    parse,
    seconds,
)
from ocean.slo.rule_tests import (  # noqa: F401  the package's API
    burn_step,
    rule_test_file,
    tests,
)
from ocean.slo.rules import (  # noqa: F401  the package's API
    CACHE_ALERT,
    DB_ALERT,
    alert_name,
    alert_names,
    rules,
    sli_expr,
)
from ocean.slo.runbooks import (  # noqa: F401  the package's API
    runbooks,
)
