"""Past one machine: the DuckLake warehouse's upkeep and the cluster's moving parts.

See the README, "Running on a cluster".
"""
