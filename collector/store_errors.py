"""Is a failed insert the data's fault or the store's? The pipeline retries the one and splits the other.

A store that is down, slow, overloaded or out of disk heals by itself: the same batch is retried with
back-off while the spool holds it. A batch ClickHouse refuses for what it contains fails the same way on
every retry, so retrying it forever wedges the pipeline for every later sender. Only errors known to be
about the data count as such (by ClickHouse error code, from ``src/Common/ErrorCodes.cpp``); anything
else, unknown codes included, is treated as the store's health and retried, because splitting a batch
while the store is merely down would quarantine good data.
"""

from __future__ import annotations

import re

# ClickHouse error codes that mean "this data cannot be inserted", whatever the store's health.
DATA_ERROR_CODES = {
    6: "CANNOT_PARSE_TEXT",
    26: "CANNOT_PARSE_QUOTED_STRING",
    27: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
    32: "ATTEMPT_TO_READ_AFTER_EOF",
    38: "CANNOT_PARSE_DATE",
    41: "CANNOT_PARSE_DATETIME",
    53: "TYPE_MISMATCH",
    69: "ARGUMENT_OUT_OF_BOUND",
    70: "CANNOT_CONVERT_TYPE",
    72: "CANNOT_PARSE_NUMBER",
    117: "INCORRECT_DATA",
    131: "TOO_LARGE_STRING_SIZE",
    190: "SIZES_OF_ARRAYS_DONT_MATCH",
    321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
    407: "DECIMAL_OVERFLOW",
}
# Code 252 (TOO_MANY_PARTS) covers two cases: "Too many partitions for single INSERT block" is the batch's
# fault (its rows fall on too many days); "Too many parts" is a merge backlog, the store's health.
_TOO_MANY_PARTS = 252
_PARTITIONS_PER_BLOCK = "too many partitions for single insert block"
_CODE = re.compile(r"\bCode:\s*(\d+)")


class DataRejected(Exception):
    """The store refused the batch for what it holds: retrying the same rows cannot succeed."""


def error_code(exc: BaseException) -> int | None:
    """The ClickHouse error code of an exception from clickhouse-connect (server or chDB), if any."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


def is_data_error(exc: BaseException) -> bool:
    code = error_code(exc)
    if code == _TOO_MANY_PARTS:
        return _PARTITIONS_PER_BLOCK in str(exc).lower()
    return code in DATA_ERROR_CODES
