"""Other libraries' formats: Hugging Face T5 checkpoints, PEFT adapters, the official prompts.

It may import `io`, `text`, `model`, `softprompt.backends` (the safe PyTorch-file reader)
and safetensors.
"""
