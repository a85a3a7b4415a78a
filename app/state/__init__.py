"""Pure URL state of the pages (parse, validate, serialize): no streamlit, tested like library code."""
