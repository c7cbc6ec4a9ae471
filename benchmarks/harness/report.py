"""Number formats and the header line of a run's markdown (`benchmarks.comparisons.markdown`).

Tables report what was measured: times (medians, context only) and ratios measured inside
the run (medians of per-round ratios). They carry no targets and no verdicts.

Example:
    >>> times(1.234)
    '1.23×'
    >>> header({"profile": "short", "machine": {"cpu": "AMD EPYC", "cores": 2}})
    'Profile `short` on AMD EPYC (2 cores, default threads)'
"""

from __future__ import annotations


def times(v) -> str:
    """A ratio, ``1.23×``; ``—`` when it was not measured."""
    return "—" if v is None else f"{v:.2f}×"


def percent(v) -> str:
    """A share, ``68%``; ``—`` when it was not measured."""
    return "—" if v is None else f"{100 * v:.0f}%"


def number(v, digits: int = 2) -> str:
    """A plain number with `digits` decimals; ``—`` when it was not measured."""
    return "—" if v is None else f"{v:.{digits}f}"


def cell(v) -> str:
    return "—" if v is None else str(v)


def header(results: dict) -> str:
    """Profile, CPU, cores, threads and library versions of a run."""
    machine = results.get("machine", {})
    threads = (results.get("settings") or {}).get("threads")
    text = (f"Profile `{results.get('profile')}` on {machine.get('cpu', '?')} "
            f"({machine.get('cores', '?')} cores, "
            f"{'default threads' if threads is None else f'{threads} thread(s) per worker'})")
    if "only_backend" in results:  # runs recorded before the option have no such key
        text += ("; each keras worker loads only its backend's framework"
                 if results["only_backend"] else "; every worker imports every installed framework")
    flags = machine.get("cpu_flags")
    if flags:
        text += f"; CPU flags: {flags}"
    if machine.get("gpus"):
        text += f"; GPU: {', '.join(machine['gpus'])}"
    if machine.get("versions"):
        text += f"; {machine['versions']}"
    return text
