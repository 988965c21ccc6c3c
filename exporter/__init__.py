"""`modelmon exporter`: the metrics topic as Prometheus gauges over HTTP.

`state` keeps the current row of every series (and a short history), `collector` turns it into metric
families, `server` feeds the state from Kafka and serves it; `columns` is the one table of what each
exported column means.
"""
