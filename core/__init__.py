"""llmcap core: catalogs, estimator and planner. Pure Python; never imports streamlit."""
