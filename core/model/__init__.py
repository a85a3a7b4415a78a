"""Model architectures and Hugging Face config.json parsing."""
