"""`mailpulse bench`: the pipeline measured against its ceilings on one machine (docs/performance.md).

One module per measurement, ``runner`` prints the table. Nothing here asserts a time.
"""
