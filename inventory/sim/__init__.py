"""Local simulators of the protocol peers yiyun talks to, for tests, benchmarks and the demo."""
