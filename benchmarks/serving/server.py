"""A server for the load benchmark: the app of ``softprompt serve`` over a random T5.

Nothing is downloaded: ``--model t5-small`` is a random T5 of that shape (vocab 32128,
d 512, 6+6 layers; `softprompt.core.pretraining.scratch`) with the benchmarks' `WordTokenizer`
(random weights are fine for throughput); ``--model softprompt_tiny`` is the embedded
model. ``--tasks N`` random prompts are saved with softprompt's own `save_prompt` into a
folder the server reads like any other. Everything else is the library's: `Engine`,
`Runtime`, `create_app`, `DrainingServer`. One route is added for the benchmark,
``POST /bench/batching {"mode": "mixed"|"per-task"}``, so that one process (same weights,
same compiled shapes) serves both contenders in interleaved rounds.

    python -m benchmarks.serving.server --model t5-small --tasks 8 --port 8123 --info info.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def build_model(name: str):
    """A `PromptedT5` (its own prompt unused) and a short description."""
    from softprompt.core.model.prompted_t5 import PromptedT5

    if name == "softprompt_tiny":
        return PromptedT5.from_preset(name, prompt_length=1, init="uniform", seed=0)
    from benchmarks.harness.workload import WordTokenizer
    from benchmarks.profiles import ModelSpec
    from softprompt.core.pretraining.scratch import build_backbone

    spec = ModelSpec(name)
    backbone = build_backbone(spec.vocabulary_size, spec.config, spec.style, seed=0)
    model = PromptedT5(backbone, prompt_length=1, init="uniform", seed=0,
                       tokenizer=WordTokenizer(spec.vocabulary_size))
    model.preset = f"random-{name}"
    return model


def write_prompts(folder: Path, model, tasks: int, length: int) -> None:
    from softprompt.core.io.prompt_files import save_prompt

    matrix = model.embedding_matrix()
    for k in range(tasks):
        rng = np.random.default_rng(k)
        rows = matrix[rng.integers(3, matrix.shape[0], length)]
        save_prompt(folder / f"task{k:03d}.npy", rows, backbone=model.identity(),
                    prompt_length=length, labels=["True", "False"], max_target_length=8)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="t5-small", help="t5-small, small or softprompt_tiny")
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--prompt-length", type=int, default=20)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout-ms", type=float, default=10.0)
    parser.add_argument("--max-input-length", type=int, default=128)
    parser.add_argument("--max-queue", type=int, default=4096)
    parser.add_argument("--batching", default="mixed")
    parser.add_argument("--info", type=Path, help="write the model's size here (JSON)")
    args = parser.parse_args(argv)

    import uvicorn

    from softprompt.core.serving.app import create_app
    from softprompt.core.serving.config import ServeConfig
    from softprompt.core.serving.engine import Engine
    from softprompt.core.serving.runtime import Runtime
    from softprompt.core.serving.server import DrainingServer, configure_logging

    configure_logging()
    model = build_model(args.model)
    folder = Path(tempfile.mkdtemp(prefix="softprompt-bench-prompts-"))
    write_prompts(folder, model, args.tasks, args.prompt_length)
    config = ServeConfig(preset=str(model.preset), prompts=folder, host="127.0.0.1",
                         port=args.port, max_batch_size=args.max_batch_size,
                         batch_timeout_ms=args.batch_timeout_ms, max_queue=args.max_queue,
                         max_input_length=args.max_input_length, max_new_tokens_limit=64,
                         batching=args.batching, queue_timeout_ms=600_000.0)
    engine = Engine(model, max_batch_size=config.max_batch_size,
                    max_input_length=config.max_input_length,
                    max_new_tokens_limit=config.max_new_tokens_limit)
    runtime = Runtime(config, engine=engine)
    if args.info:
        parameters = int(model.backbone.count_params())
        args.info.write_text(json.dumps({
            "model": args.model, "parameters": parameters,
            "weight_bytes": int(sum(np.prod(w.shape) * np.dtype(w.dtype).itemsize
                                    for w in model.backbone.weights)),
            "prompt_bytes": int(args.tasks * args.prompt_length * model.backbone.hidden_dim * 4),
            "tasks": args.tasks, "prompt_length": args.prompt_length}))
    app = create_app(runtime)

    @app.post("/bench/batching")
    async def batching(body: dict):
        runtime.batcher.per_task = body["mode"] == "per-task"
        return {"mode": "per-task" if runtime.batcher.per_task else "mixed"}

    server = DrainingServer(uvicorn.Config(app, host="127.0.0.1", port=args.port,
                                           access_log=False, log_level="warning"), runtime)
    server.run()


if __name__ == "__main__":
    main()
