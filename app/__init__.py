"""The llmcap dashboard (Streamlit): pages, widgets and charts over the library. Needs the `app` extra."""
