"""Inference: generation, scoring, evaluation, ensembles, prediction, neighbours."""
