// Cairn.Client: a lean Kafka client on the project's own protocol code.
