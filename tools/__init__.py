"""Tool logic as plain Python: no MCP imports here, so every function is testable directly."""
