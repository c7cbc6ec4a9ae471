"""Presets, HF T5 checkpoints (hf://, cache), PEFT/official prompts; may import io, text, backends."""
