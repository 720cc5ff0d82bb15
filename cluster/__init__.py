"""How work gets onto a Ray cluster: typed config, runtime, jobs, secrets, telemetry, the CLI."""
