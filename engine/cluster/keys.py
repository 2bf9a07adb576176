"""Every Redis key one show uses, named in one place (``sc:<show>:…``), so roles agree and a runbook can list them.

Streams keep their entries until trimmed; everything about phones and images has a TTL
(``[cluster] history_ttl``), refreshed on each change, so a show's keys go away by themselves after it.
"""

from __future__ import annotations

from dataclasses import dataclass

PROMPTS_GROUP = "show"  # the show's consumer group on the prompt stream
JOBS_GROUP = "generate"  # the workers' consumer group on the job stream
RESULTS_GROUP = "show"  # the show's consumer group on the result stream
STREAM_MAXLEN = 100_000  # entries kept per stream (approximate trim): about a day of a busy show


@dataclass(frozen=True)
class Keys:
    show: str

    @property
    def prefix(self) -> str:
        return f"sc:{self.show}:"

    @property
    def prompts(self) -> str:
        """Stream: prompts from every intake, read by the show."""
        return self.prefix + "prompts"

    @property
    def jobs(self) -> str:
        """Stream: generation jobs from the show, read by the generate workers."""
        return self.prefix + "jobs"

    @property
    def results(self) -> str:
        """Stream: images (or failures) from the workers, read by the show."""
        return self.prefix + "results"

    @property
    def status(self) -> str:
        """Pub/Sub channel: statuses for phones, every intake delivers those of its own phones."""
        return self.prefix + "status"

    @property
    def feed(self) -> str:
        """Pub/Sub channel: the line of text every phone's feed shows when a prompt goes on screen."""
        return self.prefix + "feed"

    def phone(self, client_id: str) -> str:
        """Hash: a phone's statuses by prompt id (its history, for a phone that reconnects anywhere)."""
        return f"{self.prefix}phone:{client_id}"

    def phone_order(self, client_id: str) -> str:
        """Sorted set: the phone's prompt ids by first status, so its history keeps only the newest."""
        return f"{self.prefix}phone:{client_id}:order"

    def image(self, image_id: str) -> str:
        """String: an image's bytes, served by every intake."""
        return f"{self.prefix}img:{image_id}"

    @property
    def images(self) -> str:
        """Sorted set: image id → bytes, by time added; the oldest are dropped past ``image_cache_mb``."""
        return self.prefix + "images"

    @property
    def image_bytes(self) -> str:
        """Integer: the bytes of every image in ``images``."""
        return self.prefix + "images:bytes"

    def bucket(self, kind: str, who: str) -> str:
        """Hash: a token bucket (``kind`` "c" for a phone, "a" for an address)."""
        return f"{self.prefix}tb:{kind}:{who}"

    def dupe(self, client_id: str, key: str) -> str:
        """String with a TTL: this phone sent this text recently."""
        return f"{self.prefix}dupe:{client_id}:{key}"

    @property
    def banned_clients(self) -> str:
        return self.prefix + "banned:clients"

    @property
    def banned_addresses(self) -> str:
        return self.prefix + "banned:addresses"

    @property
    def owner(self) -> str:
        """String with a TTL: the show process that owns this show (one screen, one owner)."""
        return self.prefix + "owner"
