"""``softprompt tasks``: the built-in tasks, their formats, metrics, labels and data sources."""

from __future__ import annotations

import json

import click

from softprompt.cli.common import UserInputError


@click.command("tasks")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
def tasks(names, as_json):
    """List the tasks (or the tasks NAMES): input format, targets, metrics, where the data
    comes from, and a sample row formatted as training sees it.

    Without --data, train/eval/ensemble read a task's hub dataset (shown as
    hf://datasets/...); --data also takes the distributed files shown.

    \b
    Example:
        softprompt tasks
        softprompt tasks boolq mrqa/bioasq
        softprompt tasks --json
    """
    from softprompt.tasks import catalog

    try:  # no framework is needed here: errors handled without `user_errors`' TF import
        entries = [catalog.describe(n) for n in names] if names else catalog.describe_all()
    except ValueError as err:
        raise UserInputError(str(err)) from None
    if as_json:
        click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    for i, entry in enumerate(entries):
        if i:
            click.echo()
        click.echo(f"{entry['name']}  {entry['summary']}")
        data = entry["data"]
        rows = [("input", entry["input"]), ("target", entry["target"]),
                ("metrics", ", ".join(entry["metrics"])),
                ("hub", data["hub"] or "none (pass --data)"), ("files", data["files"])]
        if entry["example"] is not None:
            rows += [("example", entry["example"]["inputs"]),
                     ("", f"-> {entry['example']['target']}")]
        for label, text in rows:
            click.echo(f"  {label:<8} {text}")
