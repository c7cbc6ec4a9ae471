"""The network: SoftPrompt, PromptedT5, T5 blocks, prompt init, loss."""
