"""Private helpers: input validation, atomic files, tables, thread limits, optional imports.

Nothing here is public API; every public module that needs one of these imports it from
its module here.
"""
