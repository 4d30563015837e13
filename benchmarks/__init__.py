"""
The securetcp side-by-side performance harness (not part of the test
suite): ``python -m benchmarks`` from the repository root.  See
benchmarks/README.md.
"""
