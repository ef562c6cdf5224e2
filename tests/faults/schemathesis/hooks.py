"""schemathesis hooks for tests/faults/fuzz.py (loaded through SCHEMATHESIS_HOOKS).

Positive cases only (negative ones are sent as drawn):
- A `cursor` is opaque: only the `next_cursor` of a page the server answered decodes, so a
  cursor schemathesis makes up is not valid data however well it fits the declared shape.
  Positive cases are sent without the cursors they drew.
- schemathesis 4.32.5's coverage phase fills `If-Match` with `0` in cases that vary another
  parameter, marked positive although `0` does not match the header's declared pattern (a
  malformed If-Match is 400, as it must be). Such a header is dropped: If-Match is optional.
"""
import re

import schemathesis

IF_MATCH = re.compile(r'^(\*|(W/)?"[^",]*"( *, *(W/)?"[^",]*")*)$')  # src/http/etag.rs IF_MATCH_PATTERN


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    if case.query and "cursor" in case.query:
        case.query = {k: v for k, v in case.query.items() if k != "cursor"}
    if case.headers and not IF_MATCH.match(str(case.headers.get("If-Match", "*"))):
        case.headers = {k: v for k, v in case.headers.items() if k != "If-Match"}
