"""What every service needs the same way: settings, logging, metrics, health,
Kafka with safe defaults, retries and dead letters, and the process runner.

Services import this package and ``contracts``; never each other.
"""
