"""Pretraining: LM adaptation and from-scratch models."""
