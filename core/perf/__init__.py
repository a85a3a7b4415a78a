"""Per-operator performance: shapes, operator table, efficiency, step timing, memory, roofline."""
