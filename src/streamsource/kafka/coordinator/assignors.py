"""Server-side partition assignors of the consumer-group protocol (KIP-848): uniform, range.

An assignor maps each member's subscribed topics and each topic's partition count to a
target assignment. Both are pure functions of their input; ``uniform`` also takes the
previous target so that a membership change moves as few partitions as it can (every
moved partition costs a revocation round trip and a pause in consumption).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

TopicPartition = tuple[str, int]
Assignment = dict[str, set[TopicPartition]]
# (subscriptions by member, partition counts by topic, previous target) -> new target
Assignor = Callable[
    [Mapping[str, frozenset[str]], Mapping[str, int], Mapping[str, set[TopicPartition]]],
    Assignment,
]


def _subscribers(
    subscriptions: Mapping[str, frozenset[str]], partitions: Mapping[str, int]
) -> dict[str, list[str]]:
    """Topic -> subscribed members (sorted), for topics that exist."""
    found: dict[str, list[str]] = {}
    for member in sorted(subscriptions):
        for topic in subscriptions[member]:
            if partitions.get(topic, 0) > 0:
                found.setdefault(topic, []).append(member)
    return found


def range_assignor(
    subscriptions: Mapping[str, frozenset[str]],
    partitions: Mapping[str, int],
    previous: Mapping[str, set[TopicPartition]],
) -> Assignment:
    """Per topic, consecutive ranges of partitions to its subscribers in member-id order:
    members subscribed to the same topics get the same partition numbers of each (for
    joins of co-partitioned topics)."""
    target: Assignment = {member: set() for member in subscriptions}
    for topic, members in sorted(_subscribers(subscriptions, partitions).items()):
        count = partitions[topic]
        base, extra = divmod(count, len(members))
        start = 0
        for i, member in enumerate(members):
            size = base + (1 if i < extra else 0)
            target[member].update((topic, p) for p in range(start, start + size))
            start += size
    return target


def uniform_assignor(
    subscriptions: Mapping[str, frozenset[str]],
    partitions: Mapping[str, int],
    previous: Mapping[str, set[TopicPartition]],
) -> Assignment:
    """Spread every partition over its topic's subscribers as evenly as possible, keeping
    each partition where the previous target had it while its member is under quota.

    The quota comes from a plain least-loaded pass (balanced for any mix of
    subscriptions); the sticky pass then keeps previous placements up to that quota and
    places the rest on the least-loaded eligible member.
    """
    subscribers = _subscribers(subscriptions, partitions)
    # topics with fewer subscribers first: their partitions have fewer places to go
    order = sorted(subscribers, key=lambda t: (len(subscribers[t]), t))
    all_partitions = [(t, p) for t in order for p in range(partitions[t])]
    # quota: what a fresh least-loaded assignment gives each member
    quota = dict.fromkeys(subscriptions, 0)
    for topic, _ in all_partitions:
        quota[min(subscribers[topic], key=lambda m: (quota[m], m))] += 1
    target: Assignment = {member: set() for member in subscriptions}
    unplaced: list[TopicPartition] = []
    previous_owner = {tp: m for m, tps in previous.items() for tp in tps}
    for tp in all_partitions:
        owner = previous_owner.get(tp)
        if owner in target and tp[0] in subscriptions[owner] and len(target[owner]) < quota[owner]:
            target[owner].add(tp)
        else:
            unplaced.append(tp)
    for tp in unplaced:
        eligible = subscribers[tp[0]]
        under = [m for m in eligible if len(target[m]) < quota[m]] or eligible
        target[min(under, key=lambda m: (len(target[m]), m))].add(tp)
    return target


ASSIGNORS: dict[str, Assignor] = {"uniform": uniform_assignor, "range": range_assignor}
DEFAULT_ASSIGNOR = "uniform"  # Kafka's group.consumer.assignors lists uniform first
