"""Ocean Ops core: runtimes, procedures and the Prometheus client.

Importable without textual or invoke (tests/unit/test_import_contract.py keeps it so):
both front ends, ``tasks.py`` and ``ocean-tui``, drive the same code.
"""

__version__ = "0.1.0"
