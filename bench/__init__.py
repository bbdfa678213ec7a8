"""The template's benchmark: what each answer costs in image size, build time, start time
and throughput. Run it with `make bench`; it reports, it never asserts (the tests do that)."""
