"""SoftPrompt, PromptedT5, T5 blocks, init, loss; may import io, text, interop, backends (no framework)."""
