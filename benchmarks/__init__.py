"""Benchmarks for ``nox -s bench``: each reports figures against a baseline measured in the same run."""
