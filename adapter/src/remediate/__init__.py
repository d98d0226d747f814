"""remediate: the alert adapter of the incident.remediation collection."""

__version__ = "0.1.0"
