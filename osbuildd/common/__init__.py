"""Leaf modules shared by the daemon and the bundled engine: they import nothing else of osbuildd.

The engine (``osbuildd.engine``) and the runner (``osbuildd.runner``) may import only these, never
daemon code; ``tests/foundation/test_architecture.py`` checks it.
"""
