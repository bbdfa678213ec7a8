"""Clients for the `docker stop` measurement: `python -m bench.stop_probe URL`.

A separate process that sends requests from several threads, each on a new connection,
until it receives SIGINT, then prints what happened to them as JSON. wrk cannot be used for
this: it counts a refused connection as a read or write error, so it cannot tell a request
the server dropped from a connection it rightly turned away after closing its socket.

Each request ends one of these ways:
- ok / http_error: answered, with a status below 400 or not;
- refused: the connection was refused, so no request was sent (nothing listens any more;
  a client or load balancer retries it elsewhere, safely);
- reset: the connection was accepted and the request sent, then reset without an answer:
  the kernel had completed the connection in the listening socket's queue, and the server
  closed that socket without taking it (or closed it unread);
- dropped: accepted and sent, then closed or timed out without an answer.
The last two are requests that failed: the client cannot tell whether they were handled.
"""

import http.client
import json
import signal
import sys
import threading
import urllib.parse
from collections import Counter

CLIENTS = 16


def client(host: str, port: int, path: str, stop: threading.Event, outcomes: Counter[str]) -> None:
    while not stop.is_set():
        connection = http.client.HTTPConnection(host, port, timeout=5)
        try:
            try:
                connection.connect()
            except OSError:
                # Nothing listens any more (or the container is gone): the client may retry
                # elsewhere, and no request was sent.
                outcomes["refused"] += 1
                stop.wait(0.01)
                continue
            try:
                connection.request("GET", path, headers={"Connection": "close"})
                response = connection.getresponse()
                response.read()
            except (ConnectionResetError, BrokenPipeError) as error:
                outcomes["reset"] += 1
                outcomes[f"failed: {type(error).__name__}"] += 1
                continue
            except (OSError, http.client.HTTPException) as error:
                outcomes["dropped"] += 1
                outcomes[f"failed: {type(error).__name__}"] += 1
                continue
            outcomes["ok" if response.status < 400 else "http_error"] += 1
        finally:
            connection.close()


def main() -> None:
    url = urllib.parse.urlsplit(sys.argv[1])
    host, port = url.hostname or "localhost", url.port or 80
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # One counter per thread: `+=` on a shared one could lose counts between threads.
    counters: list[Counter[str]] = [Counter() for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=client, args=(host, port, url.path, stop, counter))
        for counter in counters
    ]
    for thread in threads:
        thread.start()
    print("started", flush=True)
    stop.wait()
    for thread in threads:
        thread.join()
    outcomes = sum(counters, Counter())
    counts = {key: outcomes[key] for key in ("ok", "http_error", "reset", "dropped", "refused")}
    reasons = {key.split(": ")[1]: n for key, n in outcomes.items() if key.startswith("failed: ")}
    print(json.dumps({**counts, "failed_by_error": reasons}))


if __name__ == "__main__":
    main()
