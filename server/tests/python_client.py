"""Drives websocket-server with the third-party Python `websockets` client.

usage: python_client.py URL MODE
  echo     hello JSON, text and binary echo, normal close (1000)
  too-big  a message over --max-message-size is answered with close 1009
  wait     print "ready", then wait for the server to close; print the code
"""
import json
import sys

try:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
except ImportError:
    print("the Python package `websockets` is missing: pip install websockets", file=sys.stderr)
    sys.exit(3)


def close_code(exc):
    frame = getattr(exc, "rcvd", None)
    return frame.code if frame is not None else None


def main(url, mode):
    with connect(url, max_size=None, open_timeout=10, close_timeout=5) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello", hello
        for key in ("pod", "namespace", "node", "connection", "active"):
            assert key in hello, (key, hello)
        if mode == "echo":
            ws.send("héllo from python")
            assert ws.recv(timeout=10) == "héllo from python"
            ws.send(b"\x00\x01\xfe\xff")
            assert ws.recv(timeout=10) == b"\x00\x01\xfe\xff"
            ws.close()
            print("closed", ws.close_code)
        elif mode == "too-big":
            ws.send(b"x" * 4096)
            try:
                ws.recv(timeout=10)
            except ConnectionClosed as exc:
                print("closed", close_code(exc))
        elif mode == "wait":
            print("ready", flush=True)
            try:
                while True:
                    ws.recv(timeout=20)
            except ConnectionClosed as exc:
                print("closed", close_code(exc))
        else:
            raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
