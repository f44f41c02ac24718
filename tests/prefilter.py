"""A history search run with or without the required-literal prefilter (tailf/literal.py), for
the tests that compare the two and bench/literal_bench.py."""

from tailf import search as search_module
from tailf.search import scan


def search_all(path, pattern, literal, **options):
    """Every event but progress of a search run to its end, with or without the prefilter."""
    original = search_module.required_literals
    if not literal:
        search_module.required_literals = lambda pattern: []
    try:
        return [event for event in scan([str(path)], pattern, **options)
                if event[0] != "progress"]
    finally:
        search_module.required_literals = original
