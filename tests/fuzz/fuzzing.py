"""What the fuzz tests share: the budget, JSON-ish strategies, mutation, and the promise checked.

The promise (docs/reliability.md): whatever a user feeds a reader, it returns a correct result
or raises one of the user-error types the command line turns into one line and exit code 2,
with a message that names the file (or value) — never another exception, never a hang.

The number of inputs per test is ``n * SOFTPROMPT_FUZZ_SCALE`` (default 1, what CI runs);
``SOFTPROMPT_FUZZ_SCALE=20 pytest tests/fuzz`` searches longer.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SCALE = max(1, int(os.environ.get("SOFTPROMPT_FUZZ_SCALE", "1")))
#: What `softprompt.cli.common.user_errors` turns into ``Error: ...`` and exit code 2.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
               PermissionError)


def budget(n: int):
    """Hypothesis settings for `n` inputs (times the scale), no deadline, no example database."""
    return settings(max_examples=n * SCALE, deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck))


#: Text as JSON files carry it: any code point, lone surrogates included (JSON escapes them).
text = st.text(max_size=24)
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | text)


def json_values(keys=st.text(max_size=8)):
    """Any JSON value, objects keyed by `keys`."""
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(keys, inner, max_size=4), max_leaves=12)


#: Values that sit on the edges readers get wrong: empty, blank, digits in other scripts,
#: negative or huge numbers, the wrong container.
edges = st.sampled_from(["", " ", "-1", "\u00b2", "\u0663", "x" * 3000, 0, -1, 2**64, 1e308,
                         float("nan"), True, False, None, [], {}, [None], {"": None}]
                        ).map(copy.deepcopy)  # containers are mutated later: never share one


def _paths(value, prefix=()):
    """Every place in a JSON value, as a tuple of keys and indices."""
    yield prefix
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        yield from _paths(item, prefix + (key,))


@st.composite
def mutated(draw, value):
    """`value` with one to three places replaced (by an edge or any JSON), dropped, or added to."""
    value = copy.deepcopy(value)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(value))))
        new = draw(edges | json_values())
        if not path:
            value = new
            continue
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(("replace", "replace", "drop", "add")))
        if action == "replace":
            parent[path[-1]] = new
        elif action == "drop":
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.insert(path[-1], new)
        else:
            parent[draw(text)] = new
    return value


#: Whole lines that break JSON parsers in ways a plain syntax error does not.
nasty_lines = st.sampled_from([
    "[" * 100000,              # nesting deeper than the parser's recursion limit
    "1" * 5000,                # an integer beyond Python's digit limit
    '{"a": ' + "9" * 5000 + "}",
    '"\ud800"', "NaN", "[]", "{}", "null", "\x00", "[1, 2", '{"a": 1}}',
])


@contextlib.contextmanager
def file_with(name: str, data: bytes | str):
    """A fresh folder holding the file `name` with `data` (text may hold lone surrogates)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8",
                                                                          "surrogatepass"))
        yield path


def expect_clean(call, *names):
    """``call()``, or None when it raised a user error whose message names one of `names`.

    Any other exception propagates (the test fails on it), and so does a user error
    that names none of `names` or that suggests loading a pickle.
    """
    try:
        return call()
    except USER_ERRORS as err:
        message = str(err)
        assert message.strip(), f"{type(err).__name__} without a message"
        assert any(str(name) in message for name in names), (names, message)
        assert "allow_pickle" not in message, message
        return None
