"""The export side: which models are candidates, ensembles of them, the export folders, and the report writer
(tables, prose, plots, provenance, the commands behind every number)."""
