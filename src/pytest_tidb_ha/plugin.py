"""pytest glue only (options, markers, fixtures, YAML collection, report hooks)."""
