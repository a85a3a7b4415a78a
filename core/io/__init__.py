"""Input and output: safe JSON, table output, scenario files."""
