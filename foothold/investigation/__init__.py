"""Investigation: what incident responders read back from the store (session timelines, what a session left
behind, which credentials it touched, the report), beside ingest and depending only on the schema and the
store, never on the collector service. ``access`` opens a reader: the running collector's query API, or the
store directly."""
