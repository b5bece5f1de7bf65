"""Real clients against a tiny socket server that speaks only through this codec.

The server answers ApiVersions, Metadata and Produce (enough for a producer to deliver one
message) and records every request frame. This checks, without the broker, that real
clients accept our responses and that we decode what they send.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from wire_records import one_buffer

from streamsource.kafka.protocol import (
    SUPPORTED_VERSIONS,
    ApiKey,
    ApiVersionsResponse,
    ErrorCode,
    FrameDecoder,
    Message,
    MetadataRequest,
    MetadataResponse,
    ProduceRequest,
    ProduceResponse,
    RequestHeader,
    UnsupportedVersion,
    decode_request,
    encode_response,
)

pytestmark = pytest.mark.interop

SEED_LIKE_WRITER = """
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/segmentio/kafka-go"
)

func main() {
	w := kafka.NewWriter(kafka.WriterConfig{Brokers: []string{os.Args[1]}, Topic: "my-topic"})
	err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte("key1"), Value: []byte("value1")})
	w.Close()
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
"""


class RecordingServer:
    """Answers just enough for a producer, through the codec; keeps (header, request) pairs."""

    def __init__(self) -> None:
        self.requests: list[tuple[RequestHeader, Message | None]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        decoder = FrameDecoder(1 << 20)
        with conn:
            while data := conn.recv(65536):
                for frame in decoder.feed(data):
                    reply = self._answer(frame)
                    if reply:
                        conn.sendall(reply)

    def _answer(self, frame: bytes | bytearray) -> bytes | None:
        api_versions = [
            ApiVersionsResponse.ApiVersion(api_key=key, min_version=low, max_version=high)
            for key, (low, high) in SUPPORTED_VERSIONS.items()
        ]
        try:
            header, request = decode_request(frame)
        except UnsupportedVersion as exc:
            self.requests.append((exc.header, None))
            error = ApiVersionsResponse(
                error_code=ErrorCode.UNSUPPORTED_VERSION, api_keys=api_versions
            )
            return encode_response(exc.header, error)
        self.requests.append((header, request))
        if header.api_key == ApiKey.API_VERSIONS:
            return encode_response(header, ApiVersionsResponse(api_keys=api_versions))
        if isinstance(request, MetadataRequest):
            broker = MetadataResponse.MetadataResponseBroker(
                node_id=0, host="127.0.0.1", port=self.port
            )
            partition = MetadataResponse.MetadataResponsePartition(
                partition_index=0, leader_id=0, replica_nodes=[0], isr_nodes=[0]
            )
            topic = MetadataResponse.MetadataResponseTopic(name="my-topic", partitions=[partition])
            metadata = MetadataResponse(
                brokers=[broker], cluster_id="golden", controller_id=0, topics=[topic]
            )
            return encode_response(header, metadata)
        if isinstance(request, ProduceRequest):
            if request.acks == 0:
                return None
            topics = [
                ProduceResponse.TopicProduceResponse(
                    name=t.name,
                    partition_responses=[
                        ProduceResponse.PartitionProduceResponse(index=p.index, base_offset=0)
                        for p in t.partition_data
                    ],
                )
                for t in request.topic_data
            ]
            return encode_response(header, ProduceResponse(responses=topics))
        return None

    def produced(self) -> list[tuple[int, bytes]]:
        """(produce version, record bytes) of every Produce request received."""
        return [
            (header.api_version, one_buffer(p.records))
            for header, request in self.requests
            if isinstance(request, ProduceRequest)
            for t in request.topic_data
            for p in t.partition_data
        ]


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    srv = RecordingServer()
    yield srv
    srv.close()


def test_kafka_python_producer(server: RecordingServer) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{server.port}", acks=1)
    producer.send("my-topic", key=b"kp-key", value=b"kp-value", partition=0).get(timeout=20)
    producer.close()

    [(version, records)] = server.produced()
    assert version == SUPPORTED_VERSIONS[ApiKey.PRODUCE][1]
    assert b"kp-key" in records and b"kp-value" in records
    # kafka-python starts with an ApiVersions version newer than ours: it got error 35 + v0 body
    first_header, first_request = server.requests[0]
    assert first_header.api_key == ApiKey.API_VERSIONS and first_request is None


def test_confluent_kafka_producer(server: RecordingServer) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": f"127.0.0.1:{server.port}", "acks": 1})
    producer.produce("my-topic", key=b"ck-key", value=b"ck-value", partition=0)
    assert producer.flush(20) == 0

    [(_, records)] = server.produced()
    assert b"ck-key" in records and b"ck-value" in records


def test_aiokafka_producer(server: RecordingServer) -> None:
    from aiokafka import AIOKafkaProducer

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{server.port}", acks=1)
        await asyncio.wait_for(producer.start(), 30)
        try:
            send = producer.send_and_wait("my-topic", key=b"ak-key", value=b"ak-value", partition=0)
            await asyncio.wait_for(send, 30)
        finally:
            await producer.stop()

    asyncio.run(produce())

    [(_, records)] = server.produced()
    assert b"ak-key" in records and b"ak-value" in records


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("go") is None, reason="needs Debian's golang-go")
def test_kafka_go_writer_sends_produce_v2_with_a_magic_1_message_set(
    server: RecordingServer, tmp_path: Path
) -> None:
    (tmp_path / "main.go").write_text(SEED_LIKE_WRITER)
    env = {
        "GO111MODULE": "off",
        "GOPATH": "/usr/share/gocode",
        "GOCACHE": str(tmp_path / "cache"),
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["go", "build", "-o", "writer", "main.go"], cwd=tmp_path, env=env, check=True)
    subprocess.run([str(tmp_path / "writer"), f"127.0.0.1:{server.port}"], check=True, timeout=60)

    [(version, records)] = server.produced()
    assert version == 2
    assert records[16] == 1  # magic byte of the first message
    assert records.endswith(b"\x00\x00\x00\x04key1\x00\x00\x00\x06value1")
