"""The ``softprompt`` command line: thin Click commands over library calls."""
