"""Files: prompt files, atomic writes, preset resolution."""
