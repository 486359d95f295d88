"""Load testing against the SLOs: scenarios (the k6 scripts in testing/k6/), server-side
guards, results and their comparison, charts. ``ocean.procedures.loadtest`` drives them."""
