"""The one severity scale, least serious first: persistence findings, code review findings and alert rules."""

SEVERITIES = ("info", "low", "medium", "high", "critical")
