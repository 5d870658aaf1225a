#!/usr/bin/env python3
"""Recording TCP proxy for Kafka: listens on 127.0.0.1:LISTEN, forwards every connection to 127.0.0.1:BROKER, and
writes each request frame a client sends (without its 4-byte size) to OUT/<api>-v<version>-<n>.bin.
Responses are relayed untouched. Runs until killed (SIGTERM)."""
import os
import socket
import struct
import sys
import threading

listen_port, broker_port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
counter = [0]
lock = threading.Lock()


def record(frame):
    api, version = struct.unpack(">hh", frame[:4]) if len(frame) >= 4 else (-1, -1)
    with lock:
        counter[0] += 1
        n = counter[0]
    with open(os.path.join(out, f"{api}-v{version}-{n:06d}.bin"), "wb") as f:
        f.write(frame)


def close_both(*sockets):
    for s in sockets:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def client_to_broker(src, dst):
    buf = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            buf += data
            while len(buf) >= 4:
                size = struct.unpack(">i", buf[:4])[0]
                if len(buf) < 4 + size:
                    break
                record(buf[4:4 + size])
                buf = buf[4 + size:]
    except OSError:
        pass
    finally:
        close_both(src, dst)


def broker_to_client(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        close_both(src, dst)


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(64)
while True:
    client, _ = server.accept()
    broker = socket.create_connection(("127.0.0.1", broker_port))
    threading.Thread(target=client_to_broker, args=(client, broker), daemon=True).start()
    threading.Thread(target=broker_to_client, args=(broker, client), daemon=True).start()
