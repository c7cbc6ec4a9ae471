"""One batched generate/score path, eval, ensembles, requests; may import io..interop, tasks."""
