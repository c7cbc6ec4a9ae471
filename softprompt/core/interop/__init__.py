"""HF T5 checkpoints, PEFT and official prompts; may import io..model, backends, safetensors."""
