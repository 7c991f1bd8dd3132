"""Bearer-token authentication shared by the OTLP receivers and the query API, and sender stamping.

Tokens are configured hashed (``auth.tokens: [{name, sha256}]``): the presented token is hashed and
compared with every configured hash in constant time, so neither the stored config nor the timing of a
refusal tells an attacker anything about a valid token.

The authenticated sender's name is written into every span of the request as ``foothold.sender``,
replacing whatever the client put there, so a sender cannot be forged. It is stamped into the decoded
request itself, before the pipeline sees it, so it survives batching (and any spooling) unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from foothold.collector.config import AuthConfig
from foothold.semconv import SENDER

_SENDER_BYTES = SENDER.encode()


class AuthError(Exception):
    """Refused: ``reason`` is ``missing`` or ``invalid`` (a metric label), the message is for the client."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    sender: str  # "" when unauthenticated (auth off, or allow_unauthenticated and no token sent)


ANONYMOUS = Identity("")


class Authenticator:
    def __init__(self, config: AuthConfig) -> None:
        self._tokens = [(bytes.fromhex(t.sha256), t.name) for t in config.tokens]
        self._allow_anonymous = config.allow_unauthenticated or not self._tokens

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def check(self, authorization: str | None) -> Identity:
        """The identity behind an ``Authorization`` header value; raises :class:`AuthError` when refused."""
        if not self._tokens:
            return ANONYMOUS  # auth off (loopback or explicitly allowed): headers are ignored
        if not authorization:
            if self._allow_anonymous:
                return ANONYMOUS
            raise AuthError("missing", "authentication required: send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("invalid", "malformed Authorization header: expected 'Bearer <token>'")
        digest = hashlib.sha256(token.strip().encode()).digest()
        found = ""
        for expected, name in self._tokens:  # no early exit: the time taken does not depend on which matched
            if hmac.compare_digest(digest, expected):
                found = name
        if not found:
            raise AuthError("invalid", "invalid bearer token")
        return Identity(found)


def stamp_sender(
    request: ExportTraceServiceRequest, sender: str, body: bytes = b"", escaped: bool = True
) -> tuple[int, bool]:
    """Set ``foothold.sender`` on every span (removing any client-supplied value).

    Returns the span count and whether the request changed. ``body`` is the decoded request's source: when
    the key does not occur in it (and it could not hide behind JSON escapes, ``escaped=False`` for
    protobuf), no span carries it and the scan is skipped.
    """
    groups = (
        scope_spans.spans for resource_spans in request.resource_spans for scope_spans in resource_spans.scope_spans
    )
    return stamp_items(groups, sender, body, escaped)


def stamp_items(groups: Iterable[Sequence[Any]], sender: str, body: bytes, escaped: bool) -> tuple[int, bool]:
    """``foothold.sender`` on every item (span or log record) of each group, any client-supplied value removed;
    returns the item count and whether anything changed. One walk for traces and logs alike."""
    scan = not body or _SENDER_BYTES in body or (escaped and b"\\u" in body)
    count, changed = 0, bool(sender)
    for items in groups:
        count += len(items)
        if not scan and not sender:
            continue
        for item in items:
            attributes = item.attributes
            if scan:
                for i in range(len(attributes) - 1, -1, -1):
                    if attributes[i].key == SENDER:
                        del attributes[i]
                        changed = True
            if sender:
                kv = attributes.add()
                kv.key = SENDER
                kv.value.string_value = sender
    return count, changed


Decoded = tuple[ExportTraceServiceRequest, bytes | None]


def stamping(
    decode: Callable[[bytes], ExportTraceServiceRequest],
    sender: str,
    json: bool,
    count: Callable[[int], None] | None = None,
    stamp: Callable[..., tuple[int, bool]] = stamp_sender,  # otlp_logs.stamp_sender for logs requests
) -> Callable[[bytes], Decoded]:
    """A decoder that also stamps the sender (and reports how many spans the request held).

    It returns the request and, when that is still exactly the protobuf ``body`` (nothing stamped or
    removed), the body itself, so the spool stores it without serialising the request again.
    """

    def decode_and_stamp(body: bytes) -> Decoded:
        request = decode(body)
        spans, changed = stamp(request, sender, body, escaped=json)
        if count is not None:
            count(spans)
        return request, None if json or changed else body

    return decode_and_stamp
