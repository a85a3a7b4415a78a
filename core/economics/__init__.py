"""Cost and energy at an operating point."""
