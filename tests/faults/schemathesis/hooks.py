"""schemathesis hooks for tests/faults/fuzz.py (loaded through SCHEMATHESIS_HOOKS).

Positive cases only (negative ones are sent as drawn):
- A `cursor` is opaque: only the `next_cursor` of a page the server answered decodes, so a
  cursor schemathesis makes up is not valid data however well it fits the declared shape.
  Positive cases are sent without the cursors they drew.
- schemathesis 4.32.5's coverage phase fills `If-Match` with `0` in cases that vary another
  parameter, marked positive although `0` does not match the header's declared pattern (a
  malformed If-Match is 400, as it must be). Such a header is dropped: If-Match is optional.
- Its stateful phase follows links it infers from field names (`bank_partner_id` to
  `/bank-partners/{id}`) also when the field is null, and sends the id as `None`, which is not
  an integer (400). Such an id is sent as 0, an id no record has (404).
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
    if case.path_parameters and any(v is None for v in case.path_parameters.values()):
        case.path_parameters = {k: (0 if v is None else v) for k, v in case.path_parameters.items()}
    if case.headers and not IF_MATCH.match(str(case.headers.get("If-Match", "*"))):
        case.headers = {k: v for k, v in case.headers.items() if k != "If-Match"}
