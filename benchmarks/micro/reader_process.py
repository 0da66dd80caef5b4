"""The extension's end of the socket in its own process, for benchmarks: accept, read, decode, discard.

A separate process, as the real extension is, so that its reading never competes for the function's GIL. Each
connection is read as the extension reads it (``extension.ring.FunctionStream``: the socket, and the function's
ring at END and DRAIN). Usage: ``python reader_process.py SOCKET_PATH``; prints ``ready`` once listening, exits
on SIGTERM.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sys

from extension.receiver import received_descriptors
from extension.ring import FunctionStream


def main(path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    streams: dict[socket.socket, FunctionStream] = {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is listener:
                connection, _ = listener.accept()
                streams[connection] = FunctionStream()
                selector.register(connection, selectors.EVENT_READ)
                continue
            data, ancillary, _, _ = sock.recvmsg(1 << 20, socket.CMSG_SPACE(16))
            if not data:
                selector.unregister(sock)
                streams.pop(sock).close()
                sock.close()
                continue
            for _ in streams[sock].receive(data, received_descriptors(ancillary)):
                pass  # a long stretch of the ring is read as the result is iterated


if __name__ == "__main__":
    main(sys.argv[1])
