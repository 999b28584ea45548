"""The knowledge base: YAML data under data/, its pydantic schema under schema/, and the loader."""
