"""pika adapters: topology declaration, a confirming batch publisher and a resilient consumer."""
