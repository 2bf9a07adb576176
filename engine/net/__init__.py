"""The backstage's network side: the audience server, its protocol, and the join URL."""
