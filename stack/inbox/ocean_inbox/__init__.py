"""The stack's alert inbox: where Alertmanager's notifications land when no real SMTP
server, Slack or pager is configured (docs/architecture.md, "Alert inbox")."""

__version__ = "0.1.0"
