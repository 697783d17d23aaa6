#!/usr/bin/env python3
"""bench/delay-proxy.py: a TCP proxy on 127.0.0.1 that holds every chunk a client sends for DELAY
seconds before passing it on, so each request waits about that long: a round trip to a distant
server, where loopback has none (this VM's kernel has no netem). Answers pass at once.

Usage: bench/delay-proxy.py LISTEN_PORT TARGET_PORT DELAY_SECONDS [COUNTS_FILE]
e.g.   bench/delay-proxy.py 37800 37731 0.010 &   # then --store "s3://bucket/prefix?endpoint=http://127.0.0.1:37800"
With COUNTS_FILE, HTTP requests are counted by method and the first three segments of their
path (e.g. "GET /bench/probe/directories"), written to that file on SIGUSR1 and at SIGTERM.
(docs/performance.md, "Verify and gc over S3".)
"""
import asyncio
import collections
import signal
import sys

METHODS = (b"GET ", b"HEAD ", b"PUT ", b"POST ", b"DELETE ")
counts = collections.Counter()


def count_requests(data):
    for line in data.split(b"\r\n"):
        if line.startswith(METHODS):
            method, target = line.split(b" ")[:2]
            path = target.split(b"?")[0].decode(errors="replace")
            counts[method.decode() + " " + "/".join(path.split("/")[:4])] += 1


def write_counts(path):
    with open(path, "w") as out:
        for request, n in counts.most_common():
            out.write(f"{n} {request}\n")


async def pipe(reader, writer, delay, counting):
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            if counting:
                count_requests(data)
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(listen, target, delay, counts_file):
    async def handle(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(client_reader, server_writer, delay, counts_file is not None),
                             pipe(server_reader, client_writer, 0, False))

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    if counts_file:
        loop.add_signal_handler(signal.SIGUSR1, write_counts, counts_file)
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    server = await asyncio.start_server(handle, "127.0.0.1", listen, backlog=512)
    async with server:
        await stop
    if counts_file:
        write_counts(counts_file)


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] if len(sys.argv) == 5 else None))
