"""Kafka ingestion into a user's bucket: pure pieces (spec, keys, batching, verify, encoding), the worker
process, and the platform side (records, manager, local process backend)."""
