"""`mailpulse bench`: the pipeline measured against its ceilings on one machine (issue 8).

One module per measurement, ``runner`` prints the table. Nothing here asserts a time.
"""
