"""The prompt server: HTTP app, micro-batcher, prompt registry, metrics; backend-neutral, and
only `engine` touches the model (through softprompt's inference path)."""
