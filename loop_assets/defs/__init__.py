"""The Dagster shell: assets, resources and checks wired around the pure core modules."""
