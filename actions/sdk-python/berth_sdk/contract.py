"""The berth:connector contract this SDK builds for (wit/since_v0.2.0)."""

CONTRACT = "0.2.0"
WIT = "since_v0.2.0"
