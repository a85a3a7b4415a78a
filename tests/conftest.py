"""Test-wide settings: every chart a page draws during the tests is validated against the Vega-Lite schema
(served pages skip that check for speed; llmcap.app.chart_export.vega_lite_spec)."""

import os

os.environ.setdefault("LLMCAP_VALIDATE_CHARTS", "1")
