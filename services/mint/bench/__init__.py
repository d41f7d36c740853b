"""``mint bench``: the money path under load, side by side with raw PostgreSQL (quality.md
"Benchmarks"; README "Benchmarks").

* :mod:`.run` — orchestration: one run per scenario x target x clients, then the report;
* :mod:`.platform` — the platform under test (its own, in a scratch directory, or a running one),
  its users and their funding;
* :mod:`.load` — the load generator, a separate process (``python -m mint.bench.load``);
* :mod:`.probes` — CPU seconds and resident memory of each service process and the gateway;
* :mod:`.eventlag` — lag from commit to each consumer (:mod:`.lag_consumer` is the bench's own);
* :mod:`.pgbench` — the raw PostgreSQL anchor; :mod:`.starts` — cold and warm start times;
* :mod:`.stats`, :mod:`.report` and :mod:`.aims` — percentiles, the JSON and the Markdown
  table, and issue 9's aims judged against them (reported, never asserted).

No service imports this package (``.importlinter``).
"""
