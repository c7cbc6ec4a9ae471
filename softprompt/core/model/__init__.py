"""The network: SoftPrompt, PromptedT5 (prompt + frozen T5 wiring), T5 blocks, prompt init, loss.

It may import `io`, `text`, `softprompt.backends`, keras, keras_hub and numpy; never
training, inference, tasks, the CLI or a framework.
"""
