"""Interoperability: Hugging Face T5 checkpoints and PEFT/official prompt formats."""
