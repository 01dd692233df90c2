"""The outbox relay: outbox rows to RabbitMQ, with publisher confirms."""
