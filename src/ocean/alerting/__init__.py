"""Alerting, headless: Alertmanager's routing and inhibition computed in Python from the
stack's rendered config, the alerts listing, silences and the delivery drill.

- matchers.py    Alertmanager's label matchers (``name="v"``, ``=~``, ``!=``, ``!~``)
- routes.py      the routing tree: which routes and receivers a label set reaches
- inhibition.py  which alert mutes which, per inhibit rule (live, and what could)
- api.py         the few Alertmanager and Prometheus calls, errors as one line
- listing.py     `invoke alerts`: firing and pending alerts with routes, and silences
- silences.py    `alerts silence` / `unsilence`: input checked before anything is sent
- drill.py       `alerts drill`: a synthetic alert per receiver, delivery proven

No invoke/textual imports here (tests/unit/test_import_contract.py).
"""
