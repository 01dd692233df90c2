"""Dear MP's common library: config, logging, messages, broker, database, outbox and inbox."""
