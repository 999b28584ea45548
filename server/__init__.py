"""The MCP adapter, the command line and the settings."""
