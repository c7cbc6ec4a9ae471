"""``softprompt serve``: one frozen model, a folder of prompts, every task over HTTP."""

from __future__ import annotations

import sys

import click

from softprompt.cli.common import backend_option, dtype_option, user_errors
from softprompt.core.serving.config import BATCHING, ServeConfig

_FIELDS = ServeConfig.__dataclass_fields__


def _default(name):
    return _FIELDS[name].default


@click.command("serve")
@backend_option
@dtype_option
@click.option("--preset", required=True,
              help="The frozen model: a keras-hub preset name or directory, or softprompt_tiny.")
@click.option("--prompts", required=True, type=click.Path(),
              help="Folder of prompt files: NAME.npy (with its NAME.json sidecar) is task NAME.")
@click.option("--host", default=_default("host"), show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=int, default=_default("port"), show_default=True)
@click.option("--max-batch-size", type=int, default=_default("max_batch_size"),
              show_default=True, help="Rows (input x prompt) per model call at most.")
@click.option("--batch-timeout-ms", type=float, default=_default("batch_timeout_ms"),
              show_default=True, help="How long the oldest queued row waits for companions.")
@click.option("--max-queue", type=int, default=_default("max_queue"), show_default=True,
              help="Rows that may wait at once; more is answered 429.")
@click.option("--queue-timeout-ms", type=float, default=_default("queue_timeout_ms"),
              show_default=True, help="A row that waited longer is answered 504.")
@click.option("--max-input-length", type=int, default=_default("max_input_length"),
              show_default=True, help="Longest input in tokens; longer is answered 422.")
@click.option("--max-new-tokens-limit", type=int, default=_default("max_new_tokens_limit"),
              show_default=True, help="Most tokens a request may ask to decode.")
@click.option("--watch", is_flag=True,
              help="Serve prompt files added, replaced or removed while running.")
@click.option("--batching", type=click.Choice(BATCHING), default=_default("batching"),
              show_default=True,
              help="mixed: any tasks share a batch; per-task: one task per batch (baseline).")
@click.option("--allow-mismatch", is_flag=True,
              help="Serve prompts whose sidecar names another backbone.")
@click.option("--keep-alive-s", type=float, default=_default("keep_alive_s"), show_default=True,
              help="Seconds an idle connection stays open; above any proxy's idle timeout.")
@click.option("--access-log", is_flag=True, help="Log every request (uvicorn's access log).")
@click.option("--ray", is_flag=True, help="Serve with Ray Serve (pip install 'softprompt[ray]').")
@click.option("--replicas", type=int, default=_default("replicas"), show_default=True,
              help="Ray Serve replicas (with --ray), each holding the model and every prompt.")
@user_errors
def serve(**options):
    """Serve every prompt in a folder over HTTP, with one frozen model.

    NAME.npy with its sidecar NAME.json (what training writes as best.npy and best.json)
    is the task NAME. Requests for different tasks share batches; /v1/completions and
    /v1/models speak OpenAI's API (model = task name); /metrics is Prometheus. SIGTERM
    finishes the accepted requests, then exits. docs/serving.md has the API.

    \b
    Example:
        softprompt serve --preset softprompt_tiny --prompts path/to/prompts --watch
        softprompt serve --preset path/to/my-t5 --prompts path/to/prompts --host 0.0.0.0 \\
            --max-batch-size 64 --dtype bfloat16
        softprompt serve --preset path/to/my-t5 --prompts path/to/prompts --ray --replicas 2
    """
    config = ServeConfig(**options)
    if config.replicas > 1 and not config.ray:
        raise ValueError("--replicas needs --ray (or run several servers behind a load balancer)")
    config.check_prompts_dir()
    if config.ray:
        from softprompt.core.serving.ray_app import serve_with_ray

        sys.exit(serve_with_ray(config))
    from softprompt.core.serving.server import serve as run

    sys.exit(run(config))
