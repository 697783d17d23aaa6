#!/usr/bin/env python3
"""bench/delay-proxy.py: a TCP proxy on 127.0.0.1 that holds every chunk a client sends for DELAY
seconds before passing it on, so each request waits about that long: a round trip to a distant
server, where loopback has none (this VM's kernel has no netem). Answers pass at once.

Usage: bench/delay-proxy.py LISTEN_PORT TARGET_PORT DELAY_SECONDS
e.g.   bench/delay-proxy.py 37800 37731 0.010 &   # then --store "s3://bucket/prefix?endpoint=http://127.0.0.1:37800"
(docs/performance.md, "Verify and gc over S3").
"""
import asyncio
import sys


async def pipe(reader, writer, delay):
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(listen, target, delay):
    async def handle(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(client_reader, server_writer, delay), pipe(server_reader, client_writer, 0))

    server = await asyncio.start_server(handle, "127.0.0.1", listen, backlog=512)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
