"""Grafana dashboards without Grafana: the JSON in monitoring/dashboards/ read
(model.py), queried the way Grafana queries (query.py) and printed in its units
(units.py), for the console's Dashboards screen and `invoke dashboards snapshot`."""
