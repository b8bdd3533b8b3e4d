"""The command-line shell: parse, call a service, render."""
