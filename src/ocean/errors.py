"""The one exception type front ends turn into a one-line message and a non-zero exit."""


class OceanError(Exception):
    """A problem the user can act on; its message is the whole story, in one line."""


class Refused(OceanError):
    """A guard rail (ocean.guardrails) or the promotion gate stopped an action before it
    touched anything."""
