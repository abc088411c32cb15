"""frontdesk: a self-hostable AI front desk for therapy and mental-health practices."""

__version__ = "0.1.0"
