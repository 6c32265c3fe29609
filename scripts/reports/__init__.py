"""Reports: JSON, JUnit, SARIF, merged shards."""
