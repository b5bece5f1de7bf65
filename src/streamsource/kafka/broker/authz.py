"""Authorization of every request: which resources it names, what it must be allowed to do
on each, and how a refusal is answered, as one table (``RULES``) keyed by API.

A request is checked before its handler runs. Where Kafka refuses per resource, the
refused entries are taken out of the request, the handler runs on the rest, and the
response gets an entry per refused resource with Kafka's error code (TOPIC_/GROUP_/
CLUSTER_/TRANSACTIONAL_ID_AUTHORIZATION_FAILED); where Kafka refuses the whole request,
the handler does not run and the response carries the code. Read-only answers that list
resources (Metadata, ListGroups, ListTransactions...) are filtered to what the principal
may describe. ``TopicList`` says, as data, where a request lists topics and where its
response answers each one. An API without a rule is refused unless the principal is a
super user: a new API is closed until someone writes its rule.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from streamsource.kafka.broker.responses import Deferred
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.api import RESPONSES, ApiKey
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.schema import Message, Struct
from streamsource.kafka.security.acl import (
    CLUSTER_NAME,
    WILDCARD_PRINCIPAL,
    Authorizer,
    Operation,
    Permission,
    ResourceType,
)

Op = Operation
RT = ResourceType
TOPIC_DENIED = ErrorCode.TOPIC_AUTHORIZATION_FAILED
GROUP_DENIED = ErrorCode.GROUP_AUTHORIZATION_FAILED
CLUSTER_DENIED = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
TXN_DENIED = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED

Call = Callable[[Any], Awaitable[Any]]  # runs the handler on a (possibly reduced) request


class Check:
    """What one request may do, for its client."""

    def __init__(self, authorizer: Authorizer, client: ClientInfo, topics: TopicLookup) -> None:
        self._authorizer = authorizer
        self._client = client
        self.topics = topics

    def __call__(self, operation: Op, resource_type: RT, name: str) -> bool:
        c = self._client
        return self._authorizer.allowed(c.principal, c.host, operation, resource_type, name)

    def topic(self, operation: Op) -> Callable[[str], bool]:
        return lambda name: self(operation, RT.TOPIC, name)

    def cluster(self, operation: Op) -> bool:
        return self(operation, RT.CLUSTER, CLUSTER_NAME)

    def may_create_topic(self, name: str) -> bool:
        return self.cluster(Op.CREATE) or self(Op.CREATE, RT.TOPIC, name)

    def idempotent_write(self) -> bool:
        """KIP-679: IDEMPOTENT_WRITE on the cluster, or WRITE granted on some topic."""
        if self.cluster(Op.IDEMPOTENT_WRITE):
            return True
        c = self._client
        if c.principal in self._authorizer.super_users:
            return True
        return any(
            a.resource_type == RT.TOPIC
            and a.permission == Permission.ALLOW
            and a.operation in (Op.WRITE, Op.ALL)
            and a.principal in (c.principal, WILDCARD_PRINCIPAL)
            and a.host in (c.host, "*")
            for a in self._authorizer.acls
        )


Rule = Callable[[Check, RequestHeader, Any, Call], Awaitable[Any]]


class TopicLookup(Protocol):
    """What a rule needs of the broker's topics: whether one exists, a name from an id."""

    def get(self, name: str) -> Any | None: ...

    def by_id(self, topic_id: Any) -> Any | None: ...


# -- topic lists, as data ---------------------------------------------------------------


@dataclass(frozen=True)
class TopicList:
    """Field names: the request's topic list and each entry's name and partitions (structs
    with ``index``, or ints); the response's list, and the same for its entries."""

    request: str
    response: str
    name: str = "name"
    response_name: str = "name"
    partitions: str | None = "partitions"
    index: str = "partition_index"
    response_partitions: str | None = "partitions"
    response_index: str = "partition_index"


PRODUCE = TopicList("topic_data", "responses", partitions="partition_data", index="index",
                    response_partitions="partition_responses", response_index="index")  # fmt: skip
FETCH = TopicList("topics", "responses", name="topic", response_name="topic", index="partition")
TOPICS = TopicList("topics", "topics")  # ListOffsets, OffsetCommit, DeleteRecords, TxnOffsetCommit
ADD_PARTITIONS = TopicList("topics", "results", response_partitions="results")
NO_PARTITIONS = TopicList("topics", "topics", partitions=None, response_partitions=None)
CREATE_PARTITIONS = TopicList("topics", "results", partitions=None, response_partitions=None)
DESCRIBE_PRODUCERS = TopicList("topics", "topics", partitions="partition_indexes")


def take_denied(request: Any, spec: TopicList, allowed: Callable[[str], bool]) -> list[Any]:
    """Remove the entries of refused topics from ``request``; returns them."""
    kept: list[Any] = []
    denied: list[Any] = []
    for entry in getattr(request, spec.request):
        (kept if allowed(getattr(entry, spec.name)) else denied).append(entry)
    setattr(request, spec.request, kept)
    return denied


def answer_denied(response: Any, spec: TopicList, denied: list[Any], code: ErrorCode) -> None:
    """Add to ``response`` an entry with ``code`` for each refused request entry."""
    if response is None or not denied:
        return  # acks=0
    entry_class = _element(type(response), spec.response)
    for entry in denied:
        values: dict[str, Any] = {spec.response_name: getattr(entry, spec.name)}
        if spec.response_partitions is None:
            values["error_code"] = code
        else:
            partition_class = _element(entry_class, spec.response_partitions)
            values[spec.response_partitions] = [
                partition_class(**{spec.response_index: index, "error_code": code})
                for index in _indexes(entry, spec)
            ]
        getattr(response, spec.response).append(entry_class(**values))


def _indexes(entry: Any, spec: TopicList) -> list[int]:
    if spec.partitions is None:
        return []
    return [
        p if isinstance(p, int) else getattr(p, spec.index) for p in getattr(entry, spec.partitions)
    ]


def _element(cls: type[Struct], name: str) -> Any:
    """The struct class of list field ``name`` (from the schema: protocols as data)."""
    for spec in cls.FIELDS:
        if spec.name == name:
            return spec.element_class()
    raise KeyError(f"{cls.__name__} has no field {name}")


def empty_response(header: RequestHeader) -> Any:
    return RESPONSES[header.api_key]()


def refused(header: RequestHeader, code: ErrorCode) -> Message:
    """A response to ``header`` carrying ``code`` as its top-level error."""
    response = empty_response(header)
    response.error_code = code
    return response  # type: ignore[no-any-return]


def topic_rule(spec: TopicList, operation: Op) -> Rule:
    async def rule(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
        denied = take_denied(request, spec, check.topic(operation))
        response = await call(request)
        if isinstance(response, Deferred):  # Produce under fsync=always, Fetch long polls

            async def later(awaitable: Awaitable[Any]) -> Any:
                answer = await awaitable
                answer_denied(answer, spec, denied, TOPIC_DENIED)
                return answer

            return Deferred(later(response.awaitable))
        answer_denied(response, spec, denied, TOPIC_DENIED)
        return response

    return rule


def whole(*needs: Callable[[Check, Any], ErrorCode | None]) -> Rule:
    """A rule refusing the whole request with the first failing need's error code."""

    async def rule(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
        for need in needs:
            code = need(check, request)
            if code is not None:
                return refused(header, code)
        return await call(request)

    return rule


def group(operation: Op) -> Callable[[Check, Any], ErrorCode | None]:
    return lambda check, r: None if check(operation, RT.GROUP, r.group_id) else GROUP_DENIED


def txn(operation: Op) -> Callable[[Check, Any], ErrorCode | None]:
    return lambda check, r: (
        None if check(operation, RT.TRANSACTIONAL_ID, r.transactional_id) else TXN_DENIED
    )


def cluster(operation: Op) -> Callable[[Check, Any], ErrorCode | None]:
    return lambda check, r: None if check.cluster(operation) else CLUSTER_DENIED


# -- the rules ----------------------------------------------------------------------------


async def produce(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
    if request.transactional_id is not None and not check(
        Op.WRITE, RT.TRANSACTIONAL_ID, request.transactional_id
    ):
        denied = take_denied(request, PRODUCE, lambda _name: False)
        response = empty_response(header)
        answer_denied(response, PRODUCE, denied, TXN_DENIED)
        return response if request.acks != 0 else None
    return await topic_rule(PRODUCE, Op.WRITE)(check, header, request, call)


async def offset_commit(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
    code = None
    if header.api_key == ApiKey.TXN_OFFSET_COMMIT and not check(
        Op.WRITE, RT.TRANSACTIONAL_ID, request.transactional_id
    ):
        code = TXN_DENIED
    elif not check(Op.READ, RT.GROUP, request.group_id):
        code = GROUP_DENIED
    if code is not None:
        denied = take_denied(request, TOPICS, lambda _name: False)
        response = empty_response(header)
        answer_denied(response, TOPICS, denied, code)
        return response
    return await topic_rule(TOPICS, Op.READ)(check, header, request, call)


async def add_partitions(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
    if not check(Op.WRITE, RT.TRANSACTIONAL_ID, request.transactional_id):
        denied = take_denied(request, ADD_PARTITIONS, lambda _name: False)
        response = empty_response(header)
        answer_denied(response, ADD_PARTITIONS, denied, TXN_DENIED)
        return response
    return await topic_rule(ADD_PARTITIONS, Op.WRITE)(check, header, request, call)


async def init_producer_id(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
    if request.transactional_id is not None:
        if not check(Op.WRITE, RT.TRANSACTIONAL_ID, request.transactional_id):
            return refused(header, TXN_DENIED)
    elif not check.idempotent_write():
        return refused(header, CLUSTER_DENIED)
    return await call(request)


async def create_topics(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
    denied = take_denied(request, NO_PARTITIONS, check.may_create_topic)
    response = await call(request)
    answer_denied(response, NO_PARTITIONS, denied, TOPIC_DENIED)
    return response


async def delete_topics(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
    if header.api_version < 6:
        names = request.topic_names
        request.topic_names = [n for n in names if check(Op.DELETE, RT.TOPIC, n)]
        response = await call(request)
        entry = _element(type(response), "responses")
        for name in names:
            if name not in request.topic_names:
                response.responses.append(entry(name=name, error_code=TOPIC_DENIED))
        return response

    def allowed(state: Any) -> bool:
        name = state.name
        if name is None:  # by id: the name it has now
            topic = check.topics.by_id(state.topic_id)
            if topic is None:
                return True  # the handler answers UNKNOWN_TOPIC_ID
            name = topic.name
        return check(Op.DELETE, RT.TOPIC, name)

    topics = request.topics
    request.topics = [t for t in topics if allowed(t)]
    response = await call(request)
    entry = _element(type(response), "responses")
    for t in topics:
        if t not in request.topics:  # a topic named by id keeps its name untold
            response.responses.append(
                entry(name=t.name, topic_id=t.topic_id, error_code=TOPIC_DENIED)
            )
    return response


async def metadata(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
    denied: list[str] = []
    unknown: list[str] = []  # absent, and the principal may not create it: not auto-created
    if request.topics:
        kept = []
        for entry in request.topics:
            name = entry.name
            if name is not None and not check(Op.DESCRIBE, RT.TOPIC, name):
                denied.append(name)
            elif (
                name is not None
                and check.topics.get(name) is None
                and not check.may_create_topic(name)
            ):
                unknown.append(name)
            else:
                kept.append(entry)
        request.topics = kept
    response = await call(request)
    response.topics = [
        t for t in response.topics if t.name is None or check(Op.DESCRIBE, RT.TOPIC, t.name)
    ]
    entry = _element(type(response), "topics")
    for name in denied:
        response.topics.append(entry(error_code=TOPIC_DENIED, name=name, partitions=[]))
    for name in unknown:
        response.topics.append(
            entry(error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name=name, partitions=[])
        )
    return response


async def find_coordinator(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
    resource = RT.TRANSACTIONAL_ID if request.key_type == 1 else RT.GROUP
    code = TXN_DENIED if resource == RT.TRANSACTIONAL_ID else GROUP_DENIED
    response = await call(request)
    if header.api_version >= 4:
        for c in response.coordinators:
            if not check(Op.DESCRIBE, resource, c.key):
                c.error_code, c.node_id, c.host, c.port = code, -1, "", -1
    elif not check(Op.DESCRIBE, resource, request.key):
        return refused(header, code)
    return response


def _described(attr: str, key: str, resource: RT, code: ErrorCode, clear: str | None) -> Rule:
    """Read-only: entries of ``attr`` the principal may not DESCRIBE get ``code``."""

    async def rule(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
        response = await call(request)
        for entry in getattr(response, attr):
            if not check(Op.DESCRIBE, resource, getattr(entry, key)):
                entry.error_code = code
                if clear is not None:
                    setattr(entry, clear, [])
        return response

    return rule


def _listed(attr: str, key: str, resource: RT) -> Rule:
    """Read-only listing: only what the principal may DESCRIBE is listed."""

    async def rule(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
        response = await call(request)
        setattr(
            response,
            attr,
            [e for e in getattr(response, attr) if check(Op.DESCRIBE, resource, getattr(e, key))],
        )
        return response

    return rule


async def offset_fetch(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
    if header.api_version < 8:
        if not check(Op.DESCRIBE, RT.GROUP, request.group_id):
            response = empty_response(header)
            response.error_code = GROUP_DENIED  # v2+; before that, per partition
            topic_class = _element(type(response), "topics")
            partition_class = _element(topic_class, "partitions")
            response.topics = [
                topic_class(
                    name=t.name,
                    partitions=[
                        partition_class(partition_index=i, committed_offset=-1,
                                        error_code=GROUP_DENIED)
                        for i in t.partition_indexes
                    ],
                )
                for t in request.topics or []
            ]  # fmt: skip
            return response
        response = await call(request)
        for topic in response.topics:
            if not check(Op.DESCRIBE, RT.TOPIC, topic.name):
                for p in topic.partitions:
                    p.error_code, p.committed_offset, p.metadata = TOPIC_DENIED, -1, None
        return response
    response = await call(request)
    for g in response.groups:
        if not check(Op.DESCRIBE, RT.GROUP, g.group_id):
            g.error_code, g.topics = GROUP_DENIED, []
            continue
        for topic in g.topics:
            if not check(Op.DESCRIBE, RT.TOPIC, topic.name):
                for p in topic.partitions:
                    p.error_code, p.committed_offset, p.metadata = TOPIC_DENIED, -1, None
    return response


async def delete_groups(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
    names = request.groups_names
    request.groups_names = [n for n in names if check(Op.DELETE, RT.GROUP, n)]
    response = await call(request)
    entry = _element(type(response), "results")
    for name in names:
        if name not in request.groups_names:
            response.results.append(entry(group_id=name, error_code=GROUP_DENIED))
    return response


def configs(operation: Op, results: str) -> Rule:
    """Describe/Alter/IncrementalAlterConfigs: topics (type 2) and the broker (type 4)."""

    async def rule(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
        def allowed(resource: Any) -> bool:
            if resource.resource_type == 2:
                return check(operation, RT.TOPIC, resource.resource_name)
            return check.cluster(operation)

        resources = request.resources
        request.resources = [r for r in resources if allowed(r)]
        response = await call(request)
        entry = _element(type(response), results)
        for r in resources:
            if not allowed(r):
                code = TOPIC_DENIED if r.resource_type == 2 else CLUSTER_DENIED
                getattr(response, results).append(
                    entry(error_code=code, resource_type=r.resource_type,
                          resource_name=r.resource_name)
                )  # fmt: skip
        return response

    return rule


async def create_or_delete_acls(
    check: Check, header: RequestHeader, request: Any, call: Call
) -> Any:
    if check.cluster(Op.ALTER):
        return await call(request)
    response = empty_response(header)
    if header.api_key == ApiKey.CREATE_ACLS:
        entry = _element(type(response), "results")
        response.results = [entry(error_code=CLUSTER_DENIED) for _ in request.creations]
    else:
        entry = _element(type(response), "filter_results")
        response.filter_results = [entry(error_code=CLUSTER_DENIED) for _ in request.filters]
    return response


async def alter_scram(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
    if check.cluster(Op.ALTER):
        return await call(request)
    response = empty_response(header)
    entry = _element(type(response), "results")
    names = dict.fromkeys(e.name for e in [*request.deletions, *request.upsertions])
    response.results = [entry(user=n, error_code=CLUSTER_DENIED) for n in names]
    return response


async def write_txn_markers(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
    """Brokers send these to each other (CLUSTER_ACTION); refused per partition."""
    if check.cluster(Op.CLUSTER_ACTION):
        return await call(request)
    response = empty_response(header)
    marker_class = _element(type(response), "markers")
    topic_class = _element(marker_class, "topics")
    partition_class = _element(topic_class, "partitions")
    response.markers = [
        marker_class(
            producer_id=m.producer_id,
            topics=[
                topic_class(
                    name=t.name,
                    partitions=[
                        partition_class(partition_index=i, error_code=CLUSTER_DENIED)
                        for i in t.partition_indexes
                    ],
                )
                for t in m.topics
            ],
        )
        for m in request.markers
    ]
    return response


async def unchecked(check: Check, header: RequestHeader, request: Any, call: Call) -> Any:
    return await call(request)


RULES: dict[int, Rule] = {
    ApiKey.API_VERSIONS: unchecked,
    ApiKey.SASL_HANDSHAKE: unchecked,
    ApiKey.SASL_AUTHENTICATE: unchecked,
    ApiKey.PRODUCE: produce,
    ApiKey.FETCH: topic_rule(FETCH, Op.READ),
    ApiKey.LIST_OFFSETS: topic_rule(TOPICS, Op.DESCRIBE),
    ApiKey.METADATA: metadata,
    ApiKey.OFFSET_COMMIT: offset_commit,
    ApiKey.TXN_OFFSET_COMMIT: offset_commit,
    ApiKey.OFFSET_FETCH: offset_fetch,
    ApiKey.FIND_COORDINATOR: find_coordinator,
    ApiKey.JOIN_GROUP: whole(group(Op.READ)),
    ApiKey.SYNC_GROUP: whole(group(Op.READ)),
    ApiKey.HEARTBEAT: whole(group(Op.READ)),
    ApiKey.LEAVE_GROUP: whole(group(Op.READ)),
    ApiKey.CONSUMER_GROUP_HEARTBEAT: whole(group(Op.READ)),
    ApiKey.DESCRIBE_GROUPS: _described("groups", "group_id", RT.GROUP, GROUP_DENIED, "members"),
    ApiKey.CONSUMER_GROUP_DESCRIBE: _described(
        "groups", "group_id", RT.GROUP, GROUP_DENIED, "members"
    ),
    ApiKey.LIST_GROUPS: _listed("groups", "group_id", RT.GROUP),
    ApiKey.DELETE_GROUPS: delete_groups,
    ApiKey.CREATE_TOPICS: create_topics,
    ApiKey.DELETE_TOPICS: delete_topics,
    ApiKey.DELETE_RECORDS: topic_rule(TOPICS, Op.DELETE),
    ApiKey.CREATE_PARTITIONS: topic_rule(CREATE_PARTITIONS, Op.ALTER),
    ApiKey.INIT_PRODUCER_ID: init_producer_id,
    ApiKey.ADD_PARTITIONS_TO_TXN: add_partitions,
    ApiKey.ADD_OFFSETS_TO_TXN: whole(txn(Op.WRITE), group(Op.READ)),
    ApiKey.END_TXN: whole(txn(Op.WRITE)),
    ApiKey.WRITE_TXN_MARKERS: write_txn_markers,
    ApiKey.DESCRIBE_TRANSACTIONS: _described(
        "transaction_states", "transactional_id", RT.TRANSACTIONAL_ID, TXN_DENIED, "topics"
    ),
    ApiKey.LIST_TRANSACTIONS: _listed(
        "transaction_states", "transactional_id", RT.TRANSACTIONAL_ID
    ),
    ApiKey.DESCRIBE_PRODUCERS: topic_rule(DESCRIBE_PRODUCERS, Op.READ),
    ApiKey.DESCRIBE_CONFIGS: configs(Op.DESCRIBE_CONFIGS, "results"),
    ApiKey.ALTER_CONFIGS: configs(Op.ALTER_CONFIGS, "responses"),
    ApiKey.INCREMENTAL_ALTER_CONFIGS: configs(Op.ALTER_CONFIGS, "responses"),
    ApiKey.DESCRIBE_CLUSTER: whole(cluster(Op.DESCRIBE)),
    ApiKey.DESCRIBE_LOG_DIRS: whole(cluster(Op.DESCRIBE)),
    ApiKey.DESCRIBE_ACLS: whole(cluster(Op.DESCRIBE)),
    ApiKey.CREATE_ACLS: create_or_delete_acls,
    ApiKey.DELETE_ACLS: create_or_delete_acls,
    ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: whole(cluster(Op.DESCRIBE)),
    ApiKey.ALTER_USER_SCRAM_CREDENTIALS: alter_scram,
}


async def authorized(
    authorizer: Authorizer,
    topics: TopicLookup,
    client: ClientInfo,
    header: RequestHeader,
    request: Any,
    call: Call,
) -> Any:
    """Run ``call`` on what of ``request`` the client may do; answer the rest refused."""
    rule = RULES.get(header.api_key)
    if header.api_key not in (ApiKey.PRODUCE, ApiKey.FETCH):
        call = _settled(call)  # rules edit the answer: no Deferred past this point
    if rule is None:
        if client.principal in authorizer.super_users:
            return await call(request)
        return refused(header, CLUSTER_DENIED)
    return await rule(Check(authorizer, client, topics), header, request, call)


def _settled(call: Call) -> Call:
    async def settled(request: Any) -> Any:
        response = await call(request)
        if isinstance(response, Deferred):
            return await response.awaitable
        return response

    return settled
