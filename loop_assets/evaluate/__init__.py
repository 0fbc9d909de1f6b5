"""EVALUATE: run a model (or recorded answers) on the suite and judge each answer by its case's rule."""
