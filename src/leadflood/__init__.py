"""Lead Flood: inbound lead distribution and outbound outreach on PostgreSQL."""

__version__ = "0.1.0"
