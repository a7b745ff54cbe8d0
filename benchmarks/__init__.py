"""sms-sender's benchmark suite: ``python -m benchmarks run [--size tiny|full] …``.

Each figure starts what it needs (a throwaway PostgreSQL, the fake gateway, worker and API
processes) on 127.0.0.1, measures one thing the issue sets a target for, and reports the value
with the target, the database, the sizes and the machine's core count. See docs/benchmarks.md.
"""
