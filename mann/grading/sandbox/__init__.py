"""Code that runs inside the grading sandbox (server.py, probe.py, confine.py, tree.py).

These modules import only the standard library, numpy and torch: the server
runs them by path, with the grader's packages absent from ``sys.path``.
"""
