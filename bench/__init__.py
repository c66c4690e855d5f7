"""Benchmark harness for contact-router (issue 6).

`python -m bench` (or `make bench`) starts `contact-router serve` on a scratch
PostgreSQL database, drives it from separate load-generator processes over loopback,
measures the same load against a bare grpc.aio server and bare asyncpg writes in the
same run, and prints the router's figures as ratios to those baselines.
"""
