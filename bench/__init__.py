"""The wallet's benchmark: `python -m bench` (or `make bench`); `python -m bench --quick` for a smoke run.

Sections: DynamoDB calls per request, handler overhead (in-process, botocore Stubber), cold start (fresh
interpreters), throughput end to end (`wallet local` on DynamoDB Local), our design against a naive baseline, and a
cost model. One table on stdout, the same as JSON in bench/results/latest.json. See docs/PERFORMANCE.md.
"""
