"""Which recorded events the relay publishes, and to which Kafka topic (pure functions).

By default every event is published to one topic per category (the stream-name prefix
before the first ``-``), the topic name being the category made legal for Kafka. A
:class:`TopicMapping` narrows that to some categories and/or event types, prefixes the topic
names, or sends everything to a single topic.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from streamsource.errors import ProgrammingError

MAX_TOPIC_LENGTH = 249  # Kafka's limit (the broker keeps 255 for "-<partition>" directories)
_ILLEGAL = re.compile(r"[^a-zA-Z0-9._-]")


def sanitize_topic(name: str) -> str:
    """A legal Kafka topic name for ``name``: illegal characters become ``_``.

    A name that is too long is cut and given a short hash of the full name, so that two long
    categories sharing a prefix still go to different topics. ``.`` and ``..`` (refused by
    Kafka) and the empty name become ``_``-prefixed.
    """
    legal = _ILLEGAL.sub("_", name)
    if legal in ("", ".", ".."):
        legal = "_" + legal
    if len(legal) > MAX_TOPIC_LENGTH:
        digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        legal = legal[: MAX_TOPIC_LENGTH - 13] + "-" + digest
    return legal


def check_topic(name: str) -> str:
    """Return ``name`` if it is a legal Kafka topic name, else raise ProgrammingError."""
    if (
        not name
        or name in (".", "..")
        or len(name) > MAX_TOPIC_LENGTH
        or _ILLEGAL.search(name) is not None
    ):
        raise ProgrammingError(
            f"{name!r} is not a legal Kafka topic name (1-{MAX_TOPIC_LENGTH} of [a-zA-Z0-9._-])"
        )
    return name


def _frozen(values: Iterable[str] | str | None) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        return frozenset((values,))
    chosen = frozenset(values)
    return chosen or None  # an empty choice means "no filter", as on the command line


@dataclass(frozen=True)
class TopicMapping:
    """Selects events by category and type and names the topic each one goes to.

    ``categories``/``types``: publish only these (None: all). ``topic``: one topic for every
    event instead of one per category. ``topic_prefix``: prepended to per-category topics
    (``"bank."`` sends category ``account`` to ``bank.account``).
    """

    categories: frozenset[str] | None = None
    types: frozenset[str] | None = None
    topic: str | None = None
    topic_prefix: str = ""
    _topics: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", _frozen(self.categories))
        object.__setattr__(self, "types", _frozen(self.types))
        if self.topic is not None:
            check_topic(self.topic)
        if self.topic_prefix:
            check_topic(self.topic_prefix)

    @classmethod
    def of(
        cls,
        categories: Iterable[str] | str | None = None,
        types: Iterable[str] | str | None = None,
        *,
        topic: str | None = None,
        topic_prefix: str = "",
    ) -> TopicMapping:
        """Build a mapping from any iterables (or single strings) of categories and types."""
        return cls(_frozen(categories), _frozen(types), topic, topic_prefix)

    def selects(self, category: str, event_type: str) -> bool:
        """Whether an event of this category and type is published."""
        return (self.categories is None or category in self.categories) and (
            self.types is None or event_type in self.types
        )

    def topic_for(self, category: str) -> str:
        """The topic that events of ``category`` are published to."""
        if self.topic is not None:
            return self.topic
        topic = self._topics.get(category)
        if topic is None:
            topic = sanitize_topic(self.topic_prefix + category)
            if len(self._topics) < 100_000:  # bound the cache, not the number of categories
                self._topics[category] = topic
        return topic

    def topics(self) -> list[str] | None:
        """The topics a consumer subscribes to, when they are known in advance (else None)."""
        if self.topic is not None:
            return [self.topic]
        if self.categories is None:
            return None
        return sorted({self.topic_for(c) for c in self.categories})
