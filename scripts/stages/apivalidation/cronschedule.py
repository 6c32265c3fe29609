"""The CronJob schedule grammar the API server accepts: the standard parser of
github.com/robfig/cron/v3 (five fields, or a descriptor such as @hourly or
@every 90m, optionally after TZ=<zone>), and Go's time.ParseDuration for
@every. `schedule_problem` returns what is wrong, or None.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass

_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_EVERY = "@every "
# Go's strconv.Atoi: an optional sign, then ASCII digits, within int64.
_ATOI = re.compile(r"[+-]?[0-9]+")
_INT64 = 2**63


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names for low, low + 1, ... (months, weekdays)

    def number(self, text: str) -> int:
        if self.names and text.lower() in self.names:
            return self.low + self.names.index(text.lower())
        if not _ATOI.fullmatch(text) or not -_INT64 <= int(text) < _INT64:
            raise ValueError(f"{self.name}: '{text}' is not a number")
        value = int(text)
        if value < 0:
            raise ValueError(f"{self.name}: negative number {value}")
        return value


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    _Field("day of week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def _range(expression: str, field: _Field) -> None:
    """One comma-separated part: '*', '?', N, N-M, each optionally '/step'."""
    range_and_step = expression.split("/")
    low_high = range_and_step[0].split("-")
    if low_high[0] in ("*", "?"):
        start, end = field.low, field.high
    else:
        start = field.number(low_high[0])
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = field.number(low_high[1])
        else:
            raise ValueError(f"{field.name}: too many hyphens in '{expression}'")
    if len(range_and_step) == 2:
        step = field.number(range_and_step[1])
        if len(low_high) == 1:  # 'N/step' runs from N to the end
            end = field.high
    elif len(range_and_step) > 2:
        raise ValueError(f"{field.name}: too many slashes in '{expression}'")
    else:
        step = 1
    if start < field.low:
        raise ValueError(f"{field.name}: {start} is below the minimum {field.low} in '{expression}'")
    if end > field.high:
        raise ValueError(f"{field.name}: {end} is above the maximum {field.high} in '{expression}'")
    if start > end:
        raise ValueError(f"{field.name}: the range starts at {start}, after its end {end}, in '{expression}'")
    if step == 0:
        raise ValueError(f"{field.name}: the step must be a positive number in '{expression}'")


_DURATION_UNITS = ("ns", "us", "µs", "μs", "ms", "s", "m", "h")
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def duration_problem(text: str) -> str | None:
    """Go's time.ParseDuration: '[-+]' then one or more '<number><unit>',
    or a bare '0'."""
    rest = text[1:] if text[:1] in ("-", "+") else text
    if rest == "0":
        return None
    if not rest:
        return f"invalid duration '{text}'"
    position = 0
    while position < len(rest):
        match = _DURATION_PART.match(rest, position)  # always matches, possibly empty
        number, unit = match.group(1), match.group(2)
        if not number or number == ".":
            return f"invalid duration '{text}'"
        if not unit:
            return f"missing unit in duration '{text}'"
        if unit not in _DURATION_UNITS:
            return f"unknown unit '{unit}' in duration '{text}' (use ns, us, ms, s, m or h)"
        position = match.end()
    return None


def _location_problem(name: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone '{name}'"
    return None


def schedule_problem(schedule: str) -> str | None:
    """What the cron parser refuses in this schedule, or None."""
    spec = schedule
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        if space < 0:
            return "a TZ= prefix must be followed by a space and the schedule"
        problem = _location_problem(spec[spec.find("=") + 1:space])
        if problem:
            return problem
        spec = spec[space:].strip()
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return None
        if spec.startswith(_EVERY):
            problem = duration_problem(spec[len(_EVERY):])
            return f"@every needs a duration such as 90m or 1h30m: {problem}" if problem else None
        return f"unknown descriptor '{spec}' (use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>)"
    fields = spec.split()
    if len(fields) != len(_FIELDS):
        return (f"expected exactly 5 fields (minute hour day-of-month month day-of-week), found {len(fields)}")
    for text, field in zip(fields, _FIELDS, strict=True):
        for expression in (part for part in text.split(",") if part):
            try:
                _range(expression, field)
            except ValueError as error:
                return str(error)
    return None
