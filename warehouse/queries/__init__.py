"""The query library: typed functions over the warehouse that return Polars frames.

Every function takes a `Scope` (the project(s) a caller may see), so none can forget the tenant
filter; values are always bound server-side and identifiers come from allow-lists.
"""
