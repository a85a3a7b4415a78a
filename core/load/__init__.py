"""Serving under traffic: requests and traces, step table, simulator, queueing model, serving at a rate."""
