"""The rules engine shared by recommend_flags and check_command: parse, plan, estimate, check, render."""
