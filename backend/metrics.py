"""Prometheus metrics of one server, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """The server's counters. One instance per server, built by the composition root."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.connections = Gauge(
            "deskbell_connections",
            "Open WebSocket connections",
            ["channel"],
            registry=self.registry,
        )
        self.presence_nodes = Gauge(
            "deskbell_presence_nodes",
            "Other nodes whose presence reports this node holds (-1: cannot know yet)",
            registry=self.registry,
        )
        self.presence_agents_online = Gauge(
            "deskbell_presence_agents_online",
            "Agents online on the other nodes, as their reports say (-1: cannot know yet)",
            registry=self.registry,
        )
        self.notifications_stored = Counter(
            "deskbell_notifications_stored",
            "Notifications committed to the store",
            registry=self.registry,
        )
        self.notifications_delivered = Counter(
            "deskbell_notifications_delivered",
            "Notification frames written to agent sockets",
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "deskbell_delivery_latency_seconds",
            "From accepting an event to writing it to the last connected recipient",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.errors = Counter(
            "deskbell_errors", "Error frames sent, by code", ["code"], registry=self.registry
        )
        self.slow_disconnects = Counter(
            "deskbell_slow_consumer_disconnects",
            "Connections closed because they did not read fast enough",
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "deskbell_rate_limited",
            "Attempts refused by an abuse limit, by limit",
            ["limit"],
            registry=self.registry,
        )
        self.password_checks = Counter(
            "deskbell_password_checks",
            "Sign-in passwords checked (each one a full scrypt)",
            registry=self.registry,
        )
        self.connections_refused = Counter(
            "deskbell_connections_refused",
            "Anonymous connections refused or closed by a connection budget, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.escalations = Counter(
            "deskbell_escalations_fired",
            "Escalation steps fired (chat.conversation.waiting), by step and whether early",
            ["step", "early"],
            registry=self.registry,
        )
        self.wait_until_reply = Histogram(
            "deskbell_wait_until_reply_seconds",
            "How long visitors waited until an agent's reply ended their wait",
            buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600),
            registry=self.registry,
        )
        self.publishes = Counter(
            "deskbell_publishes", "Events accepted on /service", registry=self.registry
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
