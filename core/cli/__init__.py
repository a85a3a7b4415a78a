"""The llmcap command line: argument parsing and printing; each command calls the library."""
