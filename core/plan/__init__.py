"""Planning: search space, ranking, disaggregated pools, mixed device types, Pareto fronts, what-ifs."""
