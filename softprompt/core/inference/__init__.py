"""Answers from a model: one batched path for generation and scoring, used by evaluation,
ensembles, request prediction, neighbours and serving.

It may import `io`, `text`, `model`, `interop` and `softprompt.tasks`; never training.
"""
