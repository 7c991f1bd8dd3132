"""Backdoor signals in code a tool call wrote, judged at ingest by the same review the report runs.

A tool call that writes or edits a file (Write, Edit, MultiEdit, str_replace editors, apply_patch) is reviewed
by :mod:`foothold.detections.code_signals`; the findings land on the span (``foothold.code.*``), so the
``code_backdoor_signal`` alert rule and the dashboards read them like any other attribute. Content arrives
redacted (the collector redacts at the door), so a secret written into code shows as a redaction marker, which
the review counts as a hard-coded credential.

The review here sees one call at a time; ``foothold-audit report`` reviews the session's whole change set,
where an auth check moved from one file to another is a refactor rather than a removal.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import orjson

from foothold import semconv
from foothold.detections import toolcall
from foothold.detections.code_changes import changes_from_tool_call
from foothold.detections.code_signals import review_changes
from foothold.detections.severity import SEVERITIES

if TYPE_CHECKING:
    from foothold.collector.pipeline import Batch

log = logging.getLogger("foothold.collector.code_review")

# Only arguments that can carry a file's content are worth parsing: a cheap screen before JSON decoding.
_WRITE_HINTS = ('"content"', '"new_string"', '"new_str"', '"file_text"', '"edits"', "*** Begin Patch", "+++ ")


def _first(attrs: dict[str, str], keys: tuple[str, ...]) -> str:
    return next((attrs[key] for key in keys if attrs.get(key)), "")


class CodeReviewProcessor:
    def __init__(self) -> None:
        self._warned = False

    def process(self, batch: Batch) -> None:
        for attrs in batch.span_attributes:
            arguments = _first(attrs, toolcall.ARGUMENT_KEYS)
            if not arguments or not any(hint in arguments for hint in _WRITE_HINTS):
                continue
            attrs.pop(semconv.CODE_SEVERITY, None)  # the verdict is the collector's, never the sender's
            attrs.pop(semconv.CODE_FINDINGS, None)
            try:
                findings = review_changes(changes_from_tool_call(_first(attrs, toolcall.TOOL_NAME_KEYS), arguments))
            except Exception:  # a review bug must never cost a span
                if not self._warned:
                    log.exception("code review failed for a span; storing it unreviewed")
                    self._warned = True
                continue
            if findings:
                worst = max(findings, key=lambda f: SEVERITIES.index(f.severity))
                attrs[semconv.CODE_SEVERITY] = worst.severity
                attrs[semconv.CODE_FINDINGS] = orjson.dumps(
                    [
                        {
                            "signal": f.signal,
                            "severity": f.severity,
                            "technique": f.technique,
                            "path": f.path,
                            "evidence": f.evidence,
                        }
                        for f in findings
                    ]
                ).decode()
